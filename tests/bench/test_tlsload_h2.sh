#!/usr/bin/env bash
# HTTP/2 against Debian's nginx on a loopback port in a scratch dir. A second
# server ends every connection after 50 requests (GOAWAY), so the counts must
# still add up across reconnects.
set -u
. "$(dirname "$0")/lib.sh"
NGINX=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null) || tl_skip "nginx is not installed"
tl_make_cert
out=$TL_SCRATCH/out.json
mkdir -p "$TL_SCRATCH/www" "$TL_SCRATCH/tmp"
head -c 1000 /dev/zero | tr '\0' x >"$TL_SCRATCH/www/index.html"

start_nginx() {
    local pid
    for _ in 1 2 3; do
        PORT=$(tl_free_port)
        PORT50=$(tl_free_port)
        [ "$PORT" != "$PORT50" ] || continue
        cat >"$TL_SCRATCH/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $TL_SCRATCH/nginx.pid;
error_log $TL_SCRATCH/error.log warn;
events { worker_connections 128; }
http {
    access_log off;
    client_body_temp_path $TL_SCRATCH/tmp;
    proxy_temp_path $TL_SCRATCH/tmp;
    fastcgi_temp_path $TL_SCRATCH/tmp;
    uwsgi_temp_path $TL_SCRATCH/tmp;
    scgi_temp_path $TL_SCRATCH/tmp;
    ssl_certificate $TL_SCRATCH/cert.pem;
    ssl_certificate_key $TL_SCRATCH/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $TL_SCRATCH/www;
    server { listen 127.0.0.1:$PORT ssl http2; }
    server { listen 127.0.0.1:$PORT50 ssl http2; keepalive_requests 50; }
}
CONF
        "$NGINX" -p "$TL_SCRATCH" -c "$TL_SCRATCH/nginx.conf" -e "$TL_SCRATCH/error.log" \
            >"$TL_SCRATCH/nginx.out" 2>&1 </dev/null &
        pid=$!
        TL_PIDS+=("$pid")
        tl_wait_listen "$PORT" "$pid" "$TL_SCRATCH/nginx.out" &&
            tl_wait_listen "$PORT50" "$pid" "$TL_SCRATCH/nginx.out" && return 0
    done
    cat "$TL_SCRATCH/nginx.out" "$TL_SCRATCH/error.log" >&2
    tl_fail "nginx did not start"
}
start_nginx

run() { "$TLSLOAD" h2 --quiet --json "$@" >"$out" 2>"$TL_SCRATCH/err"; }

run --connect "127.0.0.1:$PORT" --count 200 --concurrency 2 --streams 4 --path /index.html ||
    { cat "$TL_SCRATCH/err" "$out" >&2; tl_fail "h2 run failed"; }
tl_check "$out" 'd["mode"] == "h2" and d["requests"] == 200 and d["errors"] == 0' "200 requests, no errors"
tl_check "$out" 'len(d["per_connection"]) == 2 and sum(d["per_connection"]) == d["requests"]' \
    "per-connection counts add up"
tl_check "$out" 'd["connections"] == 2' "two long-lived connections"
tl_check "$out" 'd["body_bytes"] == 200 * 1000' "every body read in full"
tl_check "$out" '0 < d["p50_us"] <= d["p99_us"] and d["per_s"] > 0' "latency and rate"

# GOAWAY after 50 requests per connection: refused streams are retried on a
# new connection, never lost and never counted twice.
run --connect "127.0.0.1:$PORT50" --count 200 --concurrency 2 --streams 8 --path /index.html ||
    { cat "$TL_SCRATCH/err" "$out" >&2; tl_fail "h2 run with reconnects failed"; }
tl_check "$out" 'd["requests"] == 200 and d["errors"] == 0' "200 requests across reconnects"
tl_check "$out" 'sum(d["per_connection"]) == 200 and d["connections"] >= 4' "counts add up across reconnects"

# A missing page is an http error per request, and the run exits 1.
run --connect "127.0.0.1:$PORT" --count 40 --concurrency 2 --streams 4 --path /missing.html
[ $? -eq 1 ] || tl_fail "a run where every request failed must exit 1"
tl_check "$out" 'd["requests"] == 0 and d["errors_by_kind"]["http"] == 40' "404s counted as http errors"

# Time-bounded run with two threads.
run --connect "127.0.0.1:$PORT" --duration 1 --concurrency 2 --threads 2 --streams 4 ||
    { cat "$TL_SCRATCH/err" >&2; tl_fail "threaded h2 run failed"; }
tl_check "$out" 'd["requests"] > 0 and d["errors"] == 0 and sum(d["per_connection"]) == d["requests"]' \
    "threaded run counts add up"

echo "PASS: ihsm-tlsload h2 mode"
