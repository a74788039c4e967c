#!/usr/bin/env bash
# Without IHSM_SOCKET/IHSM_CREDENTIAL ihsm-speed starts its own ihsmd in a
# scratch directory, and leaves neither the daemon nor the directory behind.
# Rows the provider does not offer yet are skipped with a sentence, not failed.
set -u
. "$(dirname "$0")/speed_lib.sh"
OUT=$(mktemp -d /tmp/ihsm-speed-test.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
unset IHSM_SOCKET IHSM_CREDENTIAL IHSM_SPEED_KEEP_SCRATCH

"$SPEED" --alg ed25519,x25519 --mode sync --threads 1 --seconds 1 --warmup 0 --json \
    >"$OUT/out" 2>"$OUT/err" &
pid=$!
# our ihsmd is a child of ihsm-speed: find it, and its state dir, during the run
child= state=
for _ in $(seq 1 200); do
    child=$(pgrep -P "$pid" -x ihsmd || true)
    if [ -n "$child" ]; then
        state=$(tr '\0' '\n' <"/proc/$child/cmdline" 2>/dev/null | sed -n '/^--state-dir$/{n;p}')
        break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
wait "$pid"
rc=$?
[ "$rc" -eq 0 ] || { cat "$OUT/err" >&2; sp_fail "ihsm-speed exited $rc"; }
[ -n "$child" ] || sp_fail "ihsm-speed did not start an ihsmd of its own"
case "$state" in
/tmp/ihsm-speed.*/state) ;;
*) sp_fail "ihsmd's state dir '$state' is not in a scratch directory" ;;
esac
kill -0 "$child" 2>/dev/null && sp_fail "ihsmd ($child) is still running after ihsm-speed exited"
[ -e "$(dirname "$state")" ] && sp_fail "scratch directory $(dirname "$state") left behind"

python3 - "$OUT/out" "$OUT/err" <<'PY' || exit 1
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
err = open(sys.argv[2]).read()
algs = [r["alg"] for r in rows]
if "ed25519" not in algs:
    sys.exit("FAIL: no ed25519 row:\n%s\n%s" % (rows, err))
ed = rows[algs.index("ed25519")]
if not (ed["ops_per_s"] > 0 and ed["cpu_s_device"] > 0 and ed["device_counter"] == ed["device_ops"]):
    sys.exit("FAIL: ed25519 row does not add up: %s" % ed)
# x25519: a row once the provider offers X25519, a skip until then
if "x25519" not in algs and "unavailable: the ihsm provider has no X25519" not in err:
    sys.exit("FAIL: x25519 neither ran nor said why not:\n%s" % err)
PY
echo "PASS: ihsm-speed starts and stops its own ihsmd"
