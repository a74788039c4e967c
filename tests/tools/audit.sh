#!/bin/sh
# The tamper-evident audit log: `ihsmctl audit verify` passes on an untouched
# log (the device's own and a copy) and names the first bad record of an
# edited byte (MAC mismatch), a removed record (sequence gap), two swapped
# records (out of order) and a truncation (the last record removed: head
# mismatch), with its line and sequence number; the device notices a cut
# log at start, a lost head file, and moves an unchained log aside; `audit
# show` prints the records, --json as JSON.
. "$IHSM_SOURCE_DIR/tests/tools/common.sh"
command -v python3 >/dev/null || ihsm_skip "python3 is not installed"
tools_device_start
C="$IHSMCTL"
LOG="$IHSM_SCRATCH/state/audit.log"
OFFICER_CRED=$IHSM_OFFICER_CREDENTIAL
# verify without a session (this uid runs ihsmd: an admin uid), so that no
# session record lands between a copy and its check
direct() { IHSM_OFFICER_CREDENTIAL= "$@"; }
echo "audited" >"$T/msg"

# some history: keys made, used, refused, deleted
ok "$C" keygen --type ec-p256 --name a1
ok "$C" keygen --type ed25519 --name a2 --out "$T/a2.pem"
ok "$C" sign --name a1 --in "$T/msg" --out "$T/sig"
ok "$C" sign --key "$T/a2.pem" --in "$T/msg" --out "$T/sig"
IHSM_OFFICER_CREDENTIAL= expect 1 "IHSM_ERR_PERMISSION" "$C" delete --name a1
ok "$C" delete --name a1
n=$(wc -l <"$LOG")
[ "$n" -ge 12 ] || ihsm_fail "only $n audit records"

# ---- untouched: passes, the device's own log and a copy of it
direct expect 0 "" "$C" audit verify
grep -Eq "^audit log of the device verified: [0-9]+ records .*head \(seq [0-9]+\)$" "$T/out" \
    || { cat "$T/out" >&2; ihsm_fail "verify printed no verdict"; }
ok "$C" audit verify                               # as the crypto officer (IHSM_OFFICER_CREDENTIAL)
cp "$LOG" "$T/copy.log"
direct expect 0 "" "$C" audit verify --log "$T/copy.log"
grep -q "verified" "$T/out" || ihsm_fail "the untouched copy does not verify"
# the user credential may not ask
expect 1 "user credential .* may not .*IHSM_ERR_PERMISSION" "$C" --credential "$IHSM_CREDENTIAL" audit verify

# tamper MODE LINE IN OUT: edit (one byte of the record's key or event),
# remove, swap (with the next line), trunc (drop the last record)
tamper() {
    python3 - "$@" <<'PY'
import sys
mode, n, src, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = open(src, "rb").read().split(b"\n")[:-1]
i = n - 1
if mode == "edit":
    l = bytearray(lines[i])
    at = l.index(b" event=") + 7          # first letter of the event name
    l[at] = ord("X") if l[at] != ord("X") else ord("Y")
    lines[i] = bytes(l)
elif mode == "remove":
    del lines[i]
elif mode == "swap":
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
elif mode == "trunc":
    del lines[-1]
open(dst, "wb").write(b"".join(l + b"\n" for l in lines))
PY
}

# ---- copies, each with one kind of damage: the first bad record is named
cp "$LOG" "$T/base.log"
tamper edit 5 "$T/base.log" "$T/edit.log"
direct expect 1 "audit log $T/edit.log: BAD at line 5 \(seq 5\): MAC mismatch: the record was altered" \
    "$C" audit verify --log "$T/edit.log"
tamper remove 5 "$T/base.log" "$T/remove.log"
direct expect 1 "BAD at line 5 \(seq 6\): sequence gap: seq 6 where seq 5 was expected: 1 record is missing" \
    "$C" audit verify --log "$T/remove.log"
tamper swap 5 "$T/base.log" "$T/swap.log"
direct expect 1 "BAD at line 5 \(seq 6\): out of order: seq 6 where seq 5 was expected, which is at line 6" \
    "$C" audit verify --log "$T/swap.log"
# a record from elsewhere in the log (replayed) breaks the chain where it lands
python3 -c 'import sys; l=open(sys.argv[1]).readlines(); l.insert(7, l[2]); open(sys.argv[2],"w").writelines(l)' \
    "$T/base.log" "$T/replay.log"
direct expect 1 "BAD at line 8 \(seq 3\): out of order: seq 3 where seq 8 was expected: the sequence goes back" \
    "$C" audit verify --log "$T/replay.log"
# truncation: a copy of the log as it is now, minus its last record
cp "$LOG" "$T/now.log"
last=$(wc -l <"$T/now.log")
tamper trunc 0 "$T/now.log" "$T/trunc.log"
direct expect 1 "BAD at line $last \(seq $last\): head mismatch: the log ends at seq $((last - 1)) but the device's head is seq $last: record $last .*truncated" \
    "$C" audit verify --log "$T/trunc.log"
echo "ok: edited, removed, swapped, replayed and truncated copies named"

# ---- the head survives a restart; a lost head file is said in the log
ihsm_device_restart
direct expect 0 "" "$C" audit verify
ihsm_device_kill TERM
rm "$IHSM_SCRATCH/state/audit.head"
rm -f "$IHSM_SOCKET"
_ihsm_launch
grep -q "audit.head is missing" "$IHSM_SCRATCH/ihsmd.log" || ihsm_fail "ihsmd did not say the head is missing"
direct expect 0 "" "$C" audit verify
grep -q "event=audit_head_missing partition=- key=- outcome=head_missing_continued_from_seq_" "$LOG" \
    || ihsm_fail "no audit_head_missing record"

# ---- the device's own log, tampered in place
n=$(wc -l <"$LOG")
cp "$LOG" "$T/own.bak"
tamper edit 3 "$T/own.bak" "$T/own.edit"
cat "$T/own.edit" >"$LOG"        # same file, same length: ihsmd keeps appending to it
direct expect 1 "audit log of the device: BAD at line 3 \(seq 3\): MAC mismatch" "$C" audit verify
cp "$LOG" "$T/own.now"           # put the byte back (the check above appended a record)
python3 -c 'import sys; a=open(sys.argv[1],"rb").read(); b=open(sys.argv[2],"rb").read(); open(sys.argv[3],"wb").write(a+b[len(a):])' \
    "$T/own.bak" "$T/own.now" "$T/own.fixed"
cat "$T/own.fixed" >"$LOG"
direct expect 0 "" "$C" audit verify
# truncation of the live log: the last record removed
last=$(wc -l <"$LOG")
python3 -c 'import os,sys; p=sys.argv[1]; d=open(p,"rb").read().split(b"\n")[:-1]; os.truncate(p, len(b"".join(l+b"\n" for l in d[:-1])))' "$LOG"
direct expect 1 "BAD at line $last \(seq $last\): head mismatch: the log ends at seq $((last - 1)) .* \(truncated\)" \
    "$C" audit verify
echo "ok: the device's own log, edited and truncated in place"

# ---- cut while ihsmd is stopped: noticed at start, and the break stays
ihsm_device_kill TERM
last=$(wc -l <"$LOG")
python3 -c 'import os,sys; p=sys.argv[1]; d=open(p,"rb").read().split(b"\n")[:-1]; os.truncate(p, len(b"".join(l+b"\n" for l in d[:-1])))' "$LOG"
rm -f "$IHSM_SOCKET"
_ihsm_launch
grep -q "AUDIT LOG TAMPERED OR DAMAGED" "$IHSM_SCRATCH/ihsmd.log" || ihsm_fail "ihsmd did not notice the cut log at start"
grep -q "event=audit_head_mismatch partition=- key=- outcome=log_ends_at_seq_" "$LOG" \
    || ihsm_fail "no audit_head_mismatch record"
direct expect 1 "BAD at line [0-9]+ \(seq [0-9]+\): (sequence gap|head mismatch)" "$C" audit verify
echo "ok: a log cut while ihsmd was stopped"

# ---- show: readable, and JSON
ok "$C" audit show
grep -Eq "^1 +[0-9T:-]+ +[0-9]+ +[0-9]+ +start " "$T/out" || { head -3 "$T/out" >&2; ihsm_fail "show: no first record"; }
grep -Eq " generate +test +a1 +ok$" "$T/out" || ihsm_fail "show: no generate record for a1"
ok "$C" audit show --json
json_check "$T/out" 'len(j) > 10' 'j[0]["seq"] == 1 and j[0]["event"] == "start"' \
    'any(r.get("event") == "delete" and r.get("key") == "a1" and r.get("partition") == "test" for r in j)' \
    'all(len(r["mac"]) == 64 for r in j if "mac" in r)'
ok "$C" audit show --log "$T/edit.log" --json
json_check "$T/out" 'j[4]["event"].startswith(("X", "Y"))'
# show needs an admin uid for the device's log: covered by device/roles

# ---- an unchained log (an older ihsmd's) is moved aside, not lost
mkdir -m 700 "$T/legacy"
printf '2025-01-01T00:00:00Z uid=0 pid=1 event=start partition=- key=- outcome=ok\n' >"$T/legacy/audit.log"
"$IHSMD" --state-dir "$T/legacy" --socket "$T/legacy.sock" >"$T/legacy.out" 2>&1 &
LPID=$!
for _ in $(seq 1 100); do [ -S "$T/legacy.sock" ] && break; sleep 0.05; done
set +e
IHSM_OFFICER_CREDENTIAL= "$C" --socket "$T/legacy.sock" audit verify >"$T/out" 2>"$T/err"
rc=$?
set -e
kill $LPID; wait $LPID 2>/dev/null || true
[ "$rc" = 0 ] || { cat "$T/err" "$T/legacy.out" >&2; ihsm_fail "a fresh chain after a legacy log does not verify"; }
ls "$T/legacy"/audit.log.unchained.* >/dev/null 2>&1 || ihsm_fail "the unchained log was not moved aside"
grep -q "event=start partition=- key=- outcome=ok" "$T/legacy"/audit.log.unchained.* || ihsm_fail "the unchained log lost its records"
grep -q "event=audit_chain_start .*outcome=unchained_log_moved_to_audit.log.unchained." "$T/legacy/audit.log" \
    || ihsm_fail "the new chain does not say where the old log went"
echo "audit: ok"
