#!/bin/sh
# Command-line errors exit 2 with a sentence saying what is wrong, before
# anything touches a device; --help works for every command. No ihsmd needed
# except for the "not running" messages, which use a socket that does not
# exist.
. "$IHSM_SOURCE_DIR/tests/tools/common.sh"
T=$(mktemp -d /tmp/ihsm-usage.XXXXXX)
trap 'rm -rf "$T"' EXIT
C="$IHSMCTL"
unset IHSM_SOCKET IHSM_CREDENTIAL
echo hello >"$T/msg"

for cmd in init keygen import list delete pubkey sign verify encrypt decrypt bench stats info selftest zeroize; do
    ok "$C" "$cmd" --help
    grep -q "^Usage: ihsmctl $cmd" "$T/out" || ihsm_fail "$cmd --help prints no usage"
done
ok "$C" --help
grep -q "keygen" "$T/out" || ihsm_fail "--help lists no commands"

expect 2 "no command" "$C"
expect 2 "unknown command 'frobnicate'" "$C" frobnicate
expect 2 "global option" "$C" --bogus list
expect 2 "'--nope' is unknown" "$C" keygen --nope
expect 2 "'--type' is unknown or needs a value" "$C" keygen --type
expect 2 "unexpected argument 'extra'" "$C" list extra
expect 2 "--type is required" "$C" keygen --name k
expect 2 "unknown key type 'rsa-1024'" "$C" keygen --type rsa-1024 --name k
expect 2 "give --name NAME .*--out FILE" "$C" keygen --type ec-p256
expect 2 "key name 'a/b' is invalid" "$C" keygen --type ec-p256 --name a/b
expect 2 "--usage 'sign,frob'" "$C" keygen --type ec-p256 --name k --usage sign,frob
expect 2 "exactly one of --in" "$C" import --name k
expect 2 "exactly one of --name NAME or --key FILE" "$C" sign --name a --key b --in "$T/msg" --out "$T/sig"
expect 2 "--in FILE" "$C" sign --name a --out "$T/sig"
expect 2 "--out SIG is required" "$C" sign --name a --in "$T/msg"
expect 2 "unknown --digest 'md5'" "$C" sign --name a --digest md5 --in "$T/msg" --out "$T/sig"
expect 2 "unknown --scheme" "$C" sign --name a --scheme rsa --in "$T/msg" --out "$T/sig"
expect 2 "pss needs a digest" "$C" sign --name a --scheme pss --digest none --in "$T/msg" --out "$T/sig"
expect 2 "--sig SIG" "$C" verify --name a --in "$T/msg"
expect 2 "unknown --alg" "$C" encrypt --name a --alg aes-cbc --in "$T/msg" --out "$T/ct"
expect 2 "unknown --op 'nap'" "$C" bench --op nap --inflight 1 --seconds 1
expect 2 "--inflight N is required" "$C" bench --op random --seconds 1
expect 2 "--inflight wants" "$C" bench --op random --inflight 0 --seconds 1
expect 2 "--seconds wants" "$C" bench --op random --inflight 1 --seconds -1
expect 2 "for --op sign" "$C" bench --op random --inflight 1 --seconds 1 --baseline
expect 2 "refusing to zeroize without --yes" "$C" zeroize
expect 2 "--partition NAME is required" "$C" init --credential-out "$T/c"
expect 2 "partition name '.x' is invalid" "$C" init --partition .x --credential-out "$T/c"
expect 2 "--allow-uid" "$C" init --partition p --credential-out "$T/c" --allow-uid root
expect 2 "needs a partition credential" "$C" --socket "$T/none.sock" list

# Operational failures are 1, with the socket or file named.
expect 1 "ihsmd is not running at $T/none.sock" "$C" --socket "$T/none.sock" stats
expect 1 "ihsmd is not running at $T/none.sock" "$C" --socket "$T/none.sock" init --partition p --credential-out "$T/c"
[ ! -e "$T/c" ] || ihsm_fail "init wrote a credential although no partition was made"
printf 'partition = p\npin = %s\n' "$(printf '%064d' 0)" >"$T/cred"
expect 1 "ihsmd is not running at $T/none.sock" "$C" --socket "$T/none.sock" --credential "$T/cred" list
expect 1 "credential file $T/missing" "$C" --socket "$T/none.sock" --credential "$T/missing" list
echo "garbage" >"$T/badcred"
expect 1 "credential file $T/badcred" "$C" --credential "$T/badcred" list
expect 1 "refusing to overwrite" "$C" --socket "$T/none.sock" init --partition p --credential-out "$T/cred"
# a key file's public key needs no device
expect 1 "not an ihsm masked key file" "$C" pubkey --key "$T/msg"
echo "usage: ok"
