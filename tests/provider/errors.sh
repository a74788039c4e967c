#!/bin/sh
# What a user sees when something is wrong: the sentence names the socket,
# the credential, the key or the setting, and private keys stay inside.
. "$IHSM_SOURCE_DIR/tests/provider/common.sh"

gen ec -algorithm EC -pkeyopt ec_paramgen_curve:P-256

# expect_fail WHAT PATTERN command...: fails, and stderr matches PATTERN
expect_fail() {
    _what=$1 _pat=$2
    shift 2
    "$@" >out.txt 2>err.txt && ihsm_fail "$_what: succeeded"
    grep -q -- "$_pat" err.txt || { cat err.txt >&2; ihsm_fail "$_what: no \"$_pat\" in the error"; }
}

# ihsmd not running where the provider looks: the socket is named.
expect_fail "no device" "$IHSM_SCRATCH/nowhere.sock" \
    env IHSM_SOCKET="$IHSM_SCRATCH/nowhere.sock" openssl dgst $PROV -sha256 -sign ec.pem msg
grep -q "not running" err.txt || ihsm_fail "no device: does not say ihsmd is not running"

# A wrong PIN: the credential file is named.
python3 - "$IHSM_CREDENTIAL" wrong.cred <<'PY2' || ihsm_fail "could not make a wrong credential"
import re, sys
s = open(sys.argv[1]).read()
s = re.sub(r"(pin\s*=\s*)([0-9a-fA-F])",
           lambda m: m.group(1) + ("1" if m.group(2) == "0" else "0"), s, count=1)
open(sys.argv[2], "w").write(s)
PY2
chmod 600 wrong.cred
cmp -s wrong.cred "$IHSM_CREDENTIAL" && ihsm_fail "could not make a wrong credential"
expect_fail "wrong credential" "$IHSM_SCRATCH/wrong.cred" \
    env IHSM_CREDENTIAL="$IHSM_SCRATCH/wrong.cred" openssl dgst $PROV -sha256 -sign ec.pem msg
grep -qi "credential" err.txt || ihsm_fail "wrong credential: not called a credential problem"

# A missing credential file: named too.
expect_fail "missing credential" "$IHSM_SCRATCH/missing.cred" \
    env IHSM_CREDENTIAL="$IHSM_SCRATCH/missing.cred" openssl dgst $PROV -sha256 -sign ec.pem msg

# A key the device does not have.
expect_fail "unknown key" "nope" openssl dgst $PROV -sha256 -sign ihsm:nope msg

# A key whose usage flags leave signing out: refused, and said so.
"$IHSMCTL" keygen --type ec-p256 --usage derive --out derive.pem >/dev/null \
    || ihsm_fail "ihsmctl keygen --usage derive"
expect_fail "derive-only key" "usage" openssl dgst $PROV -sha256 -sign derive.pem msg

# A masked blob that was tampered with.
python3 - ec.pem bad.pem <<'PY' || ihsm_fail "could not tamper with the key file"
import base64, sys
lines = open(sys.argv[1]).read().split("\n")
body = base64.b64decode("".join(l for l in lines if l and not l.startswith("-----")))
b = bytearray(body)
b[-5] ^= 0x01  # inside the masked blob (the last field)
out = base64.encodebytes(bytes(b)).decode().replace("\n", "\n")
open(sys.argv[2], "w").write("-----BEGIN IHSM MASKED KEY-----\n" + out + "-----END IHSM MASKED KEY-----\n")
PY
expect_fail "tampered key file" "corrupt or foreign masked key" \
    openssl dgst $PROV -sha256 -sign bad.pem msg

# Bad provider settings: init fails and says which setting and why.
cat >bad.cnf <<EOC
openssl_conf = init
[init]
providers = provs
[provs]
default = default_sect
ihsm = ihsm_sect
[default_sect]
activate = 1
[ihsm_sect]
module = $IHSM_BUILD_DIR/lib/ihsm.so
ihsm-route = sign,teleport
activate = 1
EOC
expect_fail "bad ihsm-route" "ihsm-route" env OPENSSL_CONF=bad.cnf openssl dgst -sha256 -sign ec.pem msg
grep -q "teleport" err.txt || ihsm_fail "bad ihsm-route: the bad value is not named"
sed 's/^ihsm-route = .*/ihsm-timeout-ms = soon/' bad.cnf >bad2.cnf
expect_fail "bad ihsm-timeout-ms" "ihsm-timeout-ms" env OPENSSL_CONF=bad2.cnf openssl dgst -sha256 -sign ec.pem msg

# Good settings from openssl.cnf alone (no IHSM_* variables) work.
sed "s|^ihsm-route = .*|ihsm-route = sign\nihsm-socket = $IHSM_SOCKET\nihsm-credential = $IHSM_CREDENTIAL\nihsm-batch-size = 32\nihsm-batch-delay-us = 20\nihsm-timeout-ms = 5000|" \
    bad.cnf >good.cnf
env -u IHSM_SOCKET -u IHSM_CREDENTIAL OPENSSL_CONF=good.cnf openssl dgst -sha256 -sign ec.pem \
    -out cnf.sig msg || ihsm_fail "signing with settings from openssl.cnf"
plain_openssl dgst -sha256 -verify ec.pub -signature cnf.sig msg >/dev/null \
    || ihsm_fail "signature made with openssl.cnf settings"
# ...and the environment overrides the file.
sed "s|^ihsm-socket = .*|ihsm-socket = $IHSM_SCRATCH/stale.sock|" good.cnf >env.cnf
OPENSSL_CONF=env.cnf openssl dgst -sha256 -sign ec.pem -out env.sig msg \
    || ihsm_fail "IHSM_SOCKET does not override ihsm-socket"
# sign left out of ihsm-route: refused, and the setting is named
sed "s|^ihsm-route = .*|ihsm-route = derive|" good.cnf >noroute.cnf
expect_fail "route without sign" "ihsm-route" env OPENSSL_CONF=noroute.cnf openssl dgst -sha256 -sign ec.pem msg

# The private key never leaves: a PKCS#8 export of a device key fails.
openssl pkcs8 $PROV -topk8 -nocrypt -in ec.pem -out p8.pem 2>/dev/null
grep -q "BEGIN PRIVATE KEY" p8.pem 2>/dev/null && ihsm_fail "PKCS#8 export of a device key"

# A process that loads the provider but never uses the device does not connect.
IHSM_DEBUG=1 openssl dgst $PROV -sha256 msg >/dev/null 2>dbg.txt || ihsm_fail "dgst without keys"
grep -q "connected to" dbg.txt && ihsm_fail "the provider connected without a device operation"
echo "PASS: errors name the socket, the credential, the key and the setting"
