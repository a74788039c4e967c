#!/bin/sh
# zeroize refuses without --yes and leaves keys alone; with --yes every
# stored and loaded key is gone: signing fails afterwards.
. "$IHSM_SOURCE_DIR/tests/tools/common.sh"
tools_device_start
C="$IHSMCTL"
echo "to be signed" >"$T/msg"
ok "$C" keygen --type ec-p256 --name z1
ok "$C" keygen --type rsa-2048 --name z2
ok "$C" sign --name z1 --in "$T/msg" --out "$T/sig"

expect 2 "refusing to zeroize without --yes" "$C" zeroize
ok "$C" sign --name z1 --in "$T/msg" --out "$T/sig"

ok "$C" zeroize --yes
grep -q "partition test zeroized" "$T/out" || ihsm_fail "zeroize printed no confirmation"
expect 1 "no key named 'z1' in partition 'test'" "$C" sign --name z1 --in "$T/msg" --out "$T/sig"
expect 1 "no key named 'z2'" "$C" sign --name z2 --in "$T/msg" --out "$T/sig"
ok "$C" list
grep -q "no keys stored in partition test" "$T/out" || { cat "$T/out" >&2; ihsm_fail "keys listed after zeroize"; }
# the partition itself still works
ok "$C" keygen --type ec-p256 --name after
ok "$C" sign --name after --in "$T/msg" --out "$T/sig"
echo "zeroize: ok"
