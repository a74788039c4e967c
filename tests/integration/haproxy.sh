#!/bin/bash
# Debian's HAProxy with `ssl-mode-async` and a crt file holding the
# certificate and a masked key: curl gets the backend's page through it,
# the device signs the handshakes, and `haproxy -c` explains a crt file
# whose masked key belongs to another partition.
. "$IHSM_SOURCE_DIR/tests/integration/common.sh"
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
[ -x "$HAPROXY" ] || ihsm_skip "haproxy is not installed (scripts/install-deps.sh)"
command -v curl >/dev/null || ihsm_skip "curl is not installed"
command -v python3 >/dev/null || ihsm_skip "python3 is not installed"
it_device_start

it_openssl_cnf "$T/openssl.cnf"
export OPENSSL_CONF="$T/openssl.cnf"

# haproxy_cfg CFG CRT PORT BACKEND_PORT
haproxy_cfg() {
    cat >"$1" <<EOF
global
    ssl-mode-async
    pidfile $T/haproxy.pid
    ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s

frontend tls
    bind 127.0.0.1:$3 ssl crt $2
    default_backend web

backend web
    server local 127.0.0.1:$4
EOF
}

# the backend: a tiny HTTP server on loopback
mkdir -p "$T/www"
echo "backend page behind ihsm" >"$T/www/index.html"
bport=$(ihsm_free_port)
it_bg "$T/backend.log" timeout 120 python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$bport"
it_wait_port "$bport" "$BG_PID" || { cat "$T/backend.log" >&2; ihsm_fail "backend did not start"; }

ok "$IHSMCTL" keygen --type ec-p256 --name site --out "$T/site.key"
it_cert "$T/site.key" "$T/site.crt" -sha256
cat "$T/site.crt" "$T/site.key" >"$T/site.pem"

port=$(ihsm_free_port)
haproxy_cfg "$T/haproxy.cfg" "$T/site.pem" "$port" "$bport"
ok "$HAPROXY" -c -f "$T/haproxy.cfg"

before=$(it_sign_count)
it_bg "$T/haproxy.log" timeout 120 "$HAPROXY" -db -f "$T/haproxy.cfg"
hpid=$BG_PID
it_wait_port "$port" "$hpid" || { cat "$T/haproxy.log" >&2; ihsm_fail "haproxy did not start"; }
for v in --tlsv1.3 "--tlsv1.2 --tls-max 1.2" --tlsv1.3; do
    # shellcheck disable=SC2086
    body=$(curl -sS $v --cacert "$T/site.crt" --resolve "localhost:$port:127.0.0.1" \
           --max-time 10 "https://localhost:$port/index.html") \
        || { cat "$T/haproxy.log" >&2; ihsm_fail "curl through haproxy failed ($v)"; }
    [ "$body" = "backend page behind ihsm" ] || ihsm_fail "unexpected page: $body"
done
after=$(it_sign_count)
[ "$after" -ge $((before + 3)) ] || ihsm_fail "the device signed $((after - before)) times for 3 handshakes"
it_stop "$hpid"
echo "ok: haproxy (ssl-mode-async) served TLS 1.3 and 1.2 with the masked key, $((after - before)) device signatures"

# a crt file whose masked key comes from another partition. HAProxy drops
# OpenSSL's error and says "No Private Key found": the provider's own line
# on stderr must say why.
ok "$IHSMCTL" init --partition other --credential-out "$T/other.cred"
ok "$IHSMCTL" --credential "$T/other.cred" keygen --type ec-p256 --name theirs --out "$T/theirs.key"
IHSM_CREDENTIAL="$T/other.cred" it_cert "$T/theirs.key" "$T/theirs.crt" -sha256
cat "$T/theirs.crt" "$T/theirs.key" >"$T/theirs.pem"
haproxy_cfg "$T/haproxy-theirs.cfg" "$T/theirs.pem" "$port" "$bport"
expect fail "ihsm: cannot load masked key: .*corrupt or foreign masked key" \
    "$HAPROXY" -c -f "$T/haproxy-theirs.cfg"
echo "ok: haproxy -c says the masked key is corrupt or foreign"
