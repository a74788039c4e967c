#!/bin/sh
# X.509 with device keys: self-signed certificates and CSRs signed through
# the provider (the AlgorithmIdentifier comes from our signature context)
# verify with OpenSSL alone; ihsm:NAME keys from the store work the same.
. "$IHSM_SOURCE_DIR/tests/provider/common.sh"

gen ec256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
gen ec384 -algorithm EC -pkeyopt ec_paramgen_curve:P-384
gen rsa -algorithm RSA -pkeyopt rsa_keygen_bits:2048
gen rsapss -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048
gen ed -algorithm ED25519

# cert NAME KEY [req args...]
cert() {
    _c=$1 _k=$2
    shift 2
    openssl req $PROV -x509 -key "$_k" -subj "/CN=$_c.ihsm.test" -days 2 "$@" \
        -out "$_c.crt" 2>"$_c.err" || { cat "$_c.err" >&2; ihsm_fail "req -x509 $_c"; }
    plain_openssl verify -CAfile "$_c.crt" "$_c.crt" >/dev/null \
        || ihsm_fail "certificate $_c does not verify"
    plain_openssl x509 -in "$_c.crt" -noout -text >"$_c.txt" || ihsm_fail "x509 -text $_c"
}
cert ec256 ec256.pem
grep -q "ecdsa-with-SHA256" ec256.txt || ihsm_fail "ec256: wrong signature algorithm"
cert ec384 ec384.pem -sha384
grep -q "ecdsa-with-SHA384" ec384.txt || ihsm_fail "ec384: wrong signature algorithm"
cert rsa rsa.pem -sha256
grep -q "sha256WithRSAEncryption" rsa.txt || ihsm_fail "rsa: wrong signature algorithm"
cert ed ed.pem
grep -q "ED25519" ed.txt || ihsm_fail "ed: wrong signature algorithm"
# RSA-PSS: the parameters in the AlgorithmIdentifier must be the ones used
cert pss rsa.pem -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
grep -q "rsassaPss" pss.txt || ihsm_fail "pss: not rsassaPss"
grep -q "Hash Algorithm: sha256" pss.txt || ihsm_fail "pss: hash parameter"
grep -q "mgf1 with sha256" pss.txt || ihsm_fail "pss: mgf1 parameter"
grep -q "Salt Length: 0x20" pss.txt || ihsm_fail "pss: salt length parameter"
cert pssmax rsa.pem -sha384 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:max
grep -q "Salt Length: 0xCE" pssmax.txt || ihsm_fail "pss max salt (2048-bit, SHA-384: 206)"
cert psskey rsapss.pem -sha256
grep -q "rsassaPss" psskey.txt || ihsm_fail "RSA-PSS key: not rsassaPss"

# The certificate carries the device key's public key.
for c in ec256 rsa ed; do
    plain_openssl x509 -in "$c.crt" -noout -pubkey | cmp -s - "$c.pub" \
        || ihsm_fail "certificate $c does not carry the key's public key"
done

# A CSR, checked by OpenSSL alone.
openssl req $PROV -new -key ec256.pem -subj /CN=csr.ihsm.test -out ec256.csr \
    || ihsm_fail "req -new"
plain_openssl req -in ec256.csr -verify -noout 2>&1 | grep -q "verify OK" \
    || ihsm_fail "CSR signature does not verify"

# A named key in the partition (-pkeyopt ihsm-name), used as ihsm:NAME.
$GENPKEY -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ihsm-name:web \
    -out web.pem || ihsm_fail "genpkey with ihsm-name"
"$IHSMCTL" list 2>/dev/null | grep -q web || ihsm_fail "ihsm-name did not store the key"
cert uri ihsm:web
openssl pkey $PROV -in web.pem -pubout | cmp -s - "$(plain_openssl x509 -in uri.crt -noout -pubkey >uri.pub; echo uri.pub)" \
    || ihsm_fail "ihsm:web is not the key genpkey made"
echo "PASS: certificates and CSRs signed in ihsmd verify with OpenSSL alone"
