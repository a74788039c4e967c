#!/bin/bash
# Keys stored in the device by name, used as ihsm: URIs: the public key
# read through the store equals `ihsmctl pubkey`, in every URI form;
# `openssl pkey -in ihsm:NAME` writes the key's masked file (KEY_MASK) that
# reads back as the same key; genpkey can store a key by name; and
# s_server serves TLS 1.3 with `-key ihsm:NAME`, the device signing.
. "$IHSM_SOURCE_DIR/tests/integration/common.sh"
it_device_start
it_openssl_cnf "$T/openssl.cnf"
export OPENSSL_CONF="$T/openssl.cnf"

ok "$IHSMCTL" keygen --type ec-p384 --name "web.site"
ok "$IHSMCTL" pubkey --name "web.site"
cp "$T/out" "$T/device.pub"

for uri in "ihsm:web%2Esite" "ihsm:name=web%2Esite" "ihsm:name=web%2Esite;type=private"; do
    ok "$OPENSSL" pkey -in "$uri" -pubout -out "$T/uri.pub"
    it_pub_equal "$T/uri.pub" "$T/device.pub" || ihsm_fail "$uri: public key differs from ihsmctl pubkey"
done
# the public half alone comes out as a plain public key of the default provider
for uri in "ihsm:web%2Esite?type=public" "ihsm:name=web%2Esite;type=public"; do
    ok "$OPENSSL" pkey -pubin -in "$uri" -pubout -out "$T/uri.pub"
    it_pub_equal "$T/uri.pub" "$T/device.pub" || ihsm_fail "$uri: public key differs"
done
echo "ok: ihsm: URI forms"

# private key out of a named key: its masked file, which loads as the same key
ok "$OPENSSL" pkey -in "ihsm:web%2Esite" -out "$T/named.pem"
grep -q "BEGIN IHSM MASKED KEY" "$T/named.pem" || ihsm_fail "pkey -in ihsm:NAME wrote no masked key"
ok "$OPENSSL" pkey -in "$T/named.pem" -pubout -out "$T/file.pub"
it_pub_equal "$T/file.pub" "$T/device.pub" || ihsm_fail "the masked file of a named key is another key"
echo "ok: a named key writes its masked key file"

# genpkey storing the key by name (a keymgmt gen parameter)
# shellcheck disable=SC2086
ok "$OPENSSL" genpkey $IT_PROVIDER_ARGS -propquery '?provider=ihsm' -algorithm EC \
    -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ihsm-name:made -out "$T/made.pem"
ok "$IHSMCTL" pubkey --name made
cp "$T/out" "$T/made.pub"
ok "$OPENSSL" pkey -in ihsm:made -pubout -out "$T/uri.pub"
it_pub_equal "$T/uri.pub" "$T/made.pub" || ihsm_fail "genpkey ihsm-name: stored another key"
echo "ok: genpkey -pkeyopt ihsm-name:NAME stores the key by name"

# TLS with -key ihsm:NAME
it_cert "ihsm:web%2Esite" "$T/web.crt" -sha384
port=$(ihsm_free_port)
it_bg "$T/server.log" timeout 60 "$OPENSSL" s_server -key "ihsm:web%2Esite" -cert "$T/web.crt" \
    -accept "127.0.0.1:$port" -www
server=$BG_PID
it_wait_line "$T/server.log" '^ACCEPT' "$server" || { cat "$T/server.log" >&2; ihsm_fail "s_server did not start"; }
before=$(it_sign_count)
printf 'GET / HTTP/1.0\r\n\r\n' | env -u OPENSSL_CONF timeout 20 "$OPENSSL" s_client -brief -ign_eof \
    -connect "127.0.0.1:$port" -servername localhost -tls1_3 -CAfile "$T/web.crt" \
    -verify_return_error >"$T/client.out" 2>&1 \
    || { cat "$T/client.out" "$T/server.log" >&2; ihsm_fail "s_client against -key ihsm:NAME failed"; }
grep -q "Protocol version: TLSv1.3" "$T/client.out" || { cat "$T/client.out" >&2; ihsm_fail "no TLS 1.3"; }
grep -q "HTTP/1.0 200 ok" "$T/client.out" || { cat "$T/client.out" >&2; ihsm_fail "no page"; }
after=$(it_sign_count)
[ "$after" -gt "$before" ] || ihsm_fail "the device made no signature"
it_stop "$server"
echo "ok: s_server -key ihsm:NAME, TLS 1.3"
