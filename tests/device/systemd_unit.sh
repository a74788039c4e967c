#!/bin/bash
# The example systemd unit (examples/ihsmd.service) is what it says: it
# parses cleanly (systemd-analyze verify, with ExecStart pointed at this
# build), carries each hardening setting the deployment depends on, lets
# io_uring through its system call filter, and systemd's own scoring
# (systemd-analyze security --offline=true) rates its exposure below
# THRESHOLD (0.0 best .. 10.0 worst; "SAFE" is below 2). 77 without
# systemd-analyze or its offline mode (systemd < 250).
set -eu
: "${IHSM_SOURCE_DIR:?run through ctest (IHSM_SOURCE_DIR unset)}"
: "${IHSM_BUILD_DIR:?run through ctest (IHSM_BUILD_DIR unset)}"
UNIT="$IHSM_SOURCE_DIR/examples/ihsmd.service"
THRESHOLD=1.0
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is not installed (apt-get install systemd)"; exit 77; }
T=$(mktemp -d /tmp/ihsm-unit.XXXXXX)
trap 'rm -rf "$T"' EXIT

# 1. the settings themselves
want() { grep -Eq "^$1\$" "$UNIT" || fail "examples/ihsmd.service lacks $1"; }
want 'DynamicUser=yes'
want 'User=ihsm'
want 'NoNewPrivileges=yes'
want 'ProtectSystem=strict'
want 'ProtectHome=yes'
want 'PrivateTmp=yes'
want 'PrivateDevices=yes'
want 'SystemCallFilter=@system-service'
want 'SystemCallFilter=io_uring_setup io_uring_enter io_uring_register'
want 'SystemCallArchitectures=native'
want 'MemoryDenyWriteExecute=yes'
want 'RestrictAddressFamilies=AF_UNIX'
want 'LockPersonality=yes'
want 'RestrictRealtime=yes'
want 'CapabilityBoundingSet='
want 'LimitCORE=0'
want 'LimitMEMLOCK=infinity'
want 'StateDirectory=ihsm'
want 'RuntimeDirectory=ihsm'
# nothing ihsmd calls is filtered out: io_uring is allowed by name, and the
# denied groups hold none of its calls
for sc in io_uring_setup io_uring_enter io_uring_register mlock mlockall prctl madvise \
    getrandom flock fsync fdatasync renameat; do
    for deny in @privileged @resources; do
        if systemd-analyze syscall-filter "$deny" 2>/dev/null | grep -qx "    $sc"; then
            fail "the unit denies $deny, which holds $sc (ihsmd needs it)"
        fi
    done
done

# 2. it parses: no unknown keys, no bad values
sed "s#^ExecStart=/usr/local/bin/ihsmd#ExecStart=$IHSM_BUILD_DIR/bin/ihsmd#" "$UNIT" >"$T/ihsmd.service"
if ! systemd-analyze verify --man=no "$T/ihsmd.service" >"$T/verify.out" 2>&1 || [ -s "$T/verify.out" ]; then
    cat "$T/verify.out" >&2
    fail "systemd-analyze verify objects to examples/ihsmd.service"
fi

# 3. the exposure score
if ! systemd-analyze security --offline=true "$UNIT" >"$T/score.out" 2>&1; then
    if grep -qi "unrecognized option\|unknown option" "$T/score.out"; then
        echo "SKIP: this systemd-analyze has no --offline mode"
        exit 77
    fi
fi
line=$(grep "Overall exposure level for ihsmd.service" "$T/score.out" || true)
[ -n "$line" ] || { cat "$T/score.out" >&2; fail "systemd-analyze security printed no exposure level"; }
echo "$line"
grep "✗" "$T/score.out" || true
score=$(echo "$line" | sed -n 's/.*ihsmd.service: \([0-9][0-9.]*\).*/\1/p')
awk -v s="$score" -v t="$THRESHOLD" 'BEGIN { exit !(s < t) }' \
    || fail "exposure $score is not below $THRESHOLD"
echo "systemd_unit: ok (exposure $score < $THRESHOLD)"
