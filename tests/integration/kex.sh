#!/bin/bash
# Ephemeral key exchange in ihsmd with openssl s_server: with derive in
# ihsm-route (and `default_properties = ?ihsm.derive=yes`), TLS 1.3 with
# X25519, P-256 and P-384 and TLS 1.2 ECDHE complete, the page arrives
# intact, and the device's derive counter grows by one per handshake. With
# derive not routed (the same file otherwise) handshakes still work and the
# counter does not move. After 200 more handshakes the device holds no more
# keys than before (ephemeral keys are released) and its audit log has no
# line for them.
. "$IHSM_SOURCE_DIR/tests/integration/common.sh"
. "$IHSM_SOURCE_DIR/tests/integration/kex_common.sh"
TLSLOAD="$IHSM_BUILD_DIR/bin/ihsm-tlsload"
it_device_start

ok "$IHSMCTL" keygen --type ec-p256 --name web --out "$T/web.pem"
it_cert "$T/web.pem" "$T/web.crt" -sha256
kex_cnf "$T/derive.cnf" "sign,derive"
kex_cnf "$T/sign.cnf" "sign"
mkdir -p "$T/www"
head -c 6000 /dev/urandom | base64 >"$T/www/page.txt"

# serve CNF: s_server -WWW on a free port with that openssl.cnf; sets port, server.
serve() {
    port=$(ihsm_free_port)
    it_bg "$T/server.log" env -C "$T/www" OPENSSL_CONF="$1" timeout 120 "$OPENSSL" s_server \
        -accept "127.0.0.1:$port" -cert "$T/web.crt" -key "$T/web.pem" -WWW
    server=$BG_PID
    it_wait_line "$T/server.log" '^ACCEPT' "$server" \
        || { cat "$T/server.log" >&2; ihsm_fail "s_server ($1) did not start"; }
}

# handshake VERSION GROUPS TEMPKEY: an in-process client (no provider
# configuration) fetches page.txt; the server's ephemeral key is TEMPKEY.
handshake() {
    local version=$1 groups=$2 tempkey=$3 want=TLSv1.3
    [ "$version" = tls1_2 ] && want=TLSv1.2
    printf 'GET /page.txt HTTP/1.0\r\n\r\n' | OPENSSL_CONF=/dev/null timeout 20 "$OPENSSL" s_client \
        -brief -ign_eof -connect "127.0.0.1:$port" -servername localhost "-$version" \
        -groups "$groups" -CAfile "$T/web.crt" -verify_return_error \
        >"$T/client.out" 2>"$T/client.err" \
        || { cat "$T/client.err" "$T/server.log" >&2; ihsm_fail "$version $groups: s_client failed"; }
    grep -q "Protocol version: $want" "$T/client.err" \
        || { cat "$T/client.err" >&2; ihsm_fail "$version $groups: not a $want handshake"; }
    grep -q "Verification: OK" "$T/client.err" \
        || { cat "$T/client.err" >&2; ihsm_fail "$version $groups: certificate not verified"; }
    grep -q "Server Temp Key: $tempkey" "$T/client.err" \
        || { cat "$T/client.err" >&2; ihsm_fail "$version $groups: server key share is not $tempkey"; }
    # the body after the header, byte for byte
    tr -d '\r' <"$T/client.out" | sed '1,/^$/d' >"$T/body.txt"
    cmp -s "$T/body.txt" "$T/www/page.txt" \
        || { head -c 400 "$T/client.out" >&2; ihsm_fail "$version $groups: the page arrived damaged"; }
}

CASES=(
    "tls1_3 X25519 X25519"
    "tls1_3 P-256 ECDH, prime256v1"
    "tls1_3 P-384 ECDH, secp384r1"
    # TLS 1.2 with an ECDSA certificate: the client must list the
    # certificate's curve (RFC 4492), so the ephemeral group comes first
    "tls1_2 X25519:P-256 X25519"
    "tls1_2 P-256 ECDH, prime256v1"
    "tls1_2 P-384:P-256 ECDH, secp384r1"
)

# --- derive routed: every handshake derives in the device
serve "$T/derive.cnf"
for c in "${CASES[@]}"; do
    read -r version groups tempkey <<<"$c"
    before=$(kex_stat derive)
    handshake "$version" "$groups" "$tempkey"
    after=$(kex_stat derive)
    [ "$after" -ge $((before + 1)) ] \
        || ihsm_fail "$version $groups: the device did not derive ($before -> $after)"
    echo "ok: routed $version $groups: derive $before -> $after"
done

# --- ephemeral keys do not pile up in the device: 200 handshakes
[ -x "$TLSLOAD" ] || ihsm_fail "no $TLSLOAD: build ihsm-tlsload"
keys0=$(kex_settle keys_loaded 1)
derive0=$(kex_stat derive)
# the partition's: ihsmd's own import key (partition=-) may be made meanwhile
audit0=$(grep -c "event=generate partition=test " "$IHSM_SCRATCH/state/audit.log" || true)
ok "$TLSLOAD" handshake --connect "127.0.0.1:$port" --tls 1.3 --groups X25519 --count 200 \
    --request /page.txt --json --quiet
grep -q '"handshakes":200,' "$T/out" || { cat "$T/out" >&2; ihsm_fail "200 handshakes did not all complete"; }
grep -q '"errors":0,' "$T/out" || { cat "$T/out" >&2; ihsm_fail "errors in 200 handshakes"; }
derive1=$(kex_stat derive)
[ "$derive1" -ge $((derive0 + 200)) ] || ihsm_fail "200 handshakes, $((derive1 - derive0)) derives"
keys1=$(kex_settle keys_loaded "$keys0")
[ "$keys1" -le $((keys0 + 1)) ] \
    || ihsm_fail "ephemeral keys pile up: keys_loaded $keys0 before 200 handshakes, $keys1 after"
# ephemeral keys are not audited (the log would take a synced line each)
audit1=$(grep -c "event=generate partition=test " "$IHSM_SCRATCH/state/audit.log" || true)
[ "$audit1" -eq "$audit0" ] || ihsm_fail "ephemeral keys in the audit log: $audit0 -> $audit1 generate lines"
echo "ok: 200 handshakes, derive +$((derive1 - derive0)), keys_loaded $keys0 -> $keys1, no audit lines"
it_stop "$server"

# --- control: derive not routed, the same file otherwise: in process
serve "$T/sign.cnf"
for c in "${CASES[@]}"; do
    read -r version groups tempkey <<<"$c"
    before=$(kex_stat derive)
    handshake "$version" "$groups" "$tempkey"
    after=$(kex_stat derive)
    [ "$after" -eq "$before" ] \
        || ihsm_fail "$version $groups: derive not routed, yet the device derived ($before -> $after)"
done
echo "ok: not routed: ${#CASES[@]} handshakes, derive counter unchanged"
it_stop "$server"
