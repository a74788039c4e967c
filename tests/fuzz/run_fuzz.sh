#!/usr/bin/env bash
# run_fuzz.sh TARGET [SECONDS]: build a libFuzzer target with clang (ASan +
# UBSan) in the build tree and run it on its corpus for a bounded time.
# Exits 77 when clang cannot build libFuzzer programs here.
set -euo pipefail
target=$1
seconds=${2:-20}
src=$IHSM_SOURCE_DIR
out=$IHSM_BUILD_DIR/fuzz
mkdir -p "$out/corpus-$target"
case $target in
    frame) sources=("$src/tests/fuzz/fuzz_frame.c" "$src/driver-shim/codec.c" "$src/driver-shim/proto.c") ;;
    *) echo "unknown fuzz target $target" >&2; exit 2 ;;
esac
if ! "${CLANG:-clang}" -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
        -I"$src/driver-shim" "${sources[@]}" -lcrypto -o "$out/fuzz_$target" 2>"$out/build-$target.log"; then
    cat "$out/build-$target.log" >&2
    echo "SKIP: clang cannot build libFuzzer targets here" >&2
    exit 77
fi
"$out/fuzz_$target" -max_total_time="$seconds" -print_final_stats=1 \
    "$out/corpus-$target" "$src/tests/fuzz/corpus/$target" 2>&1 | tail -15
