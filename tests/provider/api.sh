#!/bin/sh
# The provider through the EVP API (prov_api.c) against a real ihsmd,
# including an ihsmd restart half way: keys must come back by themselves.
set -u
. "$IHSM_SOURCE_DIR/tests/lib/ihsmd.sh"
PROG="$IHSM_BUILD_DIR/bin/test_prov_api"
[ -x "$PROG" ] || ihsm_skip "no $PROG"
[ -f "$IHSM_BUILD_DIR/lib/ihsm.so" ] || ihsm_fail "no ihsm.so in $IHSM_BUILD_DIR/lib"
ihsm_device_start

FIFO="$IHSM_SCRATCH/restart.fifo"
mkfifo "$FIFO" || ihsm_fail "mkfifo"
"$PROG" --restart-fifo "$FIFO" >"$IHSM_SCRATCH/api.out" 2>"$IHSM_SCRATCH/api.err" &
PID=$!
# wait for the first half (bounded)
for _ in $(seq 1 600); do
    grep -q READY "$IHSM_SCRATCH/api.out" 2>/dev/null && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
if grep -q READY "$IHSM_SCRATCH/api.out"; then
    ihsm_device_restart
    echo go >"$FIFO"
fi
wait "$PID"
rc=$?
cat "$IHSM_SCRATCH/api.err" >&2
[ "$rc" -eq 0 ] || ihsm_fail "prov_api exited $rc"
grep -q READY "$IHSM_SCRATCH/api.out" || ihsm_fail "prov_api never reached the restart"
echo "PASS: EVP API, threads, fork, ASYNC, ihsmd restart"
