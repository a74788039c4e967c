# Shared by the integration tests (bash): a real ihsmd on a fresh partition,
# an openssl.cnf that loads the provider, certificates, servers in the
# foreground on free loopback ports, and checks of exit status and message.
set -euo pipefail
: "${IHSM_SOURCE_DIR:?run through ctest (IHSM_SOURCE_DIR unset)}"
. "$IHSM_SOURCE_DIR/tests/lib/ihsmd.sh"

[ -x "$IHSMD" ] || ihsm_skip "no ihsmd at $IHSMD: build it first"
[ -x "$IHSMCTL" ] || ihsm_skip "no ihsmctl at $IHSMCTL: build it first"
[ -f "$IHSM_BUILD_DIR/lib/ihsm.so" ] || ihsm_skip "no provider at $IHSM_BUILD_DIR/lib/ihsm.so: build it first"
command -v openssl >/dev/null || ihsm_skip "no openssl CLI"
OPENSSL=${OPENSSL:-openssl}
# The default provider first: where both offer an algorithm (EC keymgmt),
# a fetch without properties takes the first loaded. libssl only enables
# the TLS groups of a provider whose keymgmt that fetch returns, so with
# ihsm first P-256/P-384 drop out of TLS (TLS 1.2 ECDSA: "no shared
# cipher"). Keys from masked files and ihsm: URIs are ihsm's either way.
IT_PROVIDER_ARGS="-provider-path $IHSM_BUILD_DIR/lib -provider default -provider ihsm"
# Every wait below is bounded; servers are killed on exit.
IT_PIDS=()

it_cleanup() {
    set +e
    for pid in "${IT_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${IT_PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    IT_PIDS=()
    ihsm_device_stop
}

it_device_start() {
    ihsm_device_start
    trap it_cleanup EXIT
    T="$IHSM_SCRATCH"
    export T
}

# it_device_kill: stop ihsmd now (the fixture's kill is not written for set -e).
it_device_kill() {
    ihsm_device_kill TERM || true
    [ -z "${IHSMD_PID:-}" ] || ihsm_fail "ihsmd did not stop"
}

# it_openssl_cnf FILE: loads default and ihsm, points ihsm at this test's
# device. Servers get the paths from the file, not the environment (nginx
# clears its workers' environment).
it_openssl_cnf() {
    cat >"$1" <<EOF
openssl_conf = openssl_init

[openssl_init]
providers = provider_sect

[provider_sect]
default = default_sect
ihsm = ihsm_sect

[default_sect]
activate = 1

[ihsm_sect]
module = $IHSM_BUILD_DIR/lib/ihsm.so
activate = 1
ihsm-socket = $IHSM_SOCKET
ihsm-credential = $IHSM_CREDENTIAL
EOF
}

# expect RC PATTERN CMD...: CMD exits RC (or any nonzero for RC "fail") and
# its stdout+stderr match the extended regexp PATTERN (empty: no check).
# The output is left in $T/out.
expect() {
    local want=$1 pat=$2 rc
    shift 2
    set +e
    "$@" >"$T/out" 2>&1
    rc=$?
    set -e
    if { [ "$want" = fail ] && [ "$rc" = 0 ]; } || { [ "$want" != fail ] && [ "$rc" != "$want" ]; }; then
        cat "$T/out" >&2
        ihsm_fail "exit $rc, expected $want: $*"
    fi
    if [ -n "$pat" ] && ! grep -Eq -- "$pat" "$T/out"; then
        cat "$T/out" >&2
        ihsm_fail "output does not match /$pat/: $*"
    fi
}
ok() { expect 0 "" "$@"; }

# it_wait_port PORT [PID]: until something accepts on 127.0.0.1:PORT (10 s).
it_wait_port() {
    local port=$1 pid=${2:-}
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# it_wait_line FILE PATTERN [PID]: until FILE has a line matching PATTERN (10 s).
it_wait_line() {
    local file=$1 pat=$2 pid=${3:-}
    for _ in $(seq 1 200); do
        grep -Eq -- "$pat" "$file" 2>/dev/null && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# it_bg LOG CMD...: start CMD in the background (killed at exit); sets BG_PID.
it_bg() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    BG_PID=$!
    IT_PIDS+=("$BG_PID")
}

# it_stop PID: stop one background process now.
it_stop() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# it_cert KEY CERT [openssl args...]: self-signed certificate for localhost,
# signed by KEY (a masked key file or ihsm:NAME) through the provider.
it_cert() {
    local key=$1 cert=$2
    shift 2
    # shellcheck disable=SC2086
    "$OPENSSL" req $IT_PROVIDER_ARGS -x509 -new -key "$key" -out "$cert" -days 2 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost "$@" \
        || ihsm_fail "openssl req -x509 with $key failed"
}

# it_sign_count: the device's signature counter (`ihsmctl stats --json`,
# read without a python start per handshake).
it_sign_count() {
    local n
    n=$("$IHSMCTL" stats --json | tr -d ' \n' | grep -o '"sign":[0-9]*' | head -n 1 | cut -d: -f2)
    [ -n "$n" ] || ihsm_fail "ihsmctl stats --json has no \"sign\" counter"
    echo "$n"
}

# it_pub_equal A B: two PEM public keys are the same key.
it_pub_equal() {
    local a b
    a=$("$OPENSSL" pkey -pubin -in "$1" -outform DER | od -An -tx1 | tr -d ' \n')
    b=$("$OPENSSL" pkey -pubin -in "$2" -outform DER | od -An -tx1 | tr -d ' \n')
    [ -n "$a" ] && [ "$a" = "$b" ]
}
