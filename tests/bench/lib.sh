# Shared by the ihsm-tlsload tests: a scratch dir, a self-signed EC P-256
# certificate, free loopback ports, servers that are stopped on exit, and
# JSON field access.
: "${IHSM_BUILD_DIR:?IHSM_BUILD_DIR must point at the build directory}"
TLSLOAD="$IHSM_BUILD_DIR/bin/ihsm-tlsload"

tl_fail() { echo "FAIL: $*" >&2; exit 1; }
tl_skip() { echo "SKIP: $*" >&2; exit 77; }

[ -x "$TLSLOAD" ] || tl_fail "no ihsm-tlsload at $TLSLOAD: build it first"

TL_SCRATCH=$(mktemp -d /tmp/ihsm-tlsload-test.XXXXXX)
TL_PIDS=()
tl_cleanup() {
    for p in "${TL_PIDS[@]}"; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$TL_SCRATCH"
}
trap tl_cleanup EXIT

tl_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

tl_make_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$TL_SCRATCH/key.pem" -out "$TL_SCRATCH/cert.pem" -days 2 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        >"$TL_SCRATCH/req.log" 2>&1 || { cat "$TL_SCRATCH/req.log" >&2; tl_fail "cannot make a certificate"; }
}

# tl_wait_listen PORT PID LOG: 0 once PORT listens, 1 if PID died first.
tl_wait_listen() {
    for _ in $(seq 1 100); do
        ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    cat "$3" >&2
    tl_fail "server (pid $2) did not listen on port $1 in 5 s"
}

# tl_s_server NAME ARGS...: starts openssl s_server -www with the scratch
# certificate on a free port; sets TL_PORT. Retries if the port was taken.
tl_s_server() {
    local name=$1 pid
    shift
    for _ in 1 2 3; do
        TL_PORT=$(tl_free_port)
        openssl s_server -www -quiet -accept "127.0.0.1:$TL_PORT" \
            -cert "$TL_SCRATCH/cert.pem" -key "$TL_SCRATCH/key.pem" "$@" \
            >"$TL_SCRATCH/$name.log" 2>&1 </dev/null &
        pid=$!
        TL_PIDS+=("$pid")
        tl_wait_listen "$TL_PORT" "$pid" "$TL_SCRATCH/$name.log" && return 0
    done
    cat "$TL_SCRATCH/$name.log" >&2
    tl_fail "openssl s_server ($name) did not start"
}

# tl_json FILE EXPR: evaluates EXPR over the JSON object d read from FILE.
tl_json() {
    python3 - "$1" "$2" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    d = json.loads(f.read())
print(eval(sys.argv[2], {}, {"d": d}))
PY
}

# tl_check FILE EXPR WHAT: fails the test unless EXPR is true.
tl_check() {
    [ "$(tl_json "$1" "$2")" = "True" ] || { cat "$1" >&2; tl_fail "$3 ($2)"; }
}
