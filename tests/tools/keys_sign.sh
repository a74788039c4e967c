#!/bin/sh
# keygen of every type -> pubkey -> sign -> openssl verifies (and rejects a
# modified file); ihsmctl verify agrees; key files work like names; list and
# delete.
. "$IHSM_SOURCE_DIR/tests/tools/common.sh"
tools_device_start
C="$IHSMCTL"
head -c 3000 /dev/urandom >"$T/msg"
cp "$T/msg" "$T/msg.bad"
printf 'x' >>"$T/msg.bad"

openssl_verify() { # type pub sig file digest
    case "$1" in
    ed25519) openssl pkeyutl -verify -pubin -inkey "$2" -rawin -in "$4" -sigfile "$3" ;;
    *) openssl dgst "-$5" -verify "$2" -signature "$3" "$4" ;;
    esac
}

for spec in rsa-2048:sha256 rsa-3072:sha384 rsa-4096:sha512 ec-p256:sha256 ec-p384:sha384 ed25519:sha256; do
    type=${spec%%:*} md=${spec#*:}
    ok "$C" keygen --type "$type" --name "k-$type" --out "$T/$type.pem"
    grep -Eq "^generated $type key: name=k-$type handle=[0-9]+ file=$T/$type.pem$" "$T/out" \
        || { cat "$T/out" >&2; ihsm_fail "keygen $type printed no name/type/handle line"; }
    [ "$(stat -c %a "$T/$type.pem")" = 600 ] || ihsm_fail "$type key file is not mode 0600"
    grep -q "BEGIN IHSM MASKED KEY" "$T/$type.pem" || ihsm_fail "$type key file has no PEM block"

    ok "$C" pubkey --name "k-$type"
    cp "$T/out" "$T/$type.pub"
    ok "$C" pubkey --key "$T/$type.pem"
    cmp -s "$T/out" "$T/$type.pub" || ihsm_fail "$type: pubkey --key differs from --name"
    openssl pkey -pubin -in "$T/$type.pub" -noout || ihsm_fail "$type: openssl cannot read the public key"

    ok "$C" sign --name "k-$type" --digest "$md" --in "$T/msg" --out "$T/$type.sig"
    openssl_verify "$type" "$T/$type.pub" "$T/$type.sig" "$T/msg" "$md" >/dev/null \
        || ihsm_fail "$type: openssl rejects the device's signature"
    if openssl_verify "$type" "$T/$type.pub" "$T/$type.sig" "$T/msg.bad" "$md" >/dev/null 2>&1; then
        ihsm_fail "$type: openssl accepts the signature over a modified file"
    fi
    ok "$C" verify --name "k-$type" --digest "$md" --in "$T/msg" --sig "$T/$type.sig"
    expect 1 "does NOT match" "$C" verify --key "$T/$type.pem" --digest "$md" --in "$T/msg.bad" --sig "$T/$type.sig"

    # the key file signs as well as the name
    ok "$C" sign --key "$T/$type.pem" --digest "$md" --in "$T/msg" --out "$T/$type.sig2"
    openssl_verify "$type" "$T/$type.pub" "$T/$type.sig2" "$T/msg" "$md" >/dev/null \
        || ihsm_fail "$type: openssl rejects the signature made with the key file"
done

# ECDSA is DER, RSA raw of modulus length, Ed25519 64 bytes
openssl asn1parse -inform DER -in "$T/ec-p256.sig" >/dev/null || ihsm_fail "ECDSA signature is not DER"
[ "$(stat -c %s "$T/rsa-3072.sig")" = 384 ] || ihsm_fail "RSA-3072 signature is not 384 bytes"
[ "$(stat -c %s "$T/ed25519.sig")" = 64 ] || ihsm_fail "Ed25519 signature is not 64 bytes"

# RSA-PSS, checked by openssl with the same parameters
ok "$C" sign --name k-rsa-2048 --scheme pss --digest sha256 --in "$T/msg" --out "$T/pss.sig"
openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
    -verify "$T/rsa-2048.pub" -signature "$T/pss.sig" "$T/msg" >/dev/null \
    || ihsm_fail "openssl rejects the RSA-PSS signature"
ok "$C" verify --name k-rsa-2048 --scheme pss --in "$T/msg" --sig "$T/pss.sig"
expect 1 "does NOT match" "$C" verify --name k-rsa-2048 --in "$T/msg" --sig "$T/pss.sig"

# --digest none: the file is the digest
openssl dgst -sha256 -binary "$T/msg" >"$T/msg.sha256"
ok "$C" sign --name k-ec-p256 --digest none --in "$T/msg.sha256" --out "$T/pre.sig"
openssl dgst -sha256 -verify "$T/ec-p256.pub" -signature "$T/pre.sig" "$T/msg" >/dev/null \
    || ihsm_fail "openssl rejects the signature over a precomputed digest"

# keys that cannot sign, and schemes that do not fit
ok "$C" keygen --type x25519 --name k-x25519
ok "$C" pubkey --name k-x25519
openssl pkey -pubin -in "$T/out" -noout -text | grep -q X25519 || ihsm_fail "x25519 public key unreadable"
expect 1 "cannot sign" "$C" sign --name k-x25519 --in "$T/msg" --out "$T/x.sig"
ok "$C" keygen --type aes-128 --name k-aes128
ok "$C" keygen --type aes-256 --name k-aes --out "$T/aes.pem"
expect 1 "has no public key" "$C" pubkey --name k-aes
expect 1 "cannot sign" "$C" sign --name k-aes --in "$T/msg" --out "$T/x.sig"
expect 2 "does not fit" "$C" sign --name k-ec-p256 --scheme pss --in "$T/msg" --out "$T/x.sig"

# list, duplicates, delete
ok "$C" list
for type in rsa-2048 rsa-3072 rsa-4096 ec-p256 ec-p384 ed25519 x25519; do
    grep -Eq "^k-$type +$type +" "$T/out" || { cat "$T/out" >&2; ihsm_fail "list lacks k-$type"; }
done
grep -Eq "^k-aes +aes-256 +encrypt,decrypt" "$T/out" || ihsm_fail "list lacks k-aes with its usage"
ok "$C" list --json
json_check "$T/out" "len(j) == 9 and {'name': 'k-ed25519', 'type': 'ed25519', 'bits': 256, 'usage': 'sign'} in j"
expect 1 "already exists in partition 'test'" "$C" keygen --type ec-p256 --name k-ec-p256
ok "$C" delete --name k-ec-p256
expect 1 "no key named 'k-ec-p256' in partition 'test'" "$C" sign --name k-ec-p256 --in "$T/msg" --out "$T/x.sig"
expect 1 "no key named 'k-ec-p256'" "$C" delete --name k-ec-p256
ok "$C" list
if grep -q "^k-ec-p256 " "$T/out"; then ihsm_fail "deleted key still listed"; fi
# usage is enforced by the device: a derive-only EC key does not sign
ok "$C" keygen --type ec-p256 --name k-derive --usage derive
expect 1 "usage" "$C" sign --name k-derive --in "$T/msg" --out "$T/x.sig"
# key file refuses to be overwritten
expect 1 "refusing to overwrite" "$C" keygen --type ec-p256 --out "$T/ed25519.pem"
ok "$C" keygen --type ec-p256 --out "$T/ed25519.pem" --force
# a tampered key file is refused by the device
python3 - "$T/rsa-2048.pem" "$T/tampered.pem" <<'PY'
import base64, sys
lines = open(sys.argv[1]).read().split("\n")
body = base64.b64decode("".join(lines[1:-2]))
body = body[:-5] + bytes([body[-5] ^ 1]) + body[-4:]
b64 = base64.b64encode(body).decode()
open(sys.argv[2], "w").write(lines[0] + "\n" + "\n".join(b64[i:i+64] for i in range(0, len(b64), 64)) + "\n" + lines[-2] + "\n")
PY
expect 1 "key file $T/tampered.pem" "$C" sign --key "$T/tampered.pem" --in "$T/msg" --out "$T/x.sig"
echo "keys_sign: ok"
