#!/usr/bin/env bash
# ihsm-speed --mode sync --threads 2: one JSON row with every field, and the
# device's sign counter agrees with what the tool says it sent.
set -u
. "$(dirname "$0")/speed_lib.sh"
. "$IHSM_SOURCE_DIR/tests/lib/ihsmd.sh"
ihsm_device_start

before=$(ihsm_stat sign)
"$SPEED" --alg ecdsa-p256 --mode sync --threads 2 --seconds 1 --warmup 0 --json \
    >"$IHSM_SCRATCH/out" 2>"$IHSM_SCRATCH/err" \
    || { cat "$IHSM_SCRATCH/err" >&2; sp_fail "ihsm-speed exited $?"; }
after=$(ihsm_stat sign)
sp_check_row "$IHSM_SCRATCH/out" $((after - before)) ecdsa-p256 sync 2 1 0 || exit 1
echo "PASS: ihsm-speed sync rows add up with the device's counters"
