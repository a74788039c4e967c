#!/bin/sh
# ihsm-wycheproof itself: it must find wrong answers, not only report
# passes. Vectors changed on the fly (in a scratch copy; the shared files
# are never touched) must fail with their tcIds named; malformed JSON and
# unknown schemas must fail the run; a device named by IHSM_SOCKET and
# IHSM_CREDENTIAL (tests/lib/ihsmd.sh) is used instead of its own.
set -eu
: "${IHSM_SOURCE_DIR:?run through ctest (IHSM_SOURCE_DIR unset)}"
: "${IHSM_VECTORS_DIR:?run through ctest (IHSM_VECTORS_DIR unset)}"
. "$IHSM_SOURCE_DIR/tests/lib/ihsmd.sh"
WP="$IHSM_BUILD_DIR/bin/ihsm-wycheproof"
V="$IHSM_VECTORS_DIR/wycheproof"
[ -x "$WP" ] || ihsm_skip "no ihsm-wycheproof at $WP: build it first"
[ -f "$V/ed25519_test.json" ] || ihsm_skip "no Wycheproof vectors in $V"
command -v python3 >/dev/null || ihsm_skip "python3 is needed to alter vectors"

ihsm_device_start
trap 'set +e; ihsm_device_stop' EXIT
T="$IHSM_SCRATCH"

# run RC FILE...: the runner exits RC; its output is in $T/out.
run() {
    _want=$1
    shift
    set +e
    "$WP" "$@" >"$T/out" 2>"$T/err"
    _rc=$?
    set -e
    if [ "$_rc" != "$_want" ]; then
        cat "$T/out" "$T/err" >&2
        ihsm_fail "ihsm-wycheproof $* exited $_rc, expected $_want"
    fi
}
has() { grep -Eq -- "$1" "$T/out" || { cat "$T/out" >&2; ihsm_fail "no line matching '$1'"; }; }

# 1. The device from the environment: its sign counter shows that it made
#    the 43 signatures (not some ihsmd of the runner's own).
run 0 "$V/rsa_pkcs1_2048_sig_gen_test.json"
has '^rsa_pkcs1_2048_sig_gen_test.json: 43 passed, 0 failed$'
signs=$(ihsm_stat sign)
[ "$signs" -ge 43 ] || ihsm_fail "the device made $signs signatures, expected at least 43"

# 2. Altered vectors fail, each with its tcId.
python3 - "$V" "$T" <<'PY'
import json, sys
src, dst = sys.argv[1], sys.argv[2]
d = json.load(open(src + "/ed25519_test.json"))
t = d["testGroups"][0]["tests"]
bad = [x for g in d["testGroups"] for x in g["tests"] if x["result"] == "invalid"][0]
t[0]["result"] = "invalid"              # a valid signature now "must be rejected"
bad["result"] = "valid"                 # an invalid signature now "must verify"
json.dump(d, open(dst + "/ed_altered.json", "w"))
print(t[0]["tcId"], bad["tcId"], file=open(dst + "/ed_ids", "w"))
g = json.load(open(src + "/rsa_pkcs1_2048_sig_gen_test.json"))
s = g["testGroups"][1]["tests"][0]
s["sig"] = s["sig"][:-2] + ("00" if s["sig"][-2:] != "00" else "01")
json.dump(g, open(dst + "/rsa_altered.json", "w"))
print(s["tcId"], file=open(dst + "/rsa_ids", "w"))
e = json.load(open(src + "/ecdsa_secp256r1_sha256_test.json"))
v = [x for x in e["testGroups"][0]["tests"] if x["result"] == "valid"][0]
v["msg"] = v["msg"] + "00"              # the signature no longer matches the message
json.dump(e, open(dst + "/ecdsa_altered.json", "w"))
print(v["tcId"], file=open(dst + "/ecdsa_ids", "w"))
PY
read -r ok_id bad_id <"$T/ed_ids"
run 1 "$T/ed_altered.json"
has "^FAIL .*ed_altered.json tcId $ok_id .*expected invalid, got accepted"
has "^FAIL .*ed_altered.json tcId $bad_id .*expected valid, got refused"
has '^ed_altered.json: 149 passed, 2 failed$'
read -r id <"$T/rsa_ids"
run 1 "$T/rsa_altered.json"
has "^FAIL .*rsa_altered.json tcId $id .*got a wrong result: signature differs"
read -r id <"$T/ecdsa_ids"
run 1 "$T/ecdsa_altered.json"
has "^FAIL .*ecdsa_altered.json tcId $id .*expected valid, got refused"

# 3. Files that cannot run fail the run; counts add up over several files.
printf '{"schema": "ecdsa_verify_schema_v1.json", "testGroups": [],}' >"$T/trailing.json"
run 1 "$T/trailing.json"
has 'trailing.json: not valid JSON: line 1, column .*: trailing comma'
printf '{"schema": "dsa_verify_schema_v1.json", "testGroups": []}' >"$T/dsa.json"
run 1 "$T/dsa.json" "$V/rsa_pkcs1_2048_sig_gen_test.json"
has 'dsa.json: schema dsa_verify_schema_v1.json is not one this runner knows'
has '^total: 43 passed, 0 failed$'
printf '{"a": "\\x"}' >"$T/escape.json"
run 1 "$T/escape.json"
has 'invalid escape'
# 4. AEAD and X25519 on the device from the environment: its counters show
#    the work was its own, and the X25519 keys the runner stored by name
#    are gone afterwards. No X25519 file is in the shared set, so one is
#    made here with the openssl CLI (a valid vector, and a small-order
#    public key the device must refuse: acceptable).
aeads=$(ihsm_stat aead)
run 0 "$V/aes_gcm_test.json"
has '^aes_gcm_test.json: [1-9][0-9]* passed, 0 failed'
aeads=$(( $(ihsm_stat aead) - aeads ))
[ "$aeads" -ge 400 ] || ihsm_fail "the device sealed and opened $aeads times, expected 400 or more"
raw() { openssl pkey "$@" -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \n'; }
openssl genpkey -algorithm X25519 -out "$T/a.pem" 2>/dev/null
openssl genpkey -algorithm X25519 -out "$T/b.pem" 2>/dev/null
openssl pkey -in "$T/b.pem" -pubout -out "$T/b.pub"
priv=$(raw -in "$T/a.pem")
pub=$(raw -pubin -in "$T/b.pub")
shared=$(openssl pkeyutl -derive -inkey "$T/a.pem" -peerkey "$T/b.pub" | od -An -tx1 | tr -d ' \n')
zero=0000000000000000000000000000000000000000000000000000000000000000
cat >"$T/x25519.json" <<JSON
{"algorithm": "XDH", "schema": "xdh_comp_schema_v1.json", "numberOfTests": 2,
 "testGroups": [{"type": "XdhComp", "curve": "curve25519", "tests": [
  {"tcId": 1, "comment": "openssl CLI", "flags": [], "public": "$pub", "private": "$priv",
   "shared": "$shared", "result": "valid"},
  {"tcId": 2, "comment": "small order", "flags": ["ZeroSharedSecret"], "public": "$zero",
   "private": "$priv", "shared": "$zero", "result": "acceptable"}]}]}
JSON
derives=$(ihsm_stat derive)
run 0 "$T/x25519.json"
has '^x25519.json: 2 passed, 0 failed$'
derives=$(( $(ihsm_stat derive) - derives ))
[ "$derives" -ge 2 ] || ihsm_fail "the device derived $derives times, expected 2 or more"
sed 's/"result": "valid"/"result": "invalid"/' "$T/x25519.json" >"$T/x25519_bad.json"
run 1 "$T/x25519_bad.json"
has 'tcId 1 .*expected invalid, got accepted: provider and device derived shared'
"$IHSMCTL" list >"$T/list"
! grep -q wycheproof "$T/list" || { cat "$T/list" >&2; ihsm_fail "the run left its keys stored"; }
echo "ok: ihsm-wycheproof finds altered vectors and broken files"
