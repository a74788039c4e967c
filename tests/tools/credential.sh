#!/bin/sh
# init writes a working 0600 credential; partitions are separate; a wrong
# or foreign credential fails with a message naming the partition.
. "$IHSM_SOURCE_DIR/tests/tools/common.sh"
tools_device_start
C="$IHSMCTL"

[ "$(stat -c %a "$IHSM_CREDENTIAL")" = 600 ] || ihsm_fail "credential file is not mode 0600"
grep -q "^partition = test$" "$IHSM_CREDENTIAL" || ihsm_fail "credential names no partition"

ok "$C" keygen --type ec-p256 --name only-in-test
ok "$C" init --partition second --credential-out "$T/second.cred"
grep -q "partition second created" "$T/out" || ihsm_fail "init printed nothing useful"
ok "$C" --credential "$T/second.cred" list
if grep -q only-in-test "$T/out"; then ihsm_fail "partition second sees test's keys"; fi
expect 1 "no key named 'only-in-test' in partition 'second'" \
    "$C" --credential "$T/second.cred" pubkey --name only-in-test
# a key file of one partition does not load in another
ok "$C" keygen --type ec-p256 --out "$T/test-key.pem"
echo hello >"$T/msg"
expect 1 "key file $T/test-key.pem into partition 'second'" \
    "$C" --credential "$T/second.cred" sign --key "$T/test-key.pem" --in "$T/msg" --out "$T/sig"

expect 1 "partition 'second' already exists" "$C" init --partition second --credential-out "$T/again.cred"
[ ! -e "$T/again.cred" ] || ihsm_fail "a failed init left a credential file"
expect 1 "refusing to overwrite" "$C" init --partition third --credential-out "$T/second.cred"
ok "$C" init --partition third --credential-out "$T/second.cred" --force
grep -q "^partition = third$" "$T/second.cred" || ihsm_fail "--force did not replace the file"
ok "$C" init --partition fourth --credential-out "$T/fourth.cred" --allow-uid "$(id -u),12345"
ok "$C" --credential "$T/fourth.cred" list

# no such partition
printf 'partition = nosuch\npin = %s\n' "$(printf '%064d' 0)" >"$T/nosuch.cred"
expect 1 "partition 'nosuch'" "$C" --credential "$T/nosuch.cred" list
# a wrong PIN for an existing partition (last: wrong PINs lock out)
printf 'partition = fourth\npin = %s\n' "$(printf '%064d' 1)" >"$T/wrong.cred"
expect 1 "partition 'fourth' with the credential in $T/wrong.cred" "$C" --credential "$T/wrong.cred" list
grep -q "wrong partition credential\|locked" "$T/err" || ihsm_fail "no reason given for the refusal"
# the right credential of another partition still works
ok "$C" list
echo "credential: ok"
