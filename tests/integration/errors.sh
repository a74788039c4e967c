#!/bin/bash
# Errors a user meets, asserted by message, through the openssl CLI (the
# file: store and the ihsm: store): a corrupt masked key file (damaged
# armour, damaged structure, damaged blob), a masked key from another
# partition, an unknown or malformed ihsm: URI, a wrong credential, and a
# device that is not running.
. "$IHSM_SOURCE_DIR/tests/integration/common.sh"
it_device_start
it_openssl_cnf "$T/openssl.cnf"
export OPENSSL_CONF="$T/openssl.cnf"
pkey() { "$OPENSSL" pkey -in "$1" -pubout -out "$T/pub.pem"; }

ok "$IHSMCTL" keygen --type ec-p256 --name web --out "$T/web.pem"
ok pkey "$T/web.pem"

# corrupt: the armour (no END line), the structure, a bit of the blob
head -n -1 "$T/web.pem" >"$T/truncated.pem"
expect fail "corrupt masked key file: its IHSM MASKED KEY block does not decode" pkey "$T/truncated.pem"
sed '2s/^..../AAAA/' "$T/web.pem" >"$T/damaged.pem"
expect fail "corrupt masked key file: the IHSM MASKED KEY structure does not parse" pkey "$T/damaged.pem"
python3 - "$T/web.pem" "$T/flipped.pem" <<'PY'
import base64, sys
lines = open(sys.argv[1]).read().split("\n")
body = bytearray(base64.b64decode("".join(lines[1:-2])))
body[-5] ^= 0x01                     # inside the masked blob (the last field)
b64 = base64.b64encode(bytes(body)).decode()
open(sys.argv[2], "w").write("\n".join([lines[0]] + [b64[i:i + 64] for i in range(0, len(b64), 64)] + lines[-2:]))
PY
expect fail "corrupt or foreign masked key" pkey "$T/flipped.pem"
echo "ok: corrupt masked key files"

# foreign: a key masked for another partition
ok "$IHSMCTL" init --partition other --credential-out "$T/other.cred"
ok "$IHSMCTL" --credential "$T/other.cred" keygen --type ec-p256 --name theirs --out "$T/foreign.pem"
expect fail "corrupt or foreign masked key.*$IHSM_CREDENTIAL" pkey "$T/foreign.pem"
IHSM_CREDENTIAL="$T/other.cred" ok pkey "$T/foreign.pem"
echo "ok: a masked key of another partition"

# ihsm: URIs
ok pkey ihsm:web
expect fail "no key named nope in partition test" pkey ihsm:nope
expect fail "no key named theirs in partition test" pkey ihsm:theirs
expect fail "unrecognised URI 'ihsm:name=web;colour=blue'" pkey "ihsm:name=web;colour=blue"
expect fail "unrecognised URI 'ihsm:'" pkey "ihsm:"
echo "ok: unknown and malformed ihsm: URIs"

# a wrong credential (the PIN changed): last against the live device,
# repeated wrong PINs lock the partition out for a while
python3 - "$IHSM_CREDENTIAL" "$T/wrong.cred" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def flip(m):
    pin = m.group(2)
    return m.group(1) + ("0" if pin[0] != "0" else "1") + pin[1:]
open(sys.argv[2], "w").write(re.sub(r"(?m)^(pin\s*=\s*)([0-9a-fA-F]{64})", flip, text))
PY
chmod 600 "$T/wrong.cred"
cmp -s "$IHSM_CREDENTIAL" "$T/wrong.cred" && ihsm_fail "could not make a wrong credential"
IHSM_CREDENTIAL="$T/wrong.cred" expect fail "credential not accepted.*wrong.cred" pkey "$T/web.pem"
echo "ok: a wrong credential"

# the device stopped
it_device_kill
expect fail "ihsmd is not running at $IHSM_SOCKET" pkey "$T/web.pem"
expect fail "ihsmd is not running at $IHSM_SOCKET" pkey ihsm:web
echo "ok: a stopped device"
