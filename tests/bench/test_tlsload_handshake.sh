#!/usr/bin/env bash
# Full handshakes against openssl s_server: counts, HTTP/1.1 GET, verification,
# and a protocol mismatch that must show up as errors, not handshakes.
set -u
. "$(dirname "$0")/lib.sh"
tl_make_cert
out=$TL_SCRATCH/out.json

tl_s_server any
run() { "$TLSLOAD" handshake --connect "127.0.0.1:$TL_PORT" --quiet --json "$@" >"$out" 2>"$TL_SCRATCH/err"; }

run --count 50 --concurrency 4 || { cat "$TL_SCRATCH/err" >&2; tl_fail "handshake run failed"; }
tl_check "$out" 'd["mode"] == "handshake" and d["handshakes"] == 50' "50 handshakes"
tl_check "$out" 'd["errors"] == 0 and sum(d["errors_by_kind"].values()) == 0' "no errors"
tl_check "$out" 'd["connections"] == 50' "one connection per handshake"
tl_check "$out" 'd["tls"] == "TLSv1.3" and d["sigalg"] == "ECDSA+SHA256"' "TLS 1.3 with the EC key"
tl_check "$out" '0 < d["p50_us"] <= d["p99_us"] <= d["max_us"]' "latency percentiles ordered"
tl_check "$out" 'd["per_s"] > 0 and d["duration_s"] > 0 and d["cpu_s_client"] > 0' "rate and CPU"
tl_check "$out" 'd["bytes_in"] > 50 * 300 and d["bytes_out"] > 50 * 100' "wire bytes counted"

# The client never reads OPENSSL_CONF (which may load ihsm for the server
# under test): a configuration that breaks every other libssl program here
# must not matter.
printf 'openssl_conf = oi\n[oi]\nproviders = ps\n[ps]\nbogus = bs\n[bs]\nmodule = %s\nactivate = 1\n' \
    "$TL_SCRATCH/no-such-provider.so" >"$TL_SCRATCH/bogus.cnf"
OPENSSL_CONF=$TL_SCRATCH/bogus.cnf run --count 10 || { cat "$TL_SCRATCH/err" >&2; tl_fail "OPENSSL_CONF leaked into the client"; }
tl_check "$out" 'd["handshakes"] == 10 and d["errors"] == 0' "OPENSSL_CONF ignored"

# One GET per connection: s_server -www answers 200.
run --count 20 --concurrency 2 --request / || { cat "$TL_SCRATCH/err" >&2; tl_fail "--request run failed"; }
tl_check "$out" 'd["handshakes"] == 20 and d["errors"] == 0' "20 handshakes with a GET each"
tl_check "$out" 'd["bytes_in"] > 20 * 2000' "the answers were read"

# Verification: right name passes, wrong name is a verify error per attempt.
run --count 10 --cafile "$TL_SCRATCH/cert.pem" --sni localhost ||
    { cat "$TL_SCRATCH/err" >&2; tl_fail "verified run failed"; }
tl_check "$out" 'd["handshakes"] == 10 and d["errors"] == 0' "certificate verifies"
run --count 10 --cafile "$TL_SCRATCH/cert.pem" --sni wrong.example
[ $? -eq 1 ] || tl_fail "a run where every handshake failed must exit 1"
tl_check "$out" 'd["handshakes"] == 0 and d["errors_by_kind"]["verify"] == 10' "wrong name fails verification"

# --duration bounds the run.
run --duration 1 --concurrency 2 || tl_fail "duration run failed"
tl_check "$out" '0.9 < d["duration_s"] < 1.5 and d["handshakes"] > 0 and not d["interrupted"]' "1 s run"

# --rate paces the starts: 50/s for 1 s is about 50 handshakes, not as many
# as the server can do.
run --rate 50 --duration 1 --concurrency 2 || tl_fail "rate run failed"
tl_check "$out" '40 <= d["handshakes"] <= 52' "--rate 50 for 1 s"

# A TLS 1.2-only server: --tls 1.3 gets errors and no handshakes; --tls 1.2 works.
tl_s_server tls12 -tls1_2
run --count 20 --concurrency 2 --tls 1.3
[ $? -eq 1 ] || tl_fail "--tls 1.3 against a TLS 1.2 server must exit 1"
tl_check "$out" 'd["handshakes"] == 0 and d["errors"] > 0 and d["errors_by_kind"]["handshake"] == d["errors"]' \
    "TLS 1.3 against TLS 1.2 fails as handshake errors"
run --count 20 --concurrency 2 --tls 1.2 || tl_fail "--tls 1.2 run failed"
tl_check "$out" 'd["handshakes"] == 20 and d["errors"] == 0 and d["tls"] == "TLSv1.2"' "TLS 1.2 handshakes"
tl_check "$out" 'd["errors_by_kind"]["resumed"] == 0' "no session was resumed"

# SIGINT stops the run and still prints what it has.
"$TLSLOAD" handshake --connect "127.0.0.1:$TL_PORT" --duration 30 --quiet --json >"$out" 2>/dev/null &
pid=$!
sleep 1
kill -INT "$pid"
wait "$pid" || tl_fail "interrupted run exited $?"
tl_check "$out" 'd["interrupted"] and d["handshakes"] > 0 and d["duration_s"] < 5' "SIGINT report"

echo "PASS: ihsm-tlsload handshake mode"
