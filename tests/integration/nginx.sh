#!/bin/bash
# Debian's nginx with `ssl_certificate_key` pointing at a masked key file:
# curl fetches a page over TLS 1.3, the certificate nginx serves carries the
# device key's public key, the device signs the handshakes, and `nginx -t`
# explains a stopped device, a corrupt key file and a foreign one.
. "$IHSM_SOURCE_DIR/tests/integration/common.sh"
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || ihsm_skip "nginx is not installed (scripts/install-deps.sh)"
command -v curl >/dev/null || ihsm_skip "curl is not installed"
it_device_start

# it_nginx_conf CONF KEY PORT: a foreground nginx with everything in $T.
it_nginx_conf() {
    mkdir -p "$T/nginx/logs" "$T/nginx/tmp"
    cat >"$1" <<EOF
daemon off;
master_process on;
worker_processes 2;
user root;
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log info;
# workers keep these (nginx clears the rest of their environment)
env OPENSSL_CONF;
env IHSM_SOCKET;
env IHSM_CREDENTIAL;
events { worker_connections 128; }
http {
    access_log $T/nginx/logs/access.log;
    client_body_temp_path $T/nginx/tmp/body;
    proxy_temp_path $T/nginx/tmp/proxy;
    fastcgi_temp_path $T/nginx/tmp/fastcgi;
    uwsgi_temp_path $T/nginx/tmp/uwsgi;
    scgi_temp_path $T/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$3 ssl;
        server_name localhost;
        ssl_certificate $T/web.crt;
        ssl_certificate_key $2;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { return 200 "served by nginx, key in ihsmd\n"; }
    }
}
EOF
}

it_openssl_cnf "$T/openssl.cnf"
export OPENSSL_CONF="$T/openssl.cnf"

ok "$IHSMCTL" keygen --type ec-p256 --name web --out "$T/web.pem"
it_cert "$T/web.pem" "$T/web.crt" -sha256
ok "$IHSMCTL" pubkey --name web
cp "$T/out" "$T/web.pub"

port=$(ihsm_free_port)
it_nginx_conf "$T/nginx.conf" "$T/web.pem" "$port"
ok "$NGINX" -e "$T/nginx/logs/startup.log" -t -p "$T/nginx" -c "$T/nginx.conf"

before=$(it_sign_count)
it_bg "$T/nginx.out" timeout 120 "$NGINX" -e "$T/nginx/logs/startup.log" -p "$T/nginx" -c "$T/nginx.conf"
nginx_pid=$BG_PID
it_wait_port "$port" "$nginx_pid" \
    || { cat "$T/nginx.out" "$T/nginx/logs/error.log" >&2; ihsm_fail "nginx did not start"; }

for i in 1 2 3; do
    body=$(curl -sS --tlsv1.3 --cacert "$T/web.crt" --resolve "localhost:$port:127.0.0.1" \
           --max-time 10 "https://localhost:$port/") \
        || { cat "$T/nginx/logs/error.log" >&2; ihsm_fail "curl over TLS 1.3 failed ($i)"; }
    [ "$body" = "served by nginx, key in ihsmd" ] || ihsm_fail "unexpected page: $body"
done
curl -sS --tlsv1.2 --tls-max 1.2 --cacert "$T/web.crt" --resolve "localhost:$port:127.0.0.1" \
    --max-time 10 -o /dev/null "https://localhost:$port/" || ihsm_fail "curl over TLS 1.2 failed"
after=$(it_sign_count)
[ "$after" -ge $((before + 4)) ] || ihsm_fail "the device signed $((after - before)) times for 4 handshakes"

# the certificate nginx serves carries the device key
timeout 20 "$OPENSSL" s_client -connect "127.0.0.1:$port" -servername localhost </dev/null 2>/dev/null \
    | "$OPENSSL" x509 -noout -pubkey >"$T/served.pub"
it_pub_equal "$T/served.pub" "$T/web.pub" || ihsm_fail "served public key differs from ihsmctl pubkey"
it_stop "$nginx_pid"
echo "ok: nginx served TLS 1.3 and 1.2 with the masked key, $((after - before)) device signatures"

# `store:ihsm:NAME` needs nginx >= 1.29 (ssl_certificate_key store:...)
if "$NGINX" -v 2>&1 | grep -Eq 'nginx/1\.(29|[3-9][0-9])\.'; then
    it_nginx_conf "$T/nginx-store.conf" "store:ihsm:web" "$port"
    ok "$NGINX" -e "$T/nginx/logs/startup.log" -t -p "$T/nginx" -c "$T/nginx-store.conf"
else
    echo "skip: this nginx has no store: keys ($("$NGINX" -v 2>&1))"
fi

# a corrupt key file: the body damaged, then a wrong byte inside the blob
sed '2s/^..../AAAA/' "$T/web.pem" >"$T/damaged.pem"
head -n -1 "$T/web.pem" >"$T/truncated.pem"
it_nginx_conf "$T/nginx-trunc.conf" "$T/truncated.pem" "$port"
expect fail "corrupt masked key file" "$NGINX" -e "$T/nginx/logs/startup.log" -t -p "$T/nginx" -c "$T/nginx-trunc.conf"
it_nginx_conf "$T/nginx-damaged.conf" "$T/damaged.pem" "$port"
expect fail "corrupt masked key file" "$NGINX" -e "$T/nginx/logs/startup.log" -t -p "$T/nginx" -c "$T/nginx-damaged.conf"
python3 - "$T/web.pem" "$T/flipped.pem" <<'PY'
import base64, sys
lines = open(sys.argv[1]).read().split("\n")
body = base64.b64decode("".join(lines[1:-2]))
bad = bytearray(body)
bad[-5] ^= 0x01                      # inside the masked blob (the last field)
b64 = base64.b64encode(bytes(bad)).decode()
out = [lines[0]] + [b64[i:i + 64] for i in range(0, len(b64), 64)] + lines[-2:]
open(sys.argv[2], "w").write("\n".join(out))
PY
it_nginx_conf "$T/nginx-flip.conf" "$T/flipped.pem" "$port"
expect fail "corrupt or foreign masked key" "$NGINX" -e "$T/nginx/logs/startup.log" -t -p "$T/nginx" -c "$T/nginx-flip.conf"
echo "ok: corrupt key files are named as such"

# a stopped device: the error names the socket
it_device_kill
expect fail "$IHSM_SOCKET" "$NGINX" -e "$T/nginx/logs/startup.log" -t -p "$T/nginx" -c "$T/nginx.conf"
grep -Eqi "not running|cannot reach|unreachable" "$T/out" \
    || { cat "$T/out" >&2; ihsm_fail "nginx -t does not say the device is not running"; }
echo "ok: nginx -t with the device stopped names $IHSM_SOCKET"
