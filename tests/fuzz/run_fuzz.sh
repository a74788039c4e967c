#!/usr/bin/env bash
# run_fuzz.sh TARGET [SECONDS] [LIBFUZZER OPTIONS...]: build a libFuzzer
# target with clang (ASan + UBSan) in the build tree and run it on its
# corpus for a bounded time, one worker. SECONDS (default 20) includes a
# build that was needed: ctest's three targets stay near a minute in all. Exits 77 when clang cannot build
# libFuzzer programs here; non-zero (with the reproducer in
# $IHSM_BUILD_DIR/fuzz/artifacts-TARGET/) when the fuzzer finds a crash.
#
# Targets: frame (device frame codec), keyfile (masked key files: shim
# decoders and the provider's DECODER without a device), import (the
# device's KEY_IMPORT and KEY_UNMASK parsers).
#
# Long runs:  IHSM_BUILD_DIR=build IHSM_SOURCE_DIR=. \
#             tests/fuzz/run_fuzz.sh keyfile 3600 -runs=10000000
set -euo pipefail
target=$1
seconds=${2:-20}
shift $(($# < 2 ? $# : 2))
src=${IHSM_SOURCE_DIR:?IHSM_SOURCE_DIR must point at the source tree}
out=${IHSM_BUILD_DIR:?IHSM_BUILD_DIR must point at the build tree}/fuzz
mkdir -p "$out/corpus-$target" "$out/artifacts-$target"
shim=("$src/driver-shim/codec.c" "$src/driver-shim/proto.c")
includes=(-I"$src/driver-shim")
defines=()
libs=(-lcrypto)
case $target in
    frame)
        sources=("$src/tests/fuzz/fuzz_frame.c" "${shim[@]}") ;;
    keyfile)
        # the provider compiled in (instrumented), with what it links
        sources=("$src/tests/fuzz/fuzz_keyfile.c" "$src"/driver-shim/*.c
                 "$src"/offload/*.c "$src"/provider/*.c)
        includes+=(-I"$src/offload" -I"$src/provider")
        defines=(-DIHSM_FUZZ_PROVIDER -DIHSM_FUZZ_PROVIDER_BUILTIN
                 -DIHSM_VERSION_STR=\"fuzz\")
        libs+=(-luring -lpthread) ;;
    import)
        sources=("$src/tests/fuzz/fuzz_import.c" "$src"/device/crypto_*.c "${shim[@]}")
        includes+=(-I"$src/device")
        libs+=(-lpthread) ;;
    *) echo "unknown fuzz target $target: frame, keyfile or import" >&2; exit 2 ;;
esac
bin=$out/fuzz_$target
t_start=$(date +%s)
# rebuild only when a source is newer than the binary
if [ ! -x "$bin" ] || [ -n "$(find "${sources[@]}" "$src/tests/fuzz/run_fuzz.sh" -newer "$bin" 2>/dev/null | head -1)" ]; then
    if ! "${CLANG:-clang}" -g -O1 -fsanitize=fuzzer,address,undefined \
            -fno-sanitize-recover=undefined -D_GNU_SOURCE "${defines[@]}" \
            "${includes[@]}" "${sources[@]}" "${libs[@]}" -o "$bin.tmp" \
            2>"$out/build-$target.log"; then
        cat "$out/build-$target.log" >&2
        echo "SKIP: clang cannot build the libFuzzer target $target here" >&2
        exit 77
    fi
    mv "$bin.tmp" "$bin"
fi
# One process (no -jobs/-workers: the machine is shared). New inputs go to
# the build tree's corpus; the committed corpus is read, never written.
# the build counts against the time, but at least 5 s of fuzzing
left=$((seconds - ($(date +%s) - t_start)))
[ "$left" -ge 5 ] || left=5
set +e
"$bin" -max_total_time="$left" -print_final_stats=1 \
    -artifact_prefix="$out/artifacts-$target/" "$@" \
    "$out/corpus-$target" "$src/tests/fuzz/corpus/$target" >"$out/log-$target.txt" 2>&1
rc=$?
set -e
tail -15 "$out/log-$target.txt"
if [ $rc -ne 0 ]; then
    echo "fuzz_$target failed (exit $rc): reproducer in $out/artifacts-$target/," \
         "replay it with fuzz_${target}_replay FILE; full log $out/log-$target.txt" >&2
fi
exit $rc
