#!/bin/sh
# bench drives the offload queue: with 64 in flight the requests share
# frames (>= 16 per frame, and the device's own counters agree); with 1 in
# flight every request is its own frame. sign --baseline gives a ratio.
. "$IHSM_SOURCE_DIR/tests/tools/common.sh"
tools_device_start
C="$IHSMCTL"

ok "$C" stats --json
cp "$T/out" "$T/s0.json"
ok "$C" bench --op random --inflight 64 --seconds 2 --json
cp "$T/out" "$T/b64.json"
ok "$C" stats --json
cp "$T/out" "$T/s1.json"
cat "$T/b64.json"
json_check "$T/b64.json" \
    "all(k in j for k in ('op', 'inflight', 'seconds', 'operations', 'ops_per_s', 'requests', \
        'frames', 'requests_per_frame', 'largest_batch', 'us_per_request', 'mean_latency_us', 'errors'))" \
    "j['op'] == 'random' and j['inflight'] == 64 and j['errors'] == 0" \
    "j['operations'] > 1000 and j['requests'] >= j['operations']" \
    "j['requests_per_frame'] >= 16" \
    "abs(j['requests_per_frame'] - j['requests'] / j['frames']) < 0.01" \
    "16 <= j['largest_batch'] <= 256" \
    "j['us_per_request'] > 0 and j['mean_latency_us'] > 0"

# The device counted the same traffic: its requests and frames grew by the
# bench's (plus the session set-up and these stats calls), and its own
# ratio over the whole run is >= 16 too.
python3 - "$T/s0.json" "$T/b64.json" "$T/s1.json" <<'PY' || ihsm_fail "device counters disagree with bench"
import json, sys
s0, b, s1 = (json.load(open(p)) for p in sys.argv[1:])
dreq = s1["requests"] - s0["requests"]
dfr = s1["frames"] - s0["frames"]
print("device: %d requests in %d frames; bench: %d in %d; overall %.1f per frame"
      % (dreq, dfr, b["requests"], b["frames"], s1["requests_per_frame"]))
assert b["requests"] <= dreq <= b["requests"] + 16, (dreq, b["requests"])
assert b["frames"] <= dfr <= b["frames"] + 16, (dfr, b["frames"])
assert dreq / dfr >= 16
assert s1["requests_per_frame"] >= 16
assert abs(s1["requests_per_frame"] - s1["requests"] / s1["frames"]) < 0.01
PY

# One in flight: nothing to coalesce, every request is a frame
ok "$C" bench --op random --inflight 1 --seconds 1 --json
cat "$T/out"
json_check "$T/out" "j['errors'] == 0 and j['operations'] > 10" \
    "j['requests_per_frame'] == 1 and j['largest_batch'] == 1" \
    "j['requests'] == j['frames'] == j['operations']"

# sign with a transient P-256 key, against OpenSSL in process
ok "$C" bench --op sign --inflight 32 --seconds 1 --baseline --json
cat "$T/out"
json_check "$T/out" "j['op'] == 'sign' and j['errors'] == 0 and j['operations'] > 10" \
    "j['baseline_ops_per_s'] > 0 and j['ratio'] > 0" \
    "abs(j['ratio'] - j['ops_per_s'] / j['baseline_ops_per_s']) < 0.01"
# and with a named key, text output
ok "$C" keygen --type ed25519 --name bench-ed
ok "$C" bench --op sign --name bench-ed --inflight 8 --seconds 0.5
grep -q "^ops/s " "$T/out" && grep -q "^requests/frame " "$T/out" || ihsm_fail "text report lacks lines"
expect 1 "no key named 'nope'" "$C" bench --op sign --name nope --inflight 8 --seconds 0.5
echo "bench: ok"
