#!/bin/sh
# The clear key never crosses the socket: import runs through a relay that
# records every byte ihsmctl sends to ihsmd, and no 16-byte window of the
# key's PKCS#8 DER (or of a raw AES key) is in the capture. Control: the
# capture does hold the import request (its label), so the tap works.
. "$IHSM_SOURCE_DIR/tests/tools/common.sh"
command -v python3 >/dev/null || ihsm_skip "python3 is not installed"
tools_device_start
C="$IHSMCTL"
TAP_SOCK="$T/tap.sock"
python3 "$IHSM_SOURCE_DIR/tests/tools/seqpacket_tap.py" "$TAP_SOCK" "$IHSM_SOCKET" "$T/capture" &
TAP_PID=$!
trap 'kill $TAP_PID 2>/dev/null; set +e; ihsm_device_stop' EXIT
for _ in $(seq 1 100); do [ -S "$TAP_SOCK" ] && break; sleep 0.05; done
[ -S "$TAP_SOCK" ] || ihsm_fail "the tap did not start"

# scan SECRET_FILE LABEL: the capture holds LABEL but no 16 bytes of SECRET
scan() {
    python3 - "$T/capture" "$1" "$2" <<'PY' || ihsm_fail "clear key material crossed the socket ($1)"
import struct, sys
cap = open(sys.argv[1], "rb").read()
secret = open(sys.argv[2], "rb").read()
label = sys.argv[3].encode()
msgs, off = [], 0
while off < len(cap):
    (n,) = struct.unpack_from("<I", cap, off)
    msgs.append(cap[off + 4:off + 4 + n])
    off += 4 + n
wire = b"".join(msgs)
assert label in wire, "control failed: the import request was not captured"
assert any(len(m) > 384 for m in msgs), "control failed: no wrapped key captured"
for i in range(len(secret) - 15):
    if secret[i:i + 16] in wire:
        sys.exit("bytes %d..%d of the clear key are on the wire" % (i, i + 16))
print("%d messages, %d bytes client->device: no clear key bytes" % (len(msgs), len(wire)))
PY
}

for kind in ec rsa ed25519; do
    case $kind in
    ec) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$kind.pem" 2>/dev/null ;;
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/$kind.pem" 2>/dev/null ;;
    ed25519) openssl genpkey -algorithm ED25519 -out "$T/$kind.pem" ;;
    esac
    openssl pkey -in "$T/$kind.pem" -outform DER -out "$T/$kind.der"
    : >"$T/capture"
    ok "$C" --socket "$TAP_SOCK" import --in "$T/$kind.pem" --name "byok-$kind"
    scan "$T/$kind.der" "byok-$kind"
    # and the imported key really is that key
    ok "$C" --socket "$TAP_SOCK" pubkey --name "byok-$kind"
    openssl pkey -in "$T/$kind.pem" -pubout | cmp -s - "$T/out" || ihsm_fail "$kind: imported key differs"
done

head -c 32 /dev/urandom >"$T/aes.key"
: >"$T/capture"
ok "$C" --socket "$TAP_SOCK" import --aes-key "$T/aes.key" --name byok-aes
scan "$T/aes.key" byok-aes
echo "byok_wire: ok"
