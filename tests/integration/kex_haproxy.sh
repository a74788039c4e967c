#!/bin/bash
# Debian's HAProxy 2.6 (no change, no property query of its own) with the
# ephemeral key exchange in ihsmd, with and without ssl-mode-async (ASYNC
# jobs pause on the device's answers): curl gets the backend's page over
# TLS 1.3 with X25519, ihsm-tlsload makes 30 TLS 1.2 ECDHE P-256 handshakes,
# and the device's derive counter grows by one per handshake; with derive
# not routed it does not grow.
. "$IHSM_SOURCE_DIR/tests/integration/common.sh"
. "$IHSM_SOURCE_DIR/tests/integration/kex_common.sh"
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
[ -x "$HAPROXY" ] || ihsm_skip "haproxy is not installed (scripts/install-deps.sh)"
command -v curl >/dev/null || ihsm_skip "curl is not installed"
command -v python3 >/dev/null || ihsm_skip "python3 is not installed"
TLSLOAD="$IHSM_BUILD_DIR/bin/ihsm-tlsload"
[ -x "$TLSLOAD" ] || ihsm_skip "no $TLSLOAD: build ihsm-tlsload"
it_device_start

mkdir -p "$T/www"
echo "backend page behind ihsm" >"$T/www/index.html"
bport=$(ihsm_free_port)
it_bg "$T/backend.log" timeout 120 python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$bport"
it_wait_port "$bport" "$BG_PID" || { cat "$T/backend.log" >&2; ihsm_fail "backend did not start"; }
ok "$IHSMCTL" keygen --type ec-p256 --name site --out "$T/site.key"
it_cert "$T/site.key" "$T/site.crt" -sha256
cat "$T/site.crt" "$T/site.key" >"$T/site.pem"

# run ROUTE ASYNC: haproxy with that ihsm-route (ASYNC: "ssl-mode-async" or
# empty); 31 handshakes; GREW is the growth of the device's derive counter.
run() {
    local route=$1 async=$2 port hpid before after body
    kex_cnf "$T/kex.cnf" "$route"
    port=$(ihsm_free_port)
    cat >"$T/haproxy.cfg" <<EOF
global
    $async
    pidfile $T/haproxy.pid
    ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s

frontend tls
    bind 127.0.0.1:$port ssl crt $T/site.pem
    default_backend web

backend web
    server local 127.0.0.1:$bport
EOF
    OPENSSL_CONF=$T/kex.cnf it_bg "$T/haproxy.log" timeout 120 "$HAPROXY" -db -f "$T/haproxy.cfg"
    hpid=$BG_PID
    it_wait_port "$port" "$hpid" || { cat "$T/haproxy.log" >&2; ihsm_fail "haproxy did not start"; }
    before=$(kex_stat derive)
    body=$(OPENSSL_CONF=/dev/null curl -sS --tlsv1.3 --curves X25519 --cacert "$T/site.crt" \
           --resolve "localhost:$port:127.0.0.1" --max-time 10 "https://localhost:$port/index.html") \
        || { cat "$T/haproxy.log" >&2; ihsm_fail "$route $async: curl over TLS 1.3 failed"; }
    [ "$body" = "backend page behind ihsm" ] || ihsm_fail "$route $async: unexpected page: $body"
    OPENSSL_CONF=/dev/null ok "$TLSLOAD" handshake --connect "127.0.0.1:$port" --tls 1.2 \
        --groups P-256 --count 30 --concurrency 3 --json --quiet
    grep -q '"handshakes":30,' "$T/out" || { cat "$T/out" >&2; ihsm_fail "$route $async: 30 handshakes"; }
    grep -q '"errors":0,' "$T/out" || { cat "$T/out" >&2; ihsm_fail "$route $async: errors"; }
    after=$(kex_stat derive)
    it_stop "$hpid"
    GREW=$((after - before))
}

for async in ssl-mode-async ""; do
    run sign,derive "$async"
    [ "$GREW" -ge 31 ] || ihsm_fail "derive routed ($async): 31 handshakes, $GREW device derives"
    echo "ok: haproxy ${async:-blocking}, derive routed: 31 handshakes, $GREW device derives"
    run sign "$async"
    [ "$GREW" -eq 0 ] || ihsm_fail "derive not routed ($async): $GREW device derives"
    echo "ok: haproxy ${async:-blocking}, derive not routed: no device derive"
done
