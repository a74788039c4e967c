#!/bin/bash
# bench/kex/run.sh: TLS handshakes per second of one nginx with the ephemeral
# key exchange in ihsmd against the same nginx with it in process (signing in
# the device both times: the certificate key is a masked key file).
#
#   bench/kex/run.sh [--build DIR] [--seconds S] [--repeats N] [--concurrency C]
#                    [--groups G] [--tls 1.2|1.3] [--workers N]
#
# Starts its own ihsmd on a fresh partition in a scratch directory, one
# nginx per configuration (openssl.cnf: ihsm-route sign,derive vs sign, both
# with default_properties = ?ihsm.derive=yes), and alternates ihsm-tlsload
# runs between them (derive, in process, derive, ...), so drift hits both
# alike. Prints each run, the medians and their ratio; the device's derive
# counter shows where the key exchange happened.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=$SRC/build SECONDS_=5 REPEATS=3 CONC=4 GROUPS_=X25519 TLS=1.3 WORKERS=1
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --groups) GROUPS_=$2; shift 2 ;;
    --tls) TLS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--seconds S] [--repeats N] [--concurrency C] [--groups G] [--tls 1.2|1.3] [--workers N]" >&2; exit 2 ;;
    esac
done
BUILD=$(cd "$BUILD" && pwd)
export IHSM_BUILD_DIR=$BUILD
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
TLSLOAD=$BUILD/bin/ihsm-tlsload
for f in "$BUILD/bin/ihsmd" "$BUILD/bin/ihsmctl" "$BUILD/lib/ihsm.so" "$TLSLOAD" "$NGINX"; do
    [ -e "$f" ] || { echo "missing $f: build first (cmake --build $BUILD)" >&2; exit 1; }
done
. "$SRC/tests/lib/ihsmd.sh"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    ihsm_device_stop
}
ihsm_device_start
trap cleanup EXIT
T=$IHSM_SCRATCH
# a new state directory: ihsmd makes its RSA-3072 import key in the
# background first; measuring during that would charge it to the first runs
for _ in $(seq 1 1200); do
    grep -q "import key (RSA-3072) generated" "$T/ihsmd.log" 2>/dev/null && break
    sleep 0.1
done
"$IHSMCTL" keygen --type ec-p256 --name web --out "$T/web.pem" >/dev/null
# shellcheck disable=SC2086
openssl req $IHSM_PROVIDER_ARGS -x509 -new -key "$T/web.pem" -out "$T/web.crt" -days 2 \
    -subj /CN=localhost 2>/dev/null

stat_derive() { "$IHSMCTL" stats --json | tr -d ' \n' | grep -o '"derive":[0-9]*' | cut -d: -f2; }
# cpu_ticks PID: user+system clock ticks of PID and all its descendants
cpu_ticks() {
    local t=0 c
    for c in $1 $(pgrep -P "$1" || true); do
        if [ "$c" != "$1" ]; then
            t=$((t + $(cpu_ticks "$c")))
        elif [ -r "/proc/$c/stat" ]; then
            t=$((t + $(sed 's/.*) //' "/proc/$c/stat" | awk '{print $12 + $13}')))
        fi
    done
    echo "$t"
}
TCK=$(getconf CLK_TCK)

# start NAME ROUTE: nginx with its own openssl.cnf; sets PORT_<NAME>
start() {
    local name=$1 route=$2 port
    port=$(ihsm_free_port)
    mkdir -p "$T/$name/logs" "$T/$name/tmp"
    cat >"$T/$name/openssl.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
alg_section = algorithm_sect
[algorithm_sect]
default_properties = ?ihsm.derive=yes
[provider_sect]
default = default_sect
ihsm = ihsm_sect
[default_sect]
activate = 1
[ihsm_sect]
module = $BUILD/lib/ihsm.so
activate = 1
ihsm-socket = $IHSM_SOCKET
ihsm-credential = $IHSM_CREDENTIAL
ihsm-route = $route
EOF
    cat >"$T/$name/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $WORKERS;
user root;
pid $T/$name/nginx.pid;
error_log $T/$name/logs/error.log warn;
env OPENSSL_CONF;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $T/$name/tmp/body;
    proxy_temp_path $T/$name/tmp/proxy;
    fastcgi_temp_path $T/$name/tmp/fastcgi;
    uwsgi_temp_path $T/$name/tmp/uwsgi;
    scgi_temp_path $T/$name/tmp/scgi;
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $T/web.crt;
        ssl_certificate_key $T/web.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        location / { return 200 "ok\n"; }
    }
}
EOF
    OPENSSL_CONF=$T/$name/openssl.cnf timeout 3600 "$NGINX" -e "$T/$name/logs/startup.log" \
        -p "$T/$name" -c "$T/$name/nginx.conf" >"$T/$name/out" 2>&1 &
    PIDS+=($!)
    eval "PID_$name=$!"
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
    kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$T/$name/out" "$T/$name/logs/startup.log" "$T/$name/logs/error.log" >&2 2>/dev/null; echo "nginx ($name) did not start" >&2; exit 1; }
    eval "PORT_$name=$port"
}

start derive sign,derive
start inproc sign

# one NAME: one measured run; sets RATE (handshakes/s), N (handshakes) and the
# CPU ticks of nginx (NG) and ihsmd (DV) during it (the 1 s warm-up included)
one() {
    local port pid out n0 d0
    eval "port=\$PORT_$1 pid=\$PID_$1"
    n0=$(cpu_ticks "$pid"); d0=$(cpu_ticks "$IHSMD_PID")
    out=$(OPENSSL_CONF=/dev/null "$TLSLOAD" handshake --connect "127.0.0.1:$port" --tls "$TLS" \
        --groups "$GROUPS_" --concurrency "$CONC" --duration "$SECONDS_" --warmup 1 --json --quiet \
        | tr -d ' ')
    NG=$(($(cpu_ticks "$pid") - n0)); DV=$(($(cpu_ticks "$IHSMD_PID") - d0))
    RATE=$(echo "$out" | grep -o '"per_s":[0-9.]*' | cut -d: -f2)
    N=$(echo "$out" | grep -o '"handshakes":[0-9]*' | cut -d: -f2)
}
# us_per HS TICKS: CPU microseconds per handshake (warm-up handshakes estimated at the same rate)
us_per() { awk -v t="$2" -v n="$1" -v hz="$TCK" -v s="$SECONDS_" 'BEGIN {n = n * (s + 1) / s; printf "%.0f", (n > 0 ? t / hz * 1e6 / n : 0)}'; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), $WORKERS worker(s); ihsm-tlsload TLS $TLS, groups $GROUPS_, concurrency $CONC, ${SECONDS_} s x $REPEATS"
D=() I=()
for r in $(seq 1 "$REPEATS"); do
    d0=$(stat_derive); one derive; d1=$(stat_derive)
    D+=("$RATE")
    echo "run $r: kex in ihsmd   $RATE handshakes/s  (device derives +$((d1 - d0)); CPU per handshake: nginx $(us_per "$N" "$NG") us, ihsmd $(us_per "$N" "$DV") us)"
    d0=$(stat_derive); one inproc; d1=$(stat_derive)
    I+=("$RATE")
    echo "run $r: kex in process $RATE handshakes/s  (device derives +$((d1 - d0)); CPU per handshake: nginx $(us_per "$N" "$NG") us, ihsmd $(us_per "$N" "$DV") us)"
done
md=$(printf '%s\n' "${D[@]}" | median)
mi=$(printf '%s\n' "${I[@]}" | median)
echo "median: kex in ihsmd $md/s, in process $mi/s, ratio $(awk -v a="$md" -v b="$mi" 'BEGIN {printf "%.2f", a / b}')"
