#!/usr/bin/env bash
# The main job, end to end on one machine: Debian's nginx serving HTTPS with a
# private key that exists only inside ihsmd.
#
#   scripts/demo.sh [--keep]      # --keep leaves the scratch dir and prints its path
#
# 1. install what is missing and build;
# 2. start ihsmd on a fresh partition in a scratch directory;
# 3. generate an EC P-256 key in the device (its masked key file is all the
#    host gets) and make a self-signed certificate with `openssl req -provider ihsm`;
# 4. start nginx on a loopback port with the masked key file, fetch a page
#    with curl, and show the device counting the signatures;
# 5. prove nginx's memory holds no private key: import a key we know into the
#    device, serve with its masked file, scan every nginx process's memory for
#    the key's secret bytes (none), then serve the clear key and scan again
#    (found: the scan works).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
keep=
[ "${1:-}" = --keep ] && keep=1

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Installing what is missing and building"
scripts/install-deps.sh
scripts/build.sh >/dev/null
build=$src/${IHSM_BUILD_DIR:-build}
IHSMD=$build/bin/ihsmd
IHSMCTL=$build/bin/ihsmctl
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

T=$(mktemp -d /tmp/ihsm-demo.XXXXXX)
pids=()
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    if [ -n "$keep" ]; then echo "scratch directory kept: $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() { # wait_for CMD...: up to 10 s
    for _ in $(seq 1 200); do "$@" 2>/dev/null && return 0; sleep 0.05; done
    return 1
}

say "Starting ihsmd (state in $T/state)"
# the user credential (nginx signs with it) and the crypto officer's
# (ihsmctl import uses it by itself)
export IHSM_SOCKET=$T/ihsmd.sock IHSM_CREDENTIAL=$T/demo.cred IHSM_OFFICER_CREDENTIAL=$T/demo.cred.officer
"$IHSMD" --state-dir "$T/state" --socket "$IHSM_SOCKET" >"$T/ihsmd.log" 2>&1 &
IHSMD_PID=$!
pids+=("$IHSMD_PID")
wait_for test -S "$IHSM_SOCKET" || { cat "$T/ihsmd.log"; exit 1; }
"$IHSMCTL" info
"$IHSMCTL" init --partition demo --credential-out "$IHSM_CREDENTIAL" \
    --officer-credential-out "$IHSM_OFFICER_CREDENTIAL" --allow-uid 0

say "Generating an EC P-256 key inside the device"
"$IHSMCTL" keygen --type ec-p256 --name web --out "$T/web.pem"
echo "key file $T/web.pem (this is all the host holds):"
head -3 "$T/web.pem"
echo "..."

cat >"$T/openssl.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
ihsm = ihsm_sect
[default_sect]
activate = 1
[ihsm_sect]
module = $build/lib/ihsm.so
activate = 1
ihsm-socket = $IHSM_SOCKET
ihsm-credential = $IHSM_CREDENTIAL
EOF
export OPENSSL_CONF=$T/openssl.cnf

say "Self-signed certificate, signed by the device (openssl req -provider ihsm)"
openssl req -x509 -new -key "$T/web.pem" -subj /CN=localhost -days 30 -sha256 -out "$T/web.crt"
openssl x509 -in "$T/web.crt" -noout -subject -dates
openssl verify -CAfile "$T/web.crt" "$T/web.crt"

# start_nginx NAME KEYFILE: nginx (master + 2 workers) on a free loopback port
start_nginx() {
    local name=$1 key=$2 d=$T/$1
    PORT=$(free_port)
    mkdir -p "$d/logs" "$d/tmp" "$d/www"
    echo "<h1>hello from nginx, key in ihsmd</h1>" >"$d/www/index.html"
    cat >"$d/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/logs/error.log;
env OPENSSL_CONF;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT ssl;
        ssl_certificate $T/web.crt;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets off;
        ssl_session_cache off;
        root $d/www;
    }
}
EOF
    "$NGINX" -e "$d/logs/startup.log" -p "$d" -c "$d/nginx.conf" >"$d/nginx.out" 2>&1 &
    NGINX_PID=$!
    pids+=("$NGINX_PID")
    wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" \
        || { cat "$d/nginx.out" "$d/logs/error.log"; exit 1; }
}
stop_nginx() {
    kill -TERM "$NGINX_PID"
    wait "$NGINX_PID" 2>/dev/null || true
}
signs() { "$IHSMCTL" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sign"])'; }

say "nginx $("$NGINX" -v 2>&1 | sed 's/.*\///') serving with the masked key file"
start_nginx device "$T/web.pem"
before=$(signs)
curl -sS --cacert "$T/web.crt" --resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/"
for _ in $(seq 1 20); do
    curl -sS -o /dev/null --cacert "$T/web.crt" --resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/"
done
after=$(signs)
echo "21 TLS connections: the device made $((after - before)) signatures"
echo "nginx's certificate key equals the device key:"
diff <("$IHSMCTL" pubkey --name web) <(openssl x509 -in "$T/web.crt" -noout -pubkey) && echo "  yes"
stop_nginx

say "Where the private key lives"
cat <<EOF
  in ihsmd (pid $IHSMD_PID), partition "demo", key "web": in its secure heap
  (locked, excluded from core dumps); on disk only masked, AES-256-GCM under the
  partition's key: $T/state/partitions/demo/keys/
  nginx holds $T/web.pem: a masked blob and the public key, useless without the device.
EOF

say "Proof: nginx's memory holds no private key"
env -u OPENSSL_CONF openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/known.pem" 2>/dev/null
"$IHSMCTL" import --in "$T/known.pem" --out "$T/known-masked.pem"
env -u OPENSSL_CONF openssl req -x509 -new -key "$T/known.pem" -subj /CN=localhost -days 2 -out "$T/web.crt" 2>/dev/null
scan() { # scan LABEL KEYFILE: serve 100 handshakes with KEYFILE, scan nginx's processes
    start_nginx "$1" "$2"
    for _ in $(seq 1 100); do
        curl -sS -o /dev/null -k --resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/"
    done
    local procs
    procs="$(cat "$T/$1/nginx.pid") $(pgrep -P "$(cat "$T/$1/nginx.pid")" | tr '\n' ' ')"
    set +e
    python3 tests/integration/memscan.py "$T/known.pem" $procs >"$T/$1.scan" 2>&1
    SCAN_RC=$?
    set -e
    echo "  scanned nginx processes $procs: $(tail -1 "$T/$1.scan")"
    stop_nginx
}
echo "nginx with the masked key file of a key we know the secret of:"
scan masked "$T/known-masked.pem"
masked_rc=$SCAN_RC
echo "control, nginx with the same key in the clear:"
scan clear "$T/known.pem"
clear_rc=$SCAN_RC
if [ "$masked_rc" = 0 ] && [ "$clear_rc" = 1 ]; then
    say "Done: nginx served TLS with a device-held key and never held the private key"
else
    echo "isolation check failed: masked scan rc $masked_rc (want 0), control rc $clear_rc (want 1)" >&2
    exit 1
fi
