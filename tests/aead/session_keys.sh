#!/bin/bash
# Session keys do not pile up in the device: s_server with TLS record AEAD
# routed (every record at least 1 KiB goes to ihsmd under a session key)
# serves a 64 KiB file over 100 connections; the device sealed their
# records, and once they are closed keys_loaded is back where it started:
# each connection's keys were released when libssl freed its cipher
# contexts.
. "$IHSM_SOURCE_DIR/tests/aead/common.sh"
TLSLOAD="$IHSM_BUILD_DIR/bin/ihsm-tlsload"
[ -x "$TLSLOAD" ] || ihsm_skip "no $TLSLOAD: build ihsm-tlsload"
it_device_start

ok "$IHSMCTL" keygen --type ec-p256 --name web --out "$T/web.pem"
it_cert "$T/web.pem" "$T/web.crt" -sha256
aead_cnf "$T/aead.cnf" "sign,aead" 1024 prefer
mkdir -p "$T/www"
head -c 65536 /dev/urandom >"$T/www/big.bin"

port=$(ihsm_free_port)
it_bg "$T/server.log" env -C "$T/www" OPENSSL_CONF="$T/aead.cnf" timeout 120 "$OPENSSL" s_server \
    -accept "127.0.0.1:$port" -cert "$T/web.crt" -key "$T/web.pem" -WWW
server=$BG_PID
it_wait_line "$T/server.log" '^ACCEPT' "$server" \
    || { cat "$T/server.log" >&2; ihsm_fail "s_server did not start"; }

# settle MAX: keys_loaded once it is at most MAX (2 s at most)
settle() {
    local v
    for _ in $(seq 1 40); do
        v=$(keys_loaded)
        [ "$v" -le "$1" ] && break
        sleep 0.05
    done
    keys_loaded
}

keys0=$(keys_loaded)
aead0=$(aead_count)
for tls in 1.3 1.2; do
    ok env OPENSSL_CONF=/dev/null "$TLSLOAD" handshake --connect "127.0.0.1:$port" --tls "$tls" \
        --count 50 --request /big.bin --json --quiet
    grep -q '"handshakes":50,' "$T/out" || { cat "$T/out" >&2; ihsm_fail "TLS $tls: 50 connections did not all complete"; }
    grep -q '"errors":0,' "$T/out" || { cat "$T/out" "$T/server.log" >&2; ihsm_fail "TLS $tls: errors in 50 connections"; }
done
aead1=$(aead_count)
# 64 KiB is 4 full records per connection, sealed by the server in ihsmd
[ "$aead1" -ge $((aead0 + 400)) ] \
    || ihsm_fail "100 connections of 64 KiB: the device sealed $((aead1 - aead0)) records"
keys1=$(settle "$keys0")
[ "$keys1" -le $((keys0 + 2)) ] \
    || ihsm_fail "session keys pile up: keys_loaded $keys0 before 100 connections, $keys1 after"
echo "ok: 100 connections, aead +$((aead1 - aead0)), keys_loaded $keys0 -> $keys1"
it_stop "$server"
