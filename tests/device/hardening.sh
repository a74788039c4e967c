#!/bin/bash
# Process hardening of a running ihsmd, read from the outside:
#   - no core files: /proc/PID/limits says "Max core file size 0 0"
#   - not dumpable (PR_SET_DUMPABLE 0): the kernel gives its /proc/PID files
#     to root and refuses them to its own uid. Shown with an ihsmd running as
#     nobody, beside a control process of nobody whose files nobody can read
#     (as root); without root, with an ihsmd of our own uid.
#   - locked memory: VmLck covers at least the secure heap
#   - the secure heap is in use and libcrypto's freed blocks are wiped:
#     `ihsmctl stats --json` secure_heap_bytes > 0, heap_wipe 1
set -eu
: "${IHSM_SOURCE_DIR:?run through ctest (IHSM_SOURCE_DIR unset)}"
. "$IHSM_SOURCE_DIR/tests/lib/ihsmd.sh"
[ -x "$IHSMD" ] && [ -x "$IHSMCTL" ] || ihsm_skip "ihsmd/ihsmctl not built"
command -v python3 >/dev/null || ihsm_skip "python3 is not installed"
ihsm_device_start
T="$IHSM_SCRATCH"
SECURE_KIB=4096 # ihsmd's default --secure-heap (4M)

core_limit_zero() {
    grep -Eq "^Max core file size +0 +0 +bytes" "/proc/$1/limits" \
        || { grep "core" "/proc/$1/limits" >&2; ihsm_fail "pid $1 may write core files"; }
}
vmlck_kib() { sed -n 's/^VmLck:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

# --- the fixture's ihsmd
core_limit_zero "$IHSMD_PID"
"$IHSMCTL" stats --json >"$T/stats.json"
python3 - "$T/stats.json" <<'PY' || ihsm_fail "stats do not show the memory hardening"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["secure_heap_bytes"] >= 4 * 1024 * 1024, j.get("secure_heap_bytes")
assert j["heap_wipe"] == 1, j.get("heap_wipe")
PY
lck=$(vmlck_kib "$IHSMD_PID")
[ "${lck:-0}" -ge "$SECURE_KIB" ] || ihsm_fail "VmLck is ${lck:-0} kB: the secure heap ($SECURE_KIB kB) is not locked"
echo "ok: core limit 0, VmLck ${lck} kB, secure heap and heap wiping on"

if [ "$(id -u)" != 0 ]; then
    # ihsmd runs as us: non-dumpable, its /proc files are root's, not ours
    [ "$(stat -c %u "/proc/$IHSMD_PID/environ")" = 0 ] \
        || ihsm_fail "/proc/$IHSMD_PID/environ belongs to uid $(stat -c %u "/proc/$IHSMD_PID/environ"): ihsmd is dumpable"
    if cat "/proc/$IHSMD_PID/environ" >/dev/null 2>&1; then
        ihsm_fail "our own uid reads ihsmd's environment: it is dumpable"
    fi
    echo "hardening: ok (not dumpable: its /proc files are root's)"
    exit 0
fi

# --- as root: an ihsmd of uid nobody, and a plain process of nobody
command -v setpriv >/dev/null || ihsm_skip "setpriv (util-linux) is not installed"
NB=65534
NBG=$(id -g nobody 2>/dev/null || echo 65534)
as_nobody() { setpriv --reuid="$NB" --regid="$NBG" --clear-groups -- "$@"; }
chmod 711 "$T"
mkdir -m 700 "$T/nb"
chown "$NB:$NBG" "$T/nb"
# not through the function: $! must be the process itself, not a subshell
setpriv --reuid="$NB" --regid="$NBG" --clear-groups -- \
    "$IHSMD" --state-dir "$T/nb/state" --socket "$T/nb/sock" >"$T/nb.log" 2>&1 &
NB_PID=$!
setpriv --reuid="$NB" --regid="$NBG" --clear-groups -- sleep 60 &
CTRL_PID=$!
trap 'kill $NB_PID $CTRL_PID 2>/dev/null; set +e; ihsm_device_stop' EXIT
for _ in $(seq 1 200); do [ -S "$T/nb/sock" ] && break; sleep 0.05; done
[ -S "$T/nb/sock" ] || { cat "$T/nb.log" >&2; ihsm_fail "ihsmd did not start as nobody"; }
[ "$(sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$NB_PID/status")" = "$NB" ] \
    || ihsm_fail "the second ihsmd does not run as nobody"

core_limit_zero "$NB_PID"
# control: nobody reads its own plain process's files
as_nobody cat "/proc/$CTRL_PID/environ" >/dev/null 2>&1 \
    || ihsm_fail "control: nobody cannot read its own process's /proc/PID/environ"
[ "$(stat -c %u "/proc/$CTRL_PID/environ")" = "$NB" ] || ihsm_fail "control: /proc files of nobody's process are not nobody's"
# ihsmd of nobody: its files are root's and nobody may not read them
[ "$(stat -c %u "/proc/$NB_PID/environ")" = 0 ] \
    || ihsm_fail "/proc/$NB_PID/environ belongs to uid $(stat -c %u "/proc/$NB_PID/environ"), not root: ihsmd is dumpable"
if as_nobody cat "/proc/$NB_PID/environ" >/dev/null 2>&1; then
    ihsm_fail "nobody reads the environment of its own ihsmd: ihsmd is dumpable"
fi
if as_nobody python3 -c "open('/proc/$NB_PID/mem','rb')" 2>/dev/null; then
    ihsm_fail "nobody opens /proc/PID/mem of its own ihsmd: ihsmd is dumpable"
fi
# an unprivileged ihsmd under RLIMIT_MEMLOCK still locks its secure heap
lck=$(vmlck_kib "$NB_PID")
limit=$(awk '/^Max locked memory/ { print $4 }' "/proc/$NB_PID/limits")
if [ "$limit" = unlimited ] || [ "$limit" -ge $((SECURE_KIB * 1024)) ]; then
    [ "${lck:-0}" -ge "$SECURE_KIB" ] || ihsm_fail "ihsmd as nobody: VmLck ${lck:-0} kB below the secure heap"
fi
echo "hardening: ok (as nobody: core limit 0, not dumpable, VmLck ${lck:-0} kB)"
