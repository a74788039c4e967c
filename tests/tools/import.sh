#!/bin/sh
# import (BYOK) of keys made by `openssl genpkey`: the device's signatures
# equal OpenSSL's own where the scheme is deterministic (RSA PKCS#1 v1.5,
# Ed25519), verify where it is not (ECDSA); import --out then sign --key.
. "$IHSM_SOURCE_DIR/tests/tools/common.sh"
tools_device_start
C="$IHSMCTL"
head -c 1000 /dev/urandom >"$T/msg"

# RSA-2048: PKCS#1 v1.5 is deterministic, so byte for byte
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa.pem" 2>/dev/null
ok "$C" import --in "$T/rsa.pem" --name imp-rsa
grep -Eq "^imported rsa-2048 key: name=imp-rsa handle=[0-9]+$" "$T/out" || { cat "$T/out" >&2; ihsm_fail "import printed no line"; }
ok "$C" sign --name imp-rsa --digest sha256 --in "$T/msg" --out "$T/dev.sig"
openssl dgst -sha256 -sign "$T/rsa.pem" -out "$T/ref.sig" "$T/msg"
cmp -s "$T/dev.sig" "$T/ref.sig" || ihsm_fail "device RSA signature differs from openssl dgst -sign"
ok "$C" pubkey --name imp-rsa
openssl pkey -in "$T/rsa.pem" -pubout >"$T/rsa.pub"
cmp -s "$T/out" "$T/rsa.pub" || ihsm_fail "imported key's public key differs from the original's"

# import --out only (no name), then sign with the key file
ok "$C" import --in "$T/rsa.pem" --out "$T/rsa-masked.pem"
grep -q "BEGIN IHSM MASKED KEY" "$T/rsa-masked.pem" || ihsm_fail "no masked key file written"
if grep -q "PRIVATE KEY" "$T/rsa-masked.pem"; then ihsm_fail "masked key file holds a private key"; fi
ok "$C" sign --key "$T/rsa-masked.pem" --digest sha256 --in "$T/msg" --out "$T/file.sig"
cmp -s "$T/file.sig" "$T/ref.sig" || ihsm_fail "signature with the imported key file differs"
ok "$C" list
if grep -q "rsa-masked" "$T/out"; then ihsm_fail "import without --name stored a key"; fi

# traditional (PKCS#1) PEM and DER input are read too
openssl pkey -in "$T/rsa.pem" -traditional -out "$T/rsa-trad.pem"
ok "$C" import --in "$T/rsa-trad.pem" --name imp-rsa-trad
openssl pkey -in "$T/rsa.pem" -outform DER -out "$T/rsa.der"
ok "$C" import --in "$T/rsa.der" --name imp-rsa-der
ok "$C" sign --name imp-rsa-der --in "$T/msg" --out "$T/der.sig"
cmp -s "$T/der.sig" "$T/ref.sig" || ihsm_fail "DER-imported key signs differently"

# EC P-256: ECDSA is randomised, so verify with the original's public key
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ec.pem" 2>/dev/null
openssl pkey -in "$T/ec.pem" -pubout -out "$T/ec.pub"
ok "$C" import --in "$T/ec.pem" --name imp-ec --out "$T/ec-masked.pem"
ok "$C" sign --name imp-ec --in "$T/msg" --out "$T/ec.sig"
openssl dgst -sha256 -verify "$T/ec.pub" -signature "$T/ec.sig" "$T/msg" >/dev/null \
    || ihsm_fail "openssl rejects the imported EC key's signature"
ok "$C" pubkey --key "$T/ec-masked.pem"
cmp -s "$T/out" "$T/ec.pub" || ihsm_fail "imported EC key file holds another public key"

# EC P-384
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$T/ec384.pem" 2>/dev/null
ok "$C" import --in "$T/ec384.pem" --name imp-ec384
grep -q "imported ec-p384 key" "$T/out" || ihsm_fail "P-384 key not recognised"

# Ed25519 is deterministic: byte for byte
openssl genpkey -algorithm ED25519 -out "$T/ed.pem"
ok "$C" import --in "$T/ed.pem" --name imp-ed
ok "$C" sign --name imp-ed --in "$T/msg" --out "$T/ed.sig"
openssl pkeyutl -sign -inkey "$T/ed.pem" -rawin -in "$T/msg" -out "$T/ed-ref.sig"
cmp -s "$T/ed.sig" "$T/ed-ref.sig" || ihsm_fail "device Ed25519 signature differs from openssl's"

# X25519 imports (derive keys)
openssl genpkey -algorithm X25519 -out "$T/x.pem"
ok "$C" import --in "$T/x.pem" --name imp-x
openssl pkey -in "$T/x.pem" -pubout -out "$T/x.pub"
ok "$C" pubkey --name imp-x
cmp -s "$T/out" "$T/x.pub" || ihsm_fail "imported X25519 public key differs"

# a raw AES key: encrypt/decrypt round trip through the device
head -c 32 /dev/urandom >"$T/aes.key"
ok "$C" import --aes-key "$T/aes.key" --name imp-aes
grep -q "imported aes-256 key" "$T/out" || ihsm_fail "AES key not imported as aes-256"
ok "$C" encrypt --name imp-aes --in "$T/msg" --out "$T/msg.enc"
ok "$C" decrypt --name imp-aes --in "$T/msg.enc" --out "$T/msg.dec"
cmp -s "$T/msg" "$T/msg.dec" || ihsm_fail "imported AES key does not round trip"

# what the device cannot hold is refused here, with the reason
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out "$T/k1.pem" 2>/dev/null
expect 1 "curve secp256k1" "$C" import --in "$T/k1.pem" --name k1
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$T/rsa1024.pem" 2>/dev/null
expect 1 "1024 bits" "$C" import --in "$T/rsa1024.pem" --name small
expect 1 "not a readable private key" "$C" import --in "$T/msg" --name junk
expect 1 "16 or 32 bytes" "$C" import --aes-key "$T/msg" --name junk
expect 1 "already exists" "$C" import --in "$T/ed.pem" --name imp-ed
expect 2 "give --name NAME" "$C" import --in "$T/ed.pem"
echo "import: ok"
