#!/bin/bash
# TLS record AEAD in ihsmd. s_server and s_client both load an openssl.cnf
# with aead in ihsm-route and `default_properties = ?ihsm.aead=yes`, so
# libssl's record ciphers are ihsm's: a 200 KiB file crosses intact over
# TLS 1.3 (AES-256-GCM, AES-128-GCM, ChaCha20-Poly1305) and TLS 1.2
# (ECDHE-ECDSA with AES-GCM and ChaCha20-Poly1305), and the device's aead
# counter grows by at least a record per 16 KiB each way. The control: the
# same files with ihsm-route = sign: the page still arrives, the counter
# does not move. nginx with the routed file serves a 64 KiB page to curl
# intact (sha256) while the counter grows.
. "$IHSM_SOURCE_DIR/tests/aead/common.sh"
it_device_start

ok "$IHSMCTL" keygen --type ec-p256 --name web --out "$T/web.pem"
it_cert "$T/web.pem" "$T/web.crt" -sha256
aead_cnf "$T/aead.cnf" "sign,aead" 1024 prefer   # records of 1 KiB and more
aead_cnf "$T/sign.cnf" "sign" 1024 prefer        # the control: aead not routed
aead_cnf "$T/never.cnf" "sign,aead" "" prefer     # routed, the default minimum: never
mkdir -p "$T/www"
head -c 204800 /dev/urandom >"$T/www/big.bin"
want=$(sha256sum <"$T/www/big.bin" | cut -d' ' -f1)

# serve CNF [DEBUG [ARGS...]]: s_server -WWW on a free port with that
# openssl.cnf (and IHSM_DEBUG=DEBUG, and more s_server ARGS); sets port, server.
serve() {
    local cnf=$1 dbg=${2:-0}
    shift
    [ $# -gt 0 ] && shift
    port=$(ihsm_free_port)
    it_bg "$T/server.log" env -C "$T/www" OPENSSL_CONF="$cnf" IHSM_DEBUG="$dbg" timeout 120 "$OPENSSL" s_server \
        -accept "127.0.0.1:$port" -cert "$T/web.crt" -key "$T/web.pem" -WWW "$@"
    server=$BG_PID
    it_wait_line "$T/server.log" '^ACCEPT' "$server" \
        || { cat "$T/server.log" >&2; ihsm_fail "s_server ($cnf) did not start"; }
}

# fetch CNF VERSION ARGS...: s_client with CNF GETs big.bin; checks the body.
fetch() {
    local cnf=$1 version=$2 got
    shift 2
    printf 'GET /big.bin HTTP/1.0\r\n\r\n' | OPENSSL_CONF="$cnf" timeout 30 "$OPENSSL" s_client \
        -brief -ign_eof -connect "127.0.0.1:$port" -servername localhost "-$version" \
        -CAfile "$T/web.crt" -verify_return_error "$@" >"$T/client.out" 2>"$T/client.err" \
        || { cat "$T/client.err" "$T/server.log" >&2; ihsm_fail "$version $*: s_client failed"; }
    # the body after the HTTP header, byte for byte
    got=$(python3 -c '
import hashlib, sys
d = open(sys.argv[1], "rb").read()
i = d.find(b"\r\n\r\n")
print(hashlib.sha256(d[i + 4:] if i >= 0 else b"").hexdigest())' "$T/client.out")
    [ "$got" = "$want" ] \
        || { head -c 300 "$T/client.out" >&2; cat "$T/client.err" >&2; ihsm_fail "$version $*: the file arrived damaged"; }
}

CASES=(
    "tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384"
    "tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256"
    "tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256"
    "tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384"
    "tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256"
    "tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305"
)

# --- routed: both ends seal and open their large records in the device
serve "$T/aead.cnf"
for c in "${CASES[@]}"; do
    read -r version opt val <<<"$c"
    before=$(aead_count)
    fetch "$T/aead.cnf" "$version" "$opt" "$val"
    after=$(aead_count)
    # 200 KiB is at least 13 full records: sealed by the server, opened by
    # the client
    [ "$after" -ge $((before + 26)) ] \
        || ihsm_fail "$version $val: the device's aead counter grew $before -> $after"
    grep -q "Ciphersuite: $val" "$T/client.err" \
        || { cat "$T/client.err" >&2; ihsm_fail "$version: the suite was not $val"; }
    echo "ok: routed $version $val: file intact, aead $before -> $after"
done
it_stop "$server"

# --- s_server -async: libssl writes records inside ASYNC jobs, which pause
# on the device's answers; the client stays in process
serve "$T/aead.cnf" 0 -async
for c in "${CASES[0]}" "${CASES[3]}"; do
    read -r version opt val <<<"$c"
    before=$(aead_count)
    fetch /dev/null "$version" "$opt" "$val"
    after=$(aead_count)
    [ "$after" -ge $((before + 13)) ] \
        || ihsm_fail "s_server -async $version $val: the device's aead counter grew $before -> $after"
    echo "ok: s_server -async $version $val: file intact, aead $before -> $after"
done
it_stop "$server"

# --- control: the same files without aead in ihsm-route
serve "$T/sign.cnf"
for c in "${CASES[@]}"; do
    read -r version opt val <<<"$c"
    before=$(aead_count)
    fetch "$T/sign.cnf" "$version" "$opt" "$val"
    after=$(aead_count)
    [ "$after" -eq "$before" ] \
        || ihsm_fail "$version $val: aead not routed, yet the device's counter moved ($before -> $after)"
done
echo "ok: not routed: ${#CASES[@]} transfers intact, aead counter unchanged"
it_stop "$server"

# --- routed with the default ihsm-aead-min-size (never): libssl uses ihsm's
# ciphers, which keep every record in process
serve "$T/never.cnf" 1
for c in "${CASES[0]}" "${CASES[3]}" "${CASES[5]}"; do
    read -r version opt val <<<"$c"
    before=$(aead_count)
    fetch "$T/never.cnf" "$version" "$opt" "$val"
    after=$(aead_count)
    [ "$after" -eq "$before" ] \
        || ihsm_fail "$version $val: min size never, yet the device's counter moved ($before -> $after)"
done
grep -q "cipher: new AES-256-GCM context (raw keys: in process)" "$T/server.log" \
    && grep -q "cipher: new ChaCha20-Poly1305 context (raw keys: in process)" "$T/server.log" \
    || { tail -n 20 "$T/server.log" >&2; ihsm_fail "s_server's records did not go through ihsm's ciphers"; }
echo "ok: routed with the default minimum: transfers intact through ihsm's ciphers, every record in process"
it_stop "$server"

# --- nginx: a 64 KiB page with the routed file
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
if [ ! -x "$NGINX" ] || ! command -v curl >/dev/null; then
    echo "skip: nginx or curl is not installed"
    exit 0
fi
mkdir -p "$T/nginx/logs" "$T/nginx/tmp" "$T/html"
head -c 65536 /dev/urandom >"$T/html/page.bin"
page_sum=$(sha256sum <"$T/html/page.bin" | cut -d' ' -f1)
port=$(ihsm_free_port)
cat >"$T/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 2;
user root;
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log info;
env OPENSSL_CONF;
events { worker_connections 128; }
http {
    access_log $T/nginx/logs/access.log;
    client_body_temp_path $T/nginx/tmp/body;
    proxy_temp_path $T/nginx/tmp/proxy;
    fastcgi_temp_path $T/nginx/tmp/fastcgi;
    uwsgi_temp_path $T/nginx/tmp/uwsgi;
    scgi_temp_path $T/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$port ssl;
        server_name localhost;
        ssl_certificate $T/web.crt;
        ssl_certificate_key $T/web.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $T/html;
    }
}
EOF
it_bg "$T/nginx.out" env OPENSSL_CONF="$T/aead.cnf" timeout 120 "$NGINX" \
    -e "$T/nginx/logs/startup.log" -p "$T/nginx" -c "$T/nginx.conf"
nginx_pid=$BG_PID
it_wait_port "$port" "$nginx_pid" \
    || { cat "$T/nginx.out" "$T/nginx/logs/error.log" >&2; ihsm_fail "nginx did not start"; }
for v in 1.3 1.2; do
    before=$(aead_count)
    # curl itself stays in process: only nginx's records can move the counter
    OPENSSL_CONF=/dev/null curl -sS "--tlsv$v" --tls-max "$v" --cacert "$T/web.crt" \
        --resolve "localhost:$port:127.0.0.1" --max-time 20 -o "$T/got.bin" \
        "https://localhost:$port/page.bin" \
        || { cat "$T/nginx/logs/error.log" >&2; ihsm_fail "curl over TLS $v failed"; }
    got=$(sha256sum <"$T/got.bin" | cut -d' ' -f1)
    [ "$got" = "$page_sum" ] || ihsm_fail "nginx TLS $v: the page arrived damaged"
    after=$(aead_count)
    [ "$after" -ge $((before + 4)) ] \
        || ihsm_fail "nginx TLS $v: 64 KiB sent, the device's aead counter grew $before -> $after"
    echo "ok: nginx TLS $v: 64 KiB page intact (sha256), aead $before -> $after"
done
it_stop "$nginx_pid"
