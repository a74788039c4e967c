# Shared by the key exchange tests (kex.sh, kex_nginx.sh, kex_haproxy.sh): openssl.cnf files
# that route libssl's ephemeral key exchange to ihsmd, and device counters.
# Sourced after common.sh.

# kex_cnf FILE ROUTE: like it_openssl_cnf, with `ihsm-route = ROUTE` and the
# default property that lets libssl find ihsm's EC/X25519 key management
# (docs/configuration.md, "Key exchange in the device"). With ROUTE "sign"
# the property stays, so the file differs from the routed one only in the
# route: the control.
kex_cnf() {
    cat >"$1" <<EOF
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
module = $IHSM_BUILD_DIR/lib/ihsm.so
activate = 1
ihsm-socket = $IHSM_SOCKET
ihsm-credential = $IHSM_CREDENTIAL
ihsm-route = $2
EOF
}

# kex_stat NAME: one counter of `ihsmctl stats --json` (no python per read).
kex_stat() {
    local n
    n=$("$IHSMCTL" stats --json | tr -d ' \n' | grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2)
    [ -n "$n" ] || ihsm_fail "ihsmctl stats --json has no \"$1\" counter"
    echo "$n"
}

# kex_settle NAME MAX: wait (2 s at most) until counter NAME is at most MAX,
# then print it: ephemeral keys are released without waiting for the answer.
kex_settle() {
    local v
    for _ in $(seq 1 40); do
        v=$(kex_stat "$1")
        [ "$v" -le "$2" ] && break
        sleep 0.05
    done
    kex_stat "$1"
}
