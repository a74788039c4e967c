# Shared by the AEAD tests: the integration fixture (a real ihsmd, helpers)
# plus openssl.cnf files with AEAD routed, and the device's aead counter.
. "$IHSM_SOURCE_DIR/tests/integration/common.sh"

# aead_cnf FILE ROUTE [MIN_SIZE [PREFER]]: it_openssl_cnf with ihsm-route,
# ihsm-aead-min-size and, when PREFER is "prefer", default_properties =
# ?ihsm.aead=yes (how libssl is pointed at the device's ciphers).
aead_cnf() {
    local f=$1 route=$2 min=${3:-} prefer=${4:-}
    it_openssl_cnf "$f"
    echo "ihsm-route = $route" >>"$f"
    [ -z "$min" ] || echo "ihsm-aead-min-size = $min" >>"$f"
    if [ "$prefer" = prefer ]; then
        # the section must come after openssl_init's keys: append both
        sed -i 's/^providers = provider_sect$/providers = provider_sect\nalg_section = algorithm_sect/' "$f"
        printf '\n[algorithm_sect]\ndefault_properties = ?ihsm.aead=yes\n' >>"$f"
    fi
}

# aead_count: the device's AEAD counter (seal and open together)
aead_count() {
    local n
    n=$("$IHSMCTL" stats --json | tr -d ' \n' | grep -o '"aead":[0-9]*' | head -n 1 | cut -d: -f2)
    [ -n "$n" ] || ihsm_fail "ihsmctl stats --json has no \"aead\" counter"
    echo "$n"
}

# keys_loaded: the device's gauge of loaded keys
keys_loaded() {
    local n
    n=$("$IHSMCTL" stats --json | tr -d ' \n' | grep -o '"keys_loaded":[0-9]*' | head -n 1 | cut -d: -f2)
    [ -n "$n" ] || ihsm_fail "ihsmctl stats --json has no \"keys_loaded\" counter"
    echo "$n"
}
