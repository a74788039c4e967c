#!/bin/sh
# encrypt/decrypt round trips; any flipped byte, a missing AAD or another
# key fails with a clear message and writes nothing.
. "$IHSM_SOURCE_DIR/tests/tools/common.sh"
tools_device_start
C="$IHSMCTL"
head -c 5000 /dev/urandom >"$T/plain"
echo "header v1" >"$T/aad"

ok "$C" keygen --type aes-256 --name aes --out "$T/aes.pem"
ok "$C" encrypt --name aes --in "$T/plain" --out "$T/ct"
[ "$(stat -c %s "$T/ct")" = $((5000 + 12 + 16)) ] || ihsm_fail "ciphertext is not IV + data + tag long"
ok "$C" decrypt --name aes --in "$T/ct" --out "$T/dec"
cmp -s "$T/plain" "$T/dec" || ihsm_fail "decrypt does not give the plaintext back"
ok "$C" decrypt --key "$T/aes.pem" --in "$T/ct" --out "$T/dec2"
cmp -s "$T/plain" "$T/dec2" || ihsm_fail "the key file decrypts differently"
# a fresh IV every time
ok "$C" encrypt --name aes --in "$T/plain" --out "$T/ct2"
if cmp -s "$T/ct" "$T/ct2"; then ihsm_fail "two encryptions are identical (IV reused)"; fi

# flip one byte anywhere: IV, body, tag
for off in 0 100 5020; do
    python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[int(sys.argv[3])]^=1; open(sys.argv[2],"wb").write(b)' \
        "$T/ct" "$T/ct.bad" "$off"
    rm -f "$T/out.bad"
    expect 1 "failed authentication" "$C" decrypt --name aes --in "$T/ct.bad" --out "$T/out.bad"
    [ ! -e "$T/out.bad" ] || ihsm_fail "a failed decryption wrote output"
done
expect 1 "not a file written by" "$C" decrypt --name aes --in "$T/aad" --out "$T/x"

# AAD must match
ok "$C" encrypt --name aes --aad "$T/aad" --in "$T/plain" --out "$T/ct-aad"
expect 1 "failed authentication" "$C" decrypt --name aes --in "$T/ct-aad" --out "$T/x"
ok "$C" decrypt --name aes --aad "$T/aad" --in "$T/ct-aad" --out "$T/dec3"
cmp -s "$T/plain" "$T/dec3" || ihsm_fail "AAD round trip failed"

# another key of the same type cannot open it
ok "$C" keygen --type aes-256 --name aes2
expect 1 "failed authentication" "$C" decrypt --name aes2 --in "$T/ct" --out "$T/x"

# ChaCha20-Poly1305 and AES-128
ok "$C" encrypt --name aes --alg chacha20-poly1305 --in "$T/plain" --out "$T/ct-cc"
ok "$C" decrypt --name aes --alg chacha20-poly1305 --in "$T/ct-cc" --out "$T/dec4"
cmp -s "$T/plain" "$T/dec4" || ihsm_fail "ChaCha20-Poly1305 round trip failed"
expect 1 "failed authentication" "$C" decrypt --name aes --in "$T/ct-cc" --out "$T/x"
ok "$C" keygen --type aes-128 --name aes128
ok "$C" encrypt --name aes128 --in "$T/plain" --out "$T/ct128"
ok "$C" decrypt --name aes128 --in "$T/ct128" --out "$T/dec5"
cmp -s "$T/plain" "$T/dec5" || ihsm_fail "AES-128 round trip failed"
# empty input
: >"$T/empty"
ok "$C" encrypt --name aes --in "$T/empty" --out "$T/ct-empty"
ok "$C" decrypt --name aes --in "$T/ct-empty" --out "$T/dec-empty"
[ ! -s "$T/dec-empty" ] || ihsm_fail "empty round trip gave bytes"

# wrong key types and sizes
ok "$C" keygen --type ec-p256 --name ec
expect 1 "need an AES key" "$C" encrypt --name ec --in "$T/plain" --out "$T/x"
head -c 200000 /dev/zero >"$T/big"
expect 1 "larger than" "$C" encrypt --name aes --in "$T/big" --out "$T/x"
echo "aead: ok"
