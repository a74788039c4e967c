# Shared by the ihsm-speed tests: the binary, failing and skipping, and one
# python3 that checks a whole --json line at once.
: "${IHSM_BUILD_DIR:?IHSM_BUILD_DIR must point at the build directory}"
: "${IHSM_SOURCE_DIR:?IHSM_SOURCE_DIR must point at the source directory}"
SPEED="$IHSM_BUILD_DIR/bin/ihsm-speed"

sp_fail() { echo "FAIL: $*" >&2; exit 1; }

[ -x "$SPEED" ] || sp_fail "no ihsm-speed at $SPEED: build it first"
[ -e "$IHSM_BUILD_DIR/lib/ihsm.so" ] || sp_fail "no ihsm.so in $IHSM_BUILD_DIR/lib: build target ihsm"

# Every field a row must carry (docs/ihsm-speed.md).
SP_FIELDS="alg op mode threads depth ops_per_s p50_us p99_us baseline_ops_per_s ratio
cpu_s_caller cpu_s_device cpu_ratio baseline_cpu_s baseline_threads baseline_depth
baseline_p50_us baseline_p99_us ops baseline_ops seconds slices device_ops device_counter
device_counter_name requests_per_frame ncpu loadavg1 verified"

# sp_check_row FILE SIGN_DELTA ALG MODE THREADS DEPTH WARMUP
# FILE holds ihsm-speed's stdout. Checks that it is exactly one JSON row with
# every field and that the numbers add up with what ihsmd counted.
sp_check_row() {
    python3 - "$@" "$SP_FIELDS" <<'PY'
import json, sys
path, delta, alg, mode, threads, depth, warmup, fields = sys.argv[1:9]
delta, threads, depth, warmup = int(delta), int(threads), int(depth), float(warmup)
lines = [l for l in open(path).read().splitlines() if l.strip()]
def fail(msg):
    print("FAIL: %s\n%s" % (msg, "\n".join(lines)), file=sys.stderr)
    sys.exit(1)
if len(lines) != 1:
    fail("expected one JSON line, got %d" % len(lines))
d = json.loads(lines[0])
missing = [f for f in fields.split() if f not in d]
if missing:
    fail("fields missing: %s" % " ".join(missing))
nulls = [f for f in fields.split() if d[f] is None]
if nulls:
    fail("fields without a value: %s" % " ".join(nulls))
def check(cond, msg):
    if not cond:
        fail(msg)
check(d["alg"] == alg and d["op"] == "sign" and d["mode"] == mode, "alg/op/mode")
check(d["threads"] == threads and d["depth"] == depth, "threads %s depth %s" % (d["threads"], d["depth"]))
check(d["ops_per_s"] > 0 and d["baseline_ops_per_s"] > 0, "ops_per_s and baseline_ops_per_s > 0")
check(d["ops"] > 0 and d["baseline_ops"] > 0, "ops and baseline_ops > 0")
check(0 < d["p50_us"] <= d["p99_us"], "0 < p50 <= p99")
check(abs(d["ratio"] - d["ops_per_s"] / d["baseline_ops_per_s"]) <= 0.001 * max(1, d["ratio"]) + 1e-3,
      "ratio is ops_per_s / baseline_ops_per_s")
check(d["verified"] is True, "the spot check verified")
check(d["slices"] >= 3, "at least three slices per side")
# the median slice rate and the mean rate cannot be far apart
mean = d["ops"] / d["seconds"]
check(0.33 < d["ops_per_s"] / mean < 3, "median rate %.0f vs mean %.0f" % (d["ops_per_s"], mean))
# every signature this tool sent reached the device, and nothing else did:
# the device's sign counter grew by exactly device_ops (measured ops, ops
# drained after a slice's end, warmup and one spot-check signature); the
# baseline's signatures never reached it
check(delta == d["device_ops"], "ihsmd counted %d signatures, ihsm-speed says it sent %d" % (delta, d["device_ops"]))
check(d["device_counter"] == delta, "the row's own device counter %s vs ihsmctl's %d" % (d["device_counter"], delta))
if warmup == 0:
    check(d["device_ops"] == d["ops"] + 1, "without warmup: measured ops + 1 check = device ops")
else:
    check(d["device_ops"] > d["ops"], "device ops include the warmup")
# the CPU each side used was measured, the device's too (pid from SO_PEERCRED)
check(d["cpu_s_caller"] > 0 and d["baseline_cpu_s"] > 0, "caller CPU measured")
check(d["cpu_s_device"] > 0, "device CPU measured")
expect = (d["ops"] / (d["cpu_s_caller"] + d["cpu_s_device"])) / (d["baseline_ops"] / d["baseline_cpu_s"])
check(abs(d["cpu_ratio"] - expect) <= 0.01 * expect + 1e-3, "cpu_ratio adds up (%.4f vs %.4f)" % (d["cpu_ratio"], expect))
check(d["requests_per_frame"] >= 1, "requests_per_frame >= 1")
check(d["baseline_threads"] >= d["ncpu"], "the baseline uses every CPU")
PY
}
