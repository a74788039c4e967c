#!/bin/bash
# Key exchange with device keys: the EVP API (prov_kex.c: agreement with the
# default provider, invalid peer points refused by ihsmd itself, ephemeral
# keys released) and `openssl pkeyutl -derive` with an X25519 key file, which
# is refused with a reason when derive is not in ihsm-route.
set -u
. "$IHSM_SOURCE_DIR/tests/lib/ihsmd.sh"
PROG="$IHSM_BUILD_DIR/bin/test_prov_kex"
[ -x "$PROG" ] || ihsm_skip "no $PROG"
[ -f "$IHSM_BUILD_DIR/lib/ihsm.so" ] || ihsm_fail "no ihsm.so in $IHSM_BUILD_DIR/lib"
ihsm_device_start
T=$IHSM_SCRATCH

# cnf FILE ROUTE
cnf() {
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
ihsm-route = $2
EOF
}
cnf "$T/derive.cnf" sign,derive
cnf "$T/sign.cnf" sign

"$IHSMCTL" keygen --type x25519 --name kx --out "$T/x25519.pem" >/dev/null || ihsm_fail "keygen x25519"
"$IHSMCTL" keygen --type ec-p256 --usage sign,derive --name k256 --out "$T/p256.pem" >/dev/null \
    || ihsm_fail "keygen ec-p256 sign,derive"
"$IHSMCTL" keygen --type ec-p384 --usage derive --name k384 --out "$T/p384.pem" >/dev/null \
    || ihsm_fail "keygen ec-p384 derive"
"$IHSMCTL" keygen --type ec-p256 --name signer --out "$T/signer.pem" >/dev/null \
    || ihsm_fail "keygen ec-p256"

"$PROG" "$T/derive.cnf" "$T/x25519.pem" "$T/p256.pem" "$T/p384.pem" "$T/signer.pem" \
    || ihsm_fail "prov_kex failed"

# the openssl CLI: pkeyutl -derive with the device key against a software peer
OPENSSL=${OPENSSL:-openssl}
OPENSSL_CONF=/dev/null "$OPENSSL" genpkey -algorithm X25519 -out "$T/peer.key" || ihsm_fail "genpkey"
OPENSSL_CONF=/dev/null "$OPENSSL" pkey -in "$T/peer.key" -pubout -out "$T/peer.pub" || ihsm_fail "pkey"
OPENSSL_CONF="$T/derive.cnf" "$OPENSSL" pkey -in "$T/x25519.pem" -pubout -out "$T/dev.pub" \
    || ihsm_fail "pkey -pubout of the device key"
OPENSSL_CONF="$T/derive.cnf" "$OPENSSL" pkeyutl -derive -inkey "$T/x25519.pem" \
    -peerkey "$T/peer.pub" -out "$T/s1" || ihsm_fail "pkeyutl -derive with the device key"
OPENSSL_CONF=/dev/null "$OPENSSL" pkeyutl -derive -inkey "$T/peer.key" -peerkey "$T/dev.pub" \
    -out "$T/s2" || ihsm_fail "pkeyutl -derive in software"
[ "$(wc -c <"$T/s1")" -eq 32 ] && cmp -s "$T/s1" "$T/s2" \
    || ihsm_fail "pkeyutl: the device's shared secret differs from the software side's"
echo "ok: pkeyutl -derive with a device X25519 key agrees with the software peer"

if OPENSSL_CONF="$T/sign.cnf" "$OPENSSL" pkeyutl -derive -inkey "$T/x25519.pem" \
       -peerkey "$T/peer.pub" -out "$T/s3" >"$T/err" 2>&1; then
    ihsm_fail "pkeyutl -derive succeeded with derive not routed"
fi
grep -q "not routed to the device" "$T/err" || { cat "$T/err" >&2; ihsm_fail "no reason given"; }
echo "ok: derive not in ihsm-route: refused with the reason"
echo "PASS: key exchange through the EVP API and the CLI"
