# Shell test fixture: a real ihsmd on a fresh partition in a scratch dir.
#
#   . "$IHSM_SOURCE_DIR/tests/lib/ihsmd.sh"
#   ihsm_device_start            # exports IHSM_SOCKET IHSM_CREDENTIAL IHSM_OFFICER_CREDENTIAL
#                                #         IHSM_SCRATCH IHSMD_PID
#   ...                          # IHSMCTL, IHSMD and IHSM_PROVIDER_ARGS are set too
#   ihsm_device_stop             # also runs on EXIT
#
# IHSM_CREDENTIAL is the partition's user credential (sign, derive, AEAD);
# IHSM_OFFICER_CREDENTIAL its crypto-officer credential, which ihsmctl's
# import, delete, zeroize and audit pick up by themselves.
# ihsm_device_restart keeps the state directory (keys survive, handles do not).
# Pass extra ihsmd flags in IHSMD_ARGS and extra init flags in IHSM_INIT_ARGS.

: "${IHSM_BUILD_DIR:?IHSM_BUILD_DIR must point at the build directory}"
IHSMD="$IHSM_BUILD_DIR/bin/ihsmd"
IHSMCTL="$IHSM_BUILD_DIR/bin/ihsmctl"
# default first: libssl enables only the TLS groups of the provider whose
# keymgmt an unqualified fetch returns, and unqualified key generation
# should stay in process; device keys are ihsm's whatever the order.
IHSM_PROVIDER_ARGS="-provider-path $IHSM_BUILD_DIR/lib -provider default -provider ihsm"
export IHSMD IHSMCTL IHSM_PROVIDER_ARGS

ihsm_fail() { echo "FAIL: $*" >&2; exit 1; }
ihsm_skip() { echo "SKIP: $*" >&2; exit 77; }

_ihsm_wait_socket() {
    for _ in $(seq 1 200); do
        [ -S "$IHSM_SOCKET" ] && return 0
        kill -0 "$IHSMD_PID" 2>/dev/null || { cat "$IHSM_SCRATCH/ihsmd.log" >&2; ihsm_fail "ihsmd exited at start"; }
        sleep 0.05
    done
    cat "$IHSM_SCRATCH/ihsmd.log" >&2
    ihsm_fail "ihsmd did not create $IHSM_SOCKET in 10 s"
}

_ihsm_launch() {
    # shellcheck disable=SC2086
    "$IHSMD" --state-dir "$IHSM_SCRATCH/state" --socket "$IHSM_SOCKET" ${IHSMD_ARGS:-} \
        >>"$IHSM_SCRATCH/ihsmd.log" 2>&1 &
    IHSMD_PID=$!
    export IHSMD_PID
    _ihsm_wait_socket
}

ihsm_device_start() {
    [ -x "$IHSMD" ] || ihsm_fail "no ihsmd at $IHSMD: build first"
    IHSM_SCRATCH=$(mktemp -d /tmp/ihsm-test.XXXXXX)
    IHSM_SOCKET="$IHSM_SCRATCH/ihsmd.sock"
    IHSM_CREDENTIAL="$IHSM_SCRATCH/test.cred"
    IHSM_OFFICER_CREDENTIAL="$IHSM_SCRATCH/test.cred.officer"
    export IHSM_SCRATCH IHSM_SOCKET IHSM_CREDENTIAL IHSM_OFFICER_CREDENTIAL
    trap ihsm_device_stop EXIT
    _ihsm_launch
    # shellcheck disable=SC2086
    "$IHSMCTL" --socket "$IHSM_SOCKET" init --partition test \
        --credential-out "$IHSM_CREDENTIAL" \
        --officer-credential-out "$IHSM_OFFICER_CREDENTIAL" ${IHSM_INIT_ARGS:-} >/dev/null \
        || ihsm_fail "ihsmctl init failed"
}

ihsm_device_kill() {
    [ -n "${IHSMD_PID:-}" ] || return 0
    # every step may find the daemon already gone: never fail under set -e
    kill "-${1:-TERM}" "$IHSMD_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$IHSMD_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$IHSMD_PID" 2>/dev/null || true
    wait "$IHSMD_PID" 2>/dev/null || true
    IHSMD_PID=
}

ihsm_device_restart() {
    ihsm_device_kill TERM
    rm -f "$IHSM_SOCKET"
    _ihsm_launch
}

ihsm_device_stop() {
    ihsm_device_kill TERM
    if [ -n "${IHSM_SCRATCH:-}" ] && [ -z "${IHSM_KEEP_SCRATCH:-}" ]; then
        rm -rf "$IHSM_SCRATCH"
    fi
}

# A free TCP port on loopback.
ihsm_free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# ihsm_stat NAME: one counter from `ihsmctl stats --json`.
ihsm_stat() {
    "$IHSMCTL" stats --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}
