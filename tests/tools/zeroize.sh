#!/bin/sh
# zeroize refuses without --yes and leaves keys alone; with --yes every
# stored and loaded key is gone: signing fails afterwards, and key files
# made before it no longer load (the partition has a new id):
# IHSM_ERR_BAD_BLOB, also after a restart. Zeroizing is the crypto officer's.
. "$IHSM_SOURCE_DIR/tests/tools/common.sh"
tools_device_start
C="$IHSMCTL"
echo "to be signed" >"$T/msg"
ok "$C" keygen --type ec-p256 --name z1
ok "$C" keygen --type rsa-2048 --name z2
ok "$C" keygen --type ec-p256 --name z3 --out "$T/before.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/plain.pem" 2>/dev/null
ok "$C" import --in "$T/plain.pem" --out "$T/imported-before.pem"
ok "$C" sign --name z1 --in "$T/msg" --out "$T/sig"
ok "$C" sign --key "$T/before.pem" --in "$T/msg" --out "$T/sig"
ok "$C" sign --key "$T/imported-before.pem" --in "$T/msg" --out "$T/sig"

expect 2 "refusing to zeroize without --yes" "$C" zeroize
ok "$C" sign --name z1 --in "$T/msg" --out "$T/sig"

# the user credential may not
IHSM_OFFICER_CREDENTIAL= expect 1 "may not import, delete or zeroize.*IHSM_ERR_PERMISSION" "$C" zeroize --yes
ok "$C" sign --name z1 --in "$T/msg" --out "$T/sig"

ok "$C" zeroize --yes
grep -q "partition test zeroized" "$T/out" || ihsm_fail "zeroize printed no confirmation"
# key files made before: dead (generated and imported alike)
for f in before imported-before; do
    expect 1 "cannot load key file $T/$f.pem into partition 'test'.*IHSM_ERR_BAD_BLOB" \
        "$C" sign --key "$T/$f.pem" --in "$T/msg" --out "$T/sig"
done
expect 1 "no key named 'z1' in partition 'test'" "$C" sign --name z1 --in "$T/msg" --out "$T/sig"
expect 1 "no key named 'z2'" "$C" sign --name z2 --in "$T/msg" --out "$T/sig"
ok "$C" list
grep -q "no keys stored in partition test" "$T/out" || { cat "$T/out" >&2; ihsm_fail "keys listed after zeroize"; }
# the partition itself still works
ok "$C" keygen --type ec-p256 --name after --out "$T/after.pem"
ok "$C" sign --name after --in "$T/msg" --out "$T/sig"
# across a restart: the new partition id was stored
ihsm_device_restart
expect 1 "IHSM_ERR_BAD_BLOB" "$C" sign --key "$T/before.pem" --in "$T/msg" --out "$T/sig"
ok "$C" sign --key "$T/after.pem" --in "$T/msg" --out "$T/sig"
ok "$C" sign --name after --in "$T/msg" --out "$T/sig"
echo "zeroize: ok"
