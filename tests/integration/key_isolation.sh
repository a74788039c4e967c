#!/bin/bash
# The TLS process never holds the private key. A key made in the clear (EC
# P-256, then RSA-2048) is imported into the device (BYOK) and nginx serves
# with the masked file;
# after a few hundred handshakes no nginx process (master or worker) has the
# key's secret bytes anywhere in its memory. The control run serves the
# same key from the clear file and must find them: the scan works.
. "$IHSM_SOURCE_DIR/tests/integration/common.sh"
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || ihsm_skip "nginx is not installed (scripts/install-deps.sh)"
command -v python3 >/dev/null || ihsm_skip "python3 is not installed"
[ "$(id -u)" = 0 ] || ihsm_skip "reading other processes' memory needs root"
it_device_start
it_openssl_cnf "$T/openssl.cnf"
export OPENSSL_CONF="$T/openssl.cnf"
SCAN="$IHSM_SOURCE_DIR/tests/integration/memscan.py"
HANDSHAKES=${IHSM_ISOLATION_HANDSHAKES:-300}

# mk_keys KIND: a key in the clear, made without the provider, its masked
# import (BYOK) and a certificate
mk_keys() {
    local gen
    case $1 in
    ec) gen="-algorithm EC -pkeyopt ec_paramgen_curve:P-256" ;;
    rsa) gen="-algorithm RSA -pkeyopt rsa_keygen_bits:2048" ;;
    esac
    rm -f "$T/plain.pem" "$T/masked.pem" "$T/web.crt"
    # shellcheck disable=SC2086
    env -u OPENSSL_CONF "$OPENSSL" genpkey $gen -out "$T/plain.pem" 2>/dev/null \
        || ihsm_fail "cannot make the clear $1 key"
    ok "$IHSMCTL" import --in "$T/plain.pem" --out "$T/masked.pem"
    grep -q "BEGIN IHSM MASKED KEY" "$T/masked.pem" || ihsm_fail "import wrote no masked key"
    env -u OPENSSL_CONF "$OPENSSL" req -x509 -new -key "$T/plain.pem" -out "$T/web.crt" -days 2 \
        -subj /CN=localhost -sha256 2>/dev/null || ihsm_fail "cannot make the certificate"
}

# run KEYFILE: nginx with that key, HANDSHAKES full handshakes, then the scan
run() {
    local key=$1 label=$2 port pid
    port=$(ihsm_free_port)
    mkdir -p "$T/$label/logs" "$T/$label/tmp"
    cat >"$T/$label/nginx.conf" <<EOF
daemon off;
worker_processes 2;
user root;
pid $T/$label/nginx.pid;
error_log $T/$label/logs/error.log;
env OPENSSL_CONF;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $T/$label/tmp/body;
    proxy_temp_path $T/$label/tmp/proxy;
    fastcgi_temp_path $T/$label/tmp/fastcgi;
    uwsgi_temp_path $T/$label/tmp/uwsgi;
    scgi_temp_path $T/$label/tmp/scgi;
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $T/web.crt;
        ssl_certificate_key $key;
        ssl_session_cache off;
        ssl_session_tickets off;
        location / { return 200 "ok\n"; }
    }
}
EOF
    it_bg "$T/$label/nginx.out" timeout 120 "$NGINX" -e "$T/$label/logs/startup.log" \
        -p "$T/$label" -c "$T/$label/nginx.conf"
    pid=$BG_PID
    it_wait_port "$port" "$pid" \
        || { cat "$T/$label/nginx.out" "$T/$label/logs/error.log" >&2; ihsm_fail "$label: nginx did not start"; }

    # bounded: HANDSHAKES new sessions or 20 s, whichever comes first
    python3 - "$port" "$HANDSHAKES" <<'PY' || ihsm_fail "$label: handshakes failed"
import socket, ssl, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
done, end = 0, time.time() + 20
while done < n and time.time() < end:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            t.recv(256)
    done += 1
print(f"{done} handshakes")
sys.exit(0 if done >= min(n, 50) else 1)
PY
    PIDS="$(cat "$T/$label/nginx.pid") $(pgrep -P "$(cat "$T/$label/nginx.pid")" | tr '\n' ' ')"
    set +e
    python3 "$SCAN" "$T/plain.pem" $PIDS >"$T/$label/scan.out" 2>&1
    SCAN_RC=$?
    set -e
    cat "$T/$label/scan.out"
    it_stop "$pid"
}

for kind in ec rsa; do
    mk_keys "$kind"
    before=$(it_sign_count)
    run "$T/masked.pem" "$kind-masked"
    after=$(it_sign_count)
    [ "$SCAN_RC" = 0 ] || ihsm_fail "$kind: the key's secret bytes are in nginx's memory with the masked key (see above)"
    [ "$(echo "$PIDS" | wc -w)" -ge 3 ] || ihsm_fail "expected a master and 2 workers, scanned: $PIDS"
    [ "$after" -ge $((before + 50)) ] || ihsm_fail "$kind: the device signed only $((after - before)) times"
    echo "ok: $kind masked key: no secret bytes in nginx ($PIDS), $((after - before)) device signatures"

    run "$T/plain.pem" "$kind-plain"
    [ "$SCAN_RC" = 1 ] || ihsm_fail "$kind control: the scan did not find the clear key in nginx's memory (rc $SCAN_RC)"
    echo "ok: $kind control: the clear key is found in nginx's memory, so the scan works"
done
