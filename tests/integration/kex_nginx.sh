#!/bin/bash
# Debian's nginx (no code change, no property query of its own) with the
# ephemeral key exchange in ihsmd: openssl.cnf routes derive and sets
# `default_properties = ?ihsm.derive=yes`. curl gets the page over TLS 1.3
# with X25519, ihsm-tlsload makes 50 more handshakes, and the device's derive
# counter grows by one per handshake; with derive not routed it does not.
. "$IHSM_SOURCE_DIR/tests/integration/common.sh"
. "$IHSM_SOURCE_DIR/tests/integration/kex_common.sh"
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || ihsm_skip "nginx is not installed (scripts/install-deps.sh)"
command -v curl >/dev/null || ihsm_skip "curl is not installed"
TLSLOAD="$IHSM_BUILD_DIR/bin/ihsm-tlsload"
[ -x "$TLSLOAD" ] || ihsm_skip "no $TLSLOAD: build ihsm-tlsload"
it_device_start

PAGE="served by nginx, key exchange in ihsmd"

# nginx_conf CONF PORT: a foreground nginx with everything in $T.
nginx_conf() {
    mkdir -p "$T/nginx/logs" "$T/nginx/tmp"
    cat >"$1" <<EOF
daemon off;
master_process on;
worker_processes 2;
user root;
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log info;
env OPENSSL_CONF;
events { worker_connections 128; }
http {
    access_log off;
    client_body_temp_path $T/nginx/tmp/body;
    proxy_temp_path $T/nginx/tmp/proxy;
    fastcgi_temp_path $T/nginx/tmp/fastcgi;
    uwsgi_temp_path $T/nginx/tmp/uwsgi;
    scgi_temp_path $T/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$2 ssl;
        server_name localhost;
        ssl_certificate $T/web.crt;
        ssl_certificate_key $T/web.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { return 200 "$PAGE\n"; }
    }
}
EOF
}

ok "$IHSMCTL" keygen --type ec-p256 --name web --out "$T/web.pem"
it_cert "$T/web.pem" "$T/web.crt" -sha256
kex_cnf "$T/derive.cnf" "sign,derive"
kex_cnf "$T/sign.cnf" "sign"

# run CNF: nginx with that openssl.cnf, 51 handshakes (curl, then 50 from
# ihsm-tlsload); GREW is how much the device's derive counter grew.
run() {
    local cnf=$1 port pid before after body
    port=$(ihsm_free_port)
    nginx_conf "$T/nginx.conf" "$port"
    OPENSSL_CONF=$cnf ok "$NGINX" -e "$T/nginx/logs/startup.log" -t -p "$T/nginx" -c "$T/nginx.conf"
    OPENSSL_CONF=$cnf it_bg "$T/nginx.out" timeout 120 "$NGINX" -e "$T/nginx/logs/startup.log" \
        -p "$T/nginx" -c "$T/nginx.conf"
    pid=$BG_PID
    it_wait_port "$port" "$pid" \
        || { cat "$T/nginx.out" "$T/nginx/logs/error.log" >&2; ihsm_fail "nginx did not start"; }
    before=$(kex_stat derive)
    body=$(OPENSSL_CONF=/dev/null curl -sS --tlsv1.3 --curves X25519 --cacert "$T/web.crt" \
           --resolve "localhost:$port:127.0.0.1" --max-time 10 "https://localhost:$port/") \
        || { cat "$T/nginx/logs/error.log" >&2; ihsm_fail "curl over TLS 1.3 with X25519 failed"; }
    [ "$body" = "$PAGE" ] || ihsm_fail "unexpected page: $body"
    OPENSSL_CONF=/dev/null ok "$TLSLOAD" handshake --connect "127.0.0.1:$port" --tls 1.3 \
        --groups X25519 --count 50 --concurrency 2 --request / --json --quiet
    grep -q '"handshakes":50,' "$T/out" || { cat "$T/out" >&2; ihsm_fail "50 handshakes did not complete"; }
    grep -q '"errors":0,' "$T/out" || { cat "$T/out" >&2; ihsm_fail "errors in 50 handshakes"; }
    grep -q '"group":"x25519"' "$T/out" || { cat "$T/out" >&2; ihsm_fail "the group was not x25519"; }
    after=$(kex_stat derive)
    it_stop "$pid"
    GREW=$((after - before))
}

run "$T/derive.cnf"
[ "$GREW" -ge 51 ] || ihsm_fail "derive routed: 51 handshakes, the device derived $GREW times"
echo "ok: nginx, derive routed: 51 TLS 1.3 X25519 handshakes, $GREW device derives"

run "$T/sign.cnf"
[ "$GREW" -eq 0 ] || ihsm_fail "derive not routed: the device derived $GREW times"
echo "ok: nginx, derive not routed: handshakes in process, no device derive"
