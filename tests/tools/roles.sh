#!/bin/sh
# Roles through ihsmctl: init writes a user and a crypto-officer credential;
# the user credential cannot import, delete or zeroize and the officer
# credential cannot sign, each refused by the device with IHSM_ERR_PERMISSION
# and a message naming the role and the credential to use; which credential
# each command picks (--officer-credential, --credential,
# IHSM_OFFICER_CREDENTIAL, IHSM_CREDENTIAL).
. "$IHSM_SOURCE_DIR/tests/tools/common.sh"
tools_device_start
C="$IHSMCTL"
USER_CRED=$IHSM_CREDENTIAL
OFFICER_CRED=$IHSM_OFFICER_CREDENTIAL
echo "signed by the user" >"$T/msg"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ec.pem" 2>/dev/null

# init: both files, 0600, each with its role; the default officer path
ok "$C" init --partition roles --credential-out "$T/roles.cred"
grep -q "credential written to $T/roles.cred " "$T/out" || ihsm_fail "init did not name the user credential"
grep -q "crypto-officer credential written to $T/roles.cred.officer" "$T/out" \
    || ihsm_fail "init did not name the officer credential"
for f in "$T/roles.cred" "$T/roles.cred.officer" "$USER_CRED" "$OFFICER_CRED"; do
    [ "$(stat -c %a "$f")" = 600 ] || ihsm_fail "$f is not mode 0600"
done
grep -q "^role = user$" "$T/roles.cred" || ihsm_fail "user credential has no role = user"
grep -q "^role = officer$" "$T/roles.cred.officer" || ihsm_fail "officer credential has no role = officer"
upin=$(sed -n 's/^pin = //p' "$T/roles.cred")
opin=$(sed -n 's/^pin = //p' "$T/roles.cred.officer")
[ -n "$upin" ] && [ "$upin" != "$opin" ] || ihsm_fail "the two roles share a PIN"
ok "$C" init --partition roles2 --credential-out "$T/r2.cred" --officer-credential-out "$T/r2-officer.cred"
[ -f "$T/r2-officer.cred" ] && [ ! -e "$T/r2.cred.officer" ] || ihsm_fail "--officer-credential-out ignored"
expect 2 "must differ" "$C" init --partition roles3 --credential-out "$T/r3.cred" --officer-credential-out "$T/r3.cred"
# an existing officer file stops init before the partition exists
: >"$T/r4.cred.officer"
expect 1 "refusing to overwrite" "$C" init --partition roles4 --credential-out "$T/r4.cred"
[ ! -e "$T/r4.cred" ] || ihsm_fail "a refused init wrote the user credential"

# a key to work with, made by the user (generation is both roles')
ok "$C" keygen --type ec-p256 --name k --out "$T/k.pem"
ok "$C" sign --name k --in "$T/msg" --out "$T/sig"

# the user credential cannot import, delete or zeroize
unset IHSM_OFFICER_CREDENTIAL
DENY_USER="user credential \\($USER_CRED\\) may not import, delete or zeroize.*--officer-credential.*IHSM_OFFICER_CREDENTIAL.*\\[IHSM_ERR_PERMISSION\\]"
expect 1 "$DENY_USER" "$C" import --in "$T/ec.pem" --name imported
expect 1 "$DENY_USER" "$C" delete --name k
expect 1 "$DENY_USER" "$C" zeroize --yes
expect 1 "$DENY_USER" "$C" --credential "$USER_CRED" import --in "$T/ec.pem" --out "$T/x.pem"
[ ! -e "$T/x.pem" ] || ihsm_fail "a refused import wrote a key file"
# ...and nothing changed
ok "$C" list
grep -q "^k " "$T/out" || ihsm_fail "key k is gone after refused deletes"
if grep -q imported "$T/out"; then ihsm_fail "a refused import stored a key"; fi
ok "$C" sign --name k --in "$T/msg" --out "$T/sig"

# the officer credential cannot sign (nor load a key to sign with)
DENY_OFFICER="crypto-officer credential \\($OFFICER_CRED\\) may not sign.*use the user credential.*\\[IHSM_ERR_PERMISSION\\]"
expect 1 "$DENY_OFFICER" "$C" --credential "$OFFICER_CRED" sign --name k --in "$T/msg" --out "$T/sig2"
expect 1 "$DENY_OFFICER" "$C" --credential "$OFFICER_CRED" sign --key "$T/k.pem" --in "$T/msg" --out "$T/sig2"
[ ! -e "$T/sig2" ] || ihsm_fail "a refused sign wrote a signature"
expect 1 "$DENY_OFFICER" "$C" --credential "$OFFICER_CRED" encrypt --name k --in "$T/msg" --out "$T/enc"
# but it generates and lists
ok "$C" --credential "$OFFICER_CRED" keygen --type ec-p256 --name officer-made
ok "$C" --credential "$OFFICER_CRED" list
grep -q "^officer-made " "$T/out" || ihsm_fail "the officer cannot list"

# which credential the officer commands take
export IHSM_OFFICER_CREDENTIAL="$OFFICER_CRED"
ok "$C" import --in "$T/ec.pem" --name imported               # $IHSM_OFFICER_CREDENTIAL
unset IHSM_OFFICER_CREDENTIAL
ok "$C" --officer-credential "$OFFICER_CRED" delete --name imported   # --officer-credential
ok "$C" import --officer-credential "$OFFICER_CRED" --in "$T/ec.pem" --name imported2  # after the command too
ok "$C" --credential "$OFFICER_CRED" delete --name imported2  # an explicit --credential
# an explicit --credential beats the environment's officer credential
IHSM_OFFICER_CREDENTIAL="$OFFICER_CRED" expect 1 "$DENY_USER" "$C" --credential "$USER_CRED" delete --name k
# the user signs with what the officer imported
ok "$C" --officer-credential "$OFFICER_CRED" import --in "$T/ec.pem" --name imported3
ok "$C" sign --name imported3 --in "$T/msg" --out "$T/sig3"
openssl pkey -in "$T/ec.pem" -pubout -out "$T/ec.pub"
openssl dgst -sha256 -verify "$T/ec.pub" -signature "$T/sig3" "$T/msg" >/dev/null \
    || ihsm_fail "the imported key's signature does not verify"

# a credential file whose role does not match its PIN is refused at login
sed 's/^role = officer$/role = user/' "$OFFICER_CRED" >"$T/liar.cred"
chmod 600 "$T/liar.cred"
expect 1 "IHSM_ERR_PERMISSION" "$C" --credential "$T/liar.cred" list
printf 'partition = test\npin = %s\nrole = root\n' "$opin" >"$T/bad-role.cred"
expect 1 "unknown role 'root'" "$C" --credential "$T/bad-role.cred" list

# the device audited every refusal with the command and the role
ok "$C" --officer-credential "$OFFICER_CRED" zeroize --yes
log="$IHSM_SCRATCH/state/audit.log"
for want in key_import_as_user key_delete_as_user zeroize_as_user key_find_as_officer \
    key_unmask_as_officer role_mismatch_officer_pin_for_user; do
    grep -q "event=permission_denied partition=test key=- outcome=$want\|outcome=$want" "$log" \
        || ihsm_fail "no audit record for $want"
done
echo "roles: ok"
