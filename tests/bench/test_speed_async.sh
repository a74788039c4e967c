#!/usr/bin/env bash
# ihsm-speed --mode async against a device given by IHSM_SOCKET/IHSM_CREDENTIAL:
# one JSON row with every field, and the device's sign counter agrees with
# what the tool says it sent.
set -u
. "$(dirname "$0")/speed_lib.sh"
. "$IHSM_SOURCE_DIR/tests/lib/ihsmd.sh"
ihsm_device_start

before=$(ihsm_stat sign)
"$SPEED" --alg ecdsa-p256 --mode async --depth 16 --seconds 1 --warmup 0 --json \
    >"$IHSM_SCRATCH/out" 2>"$IHSM_SCRATCH/err" \
    || { cat "$IHSM_SCRATCH/err" >&2; sp_fail "ihsm-speed exited $?"; }
after=$(ihsm_stat sign)
sp_check_row "$IHSM_SCRATCH/out" $((after - before)) ecdsa-p256 async 1 16 0 || exit 1
# progress on stderr: off a terminal the first line and then at most one a second
grep -q "ecdsa-p256: making keys" "$IHSM_SCRATCH/err" &&
    grep -q "ecdsa-p256: .* slice [0-9]/3: [0-9]* ops/s" "$IHSM_SCRATCH/err" ||
    { cat "$IHSM_SCRATCH/err" >&2; sp_fail "no progress lines on stderr"; }

# --quiet silences the progress line; warmup signatures reach the device too
before=$after
"$SPEED" --alg ecdsa-p256 --depth 4 --seconds 1 --warmup 0.2 --json --quiet \
    >"$IHSM_SCRATCH/out" 2>"$IHSM_SCRATCH/err" \
    || { cat "$IHSM_SCRATCH/err" >&2; sp_fail "ihsm-speed --quiet exited $?"; }
after=$(ihsm_stat sign)
[ -s "$IHSM_SCRATCH/err" ] && { cat "$IHSM_SCRATCH/err" >&2; sp_fail "--quiet printed on stderr"; }
sp_check_row "$IHSM_SCRATCH/out" $((after - before)) ecdsa-p256 async 1 4 0.2 || exit 1
echo "PASS: ihsm-speed async rows add up with the device's counters"
