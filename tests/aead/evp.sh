#!/bin/bash
# KEY_LOAD_SESSION on the wire (session_proto.c), then the AEAD ciphers
# through the EVP API (aead_evp.c) against a real ihsmd:
# device keys by name and by key file, raw keys against the default
# provider, TLS 1.2 records, ASYNC jobs, session keys, fetch routing.
. "$IHSM_SOURCE_DIR/tests/aead/common.sh"
PROG="$IHSM_BUILD_DIR/bin/test_aead_evp"
[ -x "$PROG" ] || ihsm_skip "no $PROG: build the test_aead_evp target"
it_device_start

ok "$IHSMCTL" keygen --type aes-256 --name k --out "$T/k.pem"
ok "$IHSMCTL" keygen --type aes-128 --name k128
head -c 3000 /dev/urandom >"$T/msg.bin"
head -c 20 /dev/urandom >"$T/aad.bin"
ok "$IHSMCTL" encrypt --name k --in "$T/msg.bin" --aad "$T/aad.bin" --out "$T/enc.bin"
aead_cnf "$T/aead.cnf" "sign,aead" 0
aead_cnf "$T/pref.cnf" "sign,aead" 0 prefer
aead_cnf "$T/sign.cnf" "sign"
export IHSMCTL

"$IHSM_BUILD_DIR/bin/test_aead_session_proto" || ihsm_fail "KEY_LOAD_SESSION on the wire"
before=$(aead_count)
"$PROG" "$T" || ihsm_fail "aead_evp failed"
after=$(aead_count)
[ "$after" -gt $((before + 300)) ] || ihsm_fail "the device's aead counter grew by $((after - before)) only"
echo "PASS: AEAD through the EVP API ($((after - before)) device AEAD operations)"
