#!/bin/bash
# The files in examples/ work as shipped, once their paths point at this
# test's device: openssl.cnf loads the provider and reads a masked key,
# `nginx -t` accepts examples/nginx.conf and `haproxy -c` examples/haproxy.cfg
# with a masked key behind them.
. "$IHSM_SOURCE_DIR/tests/integration/common.sh"
EX="$IHSM_SOURCE_DIR/examples"
it_device_start

ok "$IHSMCTL" keygen --type ec-p256 --name web --out "$T/web.key"

# openssl.cnf: module, socket and credential moved to this test
sed -e "s|^module = .*|module = $IHSM_BUILD_DIR/lib/ihsm.so|" \
    -e "s|^ihsm-socket = .*|ihsm-socket = $IHSM_SOCKET|" \
    -e "s|^ihsm-credential = .*|ihsm-credential = $IHSM_CREDENTIAL|" \
    "$EX/openssl.cnf" >"$T/openssl.cnf"
export OPENSSL_CONF="$T/openssl.cnf"
# the file's own settings must be what the provider uses: not the fixture's
# environment
( unset IHSM_SOCKET IHSM_CREDENTIAL
  "$OPENSSL" pkey -in "$T/web.key" -pubout -out "$T/web.pub" ) \
    || ihsm_fail "examples/openssl.cnf does not load the masked key"
"$OPENSSL" list -providers | grep -q "ihsm" || ihsm_fail "examples/openssl.cnf does not load ihsm"
it_cert "$T/web.key" "$T/web.crt" -sha256
echo "ok: examples/openssl.cnf"

if command -v nginx >/dev/null; then
    mkdir -p "$T/nginx/logs" "$T/www"
    port=$(ihsm_free_port)
    sed -e "s|/etc/ihsm/web.crt|$T/web.crt|; s|/etc/ihsm/web.key|$T/web.key|" \
        -e "s|/run/nginx.pid|$T/nginx/nginx.pid|; s|/var/log/nginx|$T/nginx/logs|" \
        -e "s|listen 443|listen 127.0.0.1:$port|; s|listen \[::\]:443|listen [::1]:$port|" \
        -e "s|/var/www/html|$T/www|" \
        "$EX/nginx.conf" >"$T/nginx.conf"
    ok nginx -e "$T/nginx/logs/startup.log" -t -p "$T/nginx" -c "$T/nginx.conf"
    echo "ok: examples/nginx.conf"
else
    echo "skip: no nginx"
fi

if command -v haproxy >/dev/null; then
    mkdir -p "$T/haproxy"
    cat "$T/web.crt" "$T/web.key" >"$T/haproxy/web.pem"
    port=$(ihsm_free_port)
    sed -e "s|/etc/haproxy/certs/web.pem|$T/haproxy/web.pem|" \
        -e "s|/run/haproxy/admin.sock|$T/haproxy/admin.sock|" \
        -e "s|bind :443|bind 127.0.0.1:$port|" \
        "$EX/haproxy.cfg" >"$T/haproxy.cfg"
    ok haproxy -c -f "$T/haproxy.cfg"
    grep -q "Configuration file is valid" "$T/out" || { cat "$T/out" >&2; ihsm_fail "haproxy -c"; }
    echo "ok: examples/haproxy.cfg"
else
    echo "skip: no haproxy"
fi
