#!/bin/bash
# bench/scenarios/run end to end, as short as it goes: nginx with a PEM key
# and with an ihsm masked key (2 and 8 workers), one 1-second window each.
# The table has both rows with their ratios to the PEM row, results.json
# parses, every row made handshakes, and no process of the run is left.
set -euo pipefail
: "${IHSM_BUILD_DIR:?run through ctest (IHSM_BUILD_DIR unset)}"
: "${IHSM_SOURCE_DIR:?run through ctest (IHSM_SOURCE_DIR unset)}"
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || skip "nginx is not installed (scripts/install-deps.sh)"
for f in bin/ihsmd bin/ihsmctl bin/ihsm-tlsload lib/ihsm.so; do
    [ -e "$IHSM_BUILD_DIR/$f" ] || fail "no $IHSM_BUILD_DIR/$f: build it first"
done

out=$(mktemp -d /tmp/ihsm-scenarios-test.XXXXXX)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
# --no-install: ctest does not run apt (the chart is checked only if gnuplot is there)
timeout 120 "$IHSM_SOURCE_DIR/bench/scenarios/run" --quick --seconds 1 --repeats 1 \
    --only nginx-pem-ec,nginx-ihsm-ec --out "$out" --build "$IHSM_BUILD_DIR" --no-install \
    >"$out/stdout" 2>"$out/stderr" || { cat "$out/stderr" "$out/stdout" >&2; fail "run exited $?"; }
took=$(($(date +%s) - start))
cat "$out/stdout"

[ -s "$out/table.md" ] || fail "no table.md"
cmp -s "$out/table.md" "$out/stdout" || fail "stdout is not table.md"
for row in nginx-pem-ec-w2 nginx-ihsm-ec-w2 nginx-pem-ec-w8 nginx-ihsm-ec-w8; do
    # | row | store | hs/s | x file | ... : a number of handshakes/s and a ratio
    grep -Eq "^\| $row \| [^|]+ \| [0-9][0-9 ]* \| [0-9]+\.[0-9]{2} \|" "$out/table.md" \
        || { cat "$out/stderr" >&2; fail "table.md has no measured line for $row"; }
done
grep -Eq '^\| nginx-pem-ec-w2 \| [^|]+ \| [^|]+ \| 1\.00 \|' "$out/table.md" \
    || fail "the PEM row's ratio to itself is not 1.00"

python3 - "$out/results.json" <<'PY' || fail "results.json does not hold what the table says"
import json, sys
d = json.load(open(sys.argv[1]))
rows = {r["name"]: r for r in d["rows"]}
want = ["nginx-pem-ec-w2", "nginx-ihsm-ec-w2", "nginx-pem-ec-w8", "nginx-ihsm-ec-w8"]
assert sorted(rows) == sorted(want), sorted(rows)
for name in want:
    r = rows[name]
    assert r["status"] == "ok", (name, r.get("reason"))
    assert len(r["repeats"]) == 1, name
    m = r["repeats"][0]
    assert m["handshakes"] > 0, (name, m)
    assert m["tls"] == "TLSv1.3" and m["sigalg"].startswith("ECDSA"), (name, m["tls"], m["sigalg"])
    assert m["server_cpu_s"] > 0, (name, "no server CPU measured")
    assert r["median"]["hs_per_server_cpu_s"] > 0, name
    assert r["ratios"]["per_s"] > 0 and r["ratios"]["hs_per_server_cpu_s"] > 0, name
for name in ("nginx-ihsm-ec-w2", "nginx-ihsm-ec-w8"):
    m = rows[name]["repeats"][0]
    # the device did the signing: its CPU and requests are in the window
    assert m["device_cpu_s"] > 0, (name, "ihsmd used no CPU")
    assert m["device_requests"] >= m["handshakes"], (name, m["device_requests"], m["handshakes"])
for name in ("nginx-pem-ec-w2", "nginx-pem-ec-w8"):
    assert rows[name]["repeats"][0]["device_cpu_s"] == 0, name
assert rows["nginx-pem-ec-w2"]["ratios"]["per_s"] == 1.0
print("results.json: ok")
PY

if command -v gnuplot >/dev/null; then
    if [ ! -s "$out/chart.png" ] || [ ! -s "$out/chart.svg" ]; then
        fail "gnuplot is there but no chart.png/chart.svg"
    fi
fi
# every process the run started is gone (their configs were in its scratch dir)
scratch=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["meta"]["scratch"])' "$out/results.json")
case "$scratch" in /tmp/ihsm-scenarios.*) ;; *) fail "results.json names no scratch dir: $scratch" ;; esac
[ ! -e "$scratch" ] || fail "the scratch dir $scratch was left behind"
if pgrep -f "$scratch" >/dev/null; then
    pgrep -af "$scratch" >&2
    fail "processes of the run are still alive"
fi
[ "$took" -le 60 ] || fail "took ${took} s"
echo "ok: scenarios smoke run in ${took} s"
