#!/usr/bin/env bash
# ihsm-speed: argument errors exit 2 with a sentence that says what was wrong,
# before any device is started.
set -u
. "$(dirname "$0")/speed_lib.sh"
OUT=$(mktemp -d /tmp/ihsm-speed-test.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

expect_usage() {
    local msg=$1 rc
    shift
    "$SPEED" "$@" >"$OUT/out" 2>"$OUT/err"
    rc=$?
    [ "$rc" -eq 2 ] || { cat "$OUT/err" >&2; sp_fail "'$*' exited $rc, not 2"; }
    grep -qF -- "$msg" "$OUT/err" || { cat "$OUT/err" >&2; sp_fail "'$*' did not say '$msg'"; }
    [ -s "$OUT/out" ] && sp_fail "'$*' printed on stdout"
    return 0
}

expect_usage "unknown --alg 'rsa-1024': use one of rsa-2048, rsa-3072, ecdsa-p256" --alg rsa-1024
expect_usage "unknown --alg 'bogus'" --alg ecdsa-p256,bogus
expect_usage "--depth 0 is out of range: use 1 to 256" --mode async --depth 0
expect_usage "--depth 257 is out of range: use 1 to 256" --mode async --depth 257
expect_usage "--depth 'x' is not a whole number" --depth x
expect_usage "--threads 0 is out of range: use 1 to 256" --mode sync --threads 0
expect_usage "--threads 0 is out of range" --threads 0
expect_usage "unknown --mode 'turbo': use 'sync' or 'async'" --mode turbo
expect_usage "--threads is for --mode sync" --mode async --threads 2
expect_usage "--depth is for --mode async" --mode sync --depth 8
expect_usage "--seconds 0 is out of range" --seconds 0
expect_usage "--warmup -1 is out of range" --warmup -1
expect_usage "unknown option '--bogus'" --bogus
expect_usage "--alg needs a value" --alg
expect_usage "unexpected argument 'ecdsa-p256'" ecdsa-p256

"$SPEED" --help >"$OUT/help" || sp_fail "--help exited non-zero"
grep -qF -- "--depth D" "$OUT/help" || sp_fail "--help does not show the options"
echo "PASS: ihsm-speed argument checks"
