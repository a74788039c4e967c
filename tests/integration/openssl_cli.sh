#!/bin/bash
# The openssl CLI with the provider: genpkey writes a masked key file (and
# nothing else), pkey reads it back, req -x509 signs a certificate with it,
# and s_server serves TLS 1.2 and 1.3 with it to a plain s_client, blocking
# and with -async, for RSA, RSA-PSS, ECDSA P-256 and P-384 and Ed25519. Each
# handshake must make the device sign.
. "$IHSM_SOURCE_DIR/tests/integration/common.sh"
it_device_start

# genpkey options per key type
declare -A GEN=(
    [rsa]="-algorithm RSA -pkeyopt rsa_keygen_bits:2048"
    [rsa-pss]="-algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048"
    [ec-p256]="-algorithm EC -pkeyopt ec_paramgen_curve:P-256"
    [ec-p384]="-algorithm EC -pkeyopt ec_paramgen_curve:P-384"
    [ed25519]="-algorithm ED25519"
)
# TLS versions to run per type (Ed25519: TLS 1.3, and 1.2 where OpenSSL has it)
declare -A VERSIONS=(
    [rsa]="tls1_2 tls1_3" [rsa-pss]="tls1_2 tls1_3"
    [ec-p256]="tls1_2 tls1_3" [ec-p384]="tls1_2 tls1_3" [ed25519]="tls1_3 tls1_2"
)

# handshake PORT VERSION CERT: a plain s_client (default provider only)
# verifies the server against CERT and gets the -www page.
handshake() {
    local port=$1 version=$2 cert=$3 before after
    before=$(it_sign_count)
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 "$OPENSSL" s_client -brief -ign_eof \
        -connect "127.0.0.1:$port" -servername localhost "-$version" \
        -CAfile "$cert" -verify_return_error >"$T/client.out" 2>&1 \
        || { cat "$T/client.out" "$T/server.log" >&2; ihsm_fail "$kind $version: s_client failed"; }
    local want=TLSv1.3
    [ "$version" = tls1_2 ] && want=TLSv1.2
    grep -q "Protocol version: $want" "$T/client.out" \
        || { cat "$T/client.out" >&2; ihsm_fail "$kind $version: not a $want handshake"; }
    grep -q "Verification: OK" "$T/client.out" \
        || { cat "$T/client.out" >&2; ihsm_fail "$kind $version: certificate not verified"; }
    grep -q "HTTP/1.0 200 ok" "$T/client.out" \
        || { cat "$T/client.out" >&2; ihsm_fail "$kind $version: no page from s_server -www"; }
    after=$(it_sign_count)
    [ "$after" -gt "$before" ] \
        || ihsm_fail "$kind $version: the device made no signature ($before -> $after)"
}

for kind in rsa rsa-pss ec-p256 ec-p384 ed25519; do
    key="$T/$kind.pem" cert="$T/$kind.crt"
    # shellcheck disable=SC2086
    ok "$OPENSSL" genpkey $IT_PROVIDER_ARGS -propquery '?provider=ihsm' ${GEN[$kind]} -out "$key"
    grep -q -- "-----BEGIN IHSM MASKED KEY-----" "$key" || ihsm_fail "$kind: genpkey wrote no masked key"
    if grep -q "PRIVATE KEY" "$key"; then
        ihsm_fail "$kind: genpkey wrote a clear private key"
    fi

    # the public key read back through the decoder: a plain SPKI
    # shellcheck disable=SC2086
    ok "$OPENSSL" pkey $IT_PROVIDER_ARGS -in "$key" -pubout -out "$T/$kind.pub"
    "$OPENSSL" pkey -pubin -in "$T/$kind.pub" -noout || ihsm_fail "$kind: -pubout is no public key"
    # shellcheck disable=SC2086
    ok "$OPENSSL" pkey $IT_PROVIDER_ARGS -in "$key" -text -noout
    grep -q "held in ihsmd" "$T/out" || ihsm_fail "$kind: pkey -text does not say where the key is"

    md=-sha256
    [ "$kind" = ed25519 ] && md=
    # shellcheck disable=SC2086
    it_cert "$key" "$cert" $md
    "$OPENSSL" x509 -in "$cert" -noout -pubkey >"$T/$kind.certpub"
    it_pub_equal "$T/$kind.pub" "$T/$kind.certpub" || ihsm_fail "$kind: certificate key differs"
    "$OPENSSL" verify -CAfile "$cert" "$cert" >/dev/null || ihsm_fail "$kind: self-signature invalid"

    for mode in blocking async; do
        port=$(ihsm_free_port)
        extra=
        [ "$mode" = async ] && extra=-async
        # shellcheck disable=SC2086
        it_bg "$T/server.log" timeout 60 "$OPENSSL" s_server $IT_PROVIDER_ARGS $extra \
            -key "$key" -cert "$cert" -accept "127.0.0.1:$port" -www
        server=$BG_PID
        it_wait_line "$T/server.log" '^ACCEPT' "$server" \
            || { cat "$T/server.log" >&2; ihsm_fail "$kind $mode: s_server did not start"; }
        for v in ${VERSIONS[$kind]}; do
            handshake "$port" "$v" "$cert"
        done
        it_stop "$server"
        echo "ok: $kind $mode ${VERSIONS[$kind]}"
    done
done
