# Shared by the provider's shell tests: a device, a scratch dir, helpers.
set -u
. "$IHSM_SOURCE_DIR/tests/lib/ihsmd.sh"
command -v openssl >/dev/null 2>&1 || ihsm_skip "no openssl CLI"
[ -f "$IHSM_BUILD_DIR/lib/ihsm.so" ] || ihsm_fail "no ihsm.so in $IHSM_BUILD_DIR/lib: build first"
ihsm_device_start
cd "$IHSM_SCRATCH" || ihsm_fail "cd $IHSM_SCRATCH"

# Through the provider: default first (the recommended order, so that
# libssl's and the CLI's own key work stays in process), ihsm for our keys.
PROV="-provider-path $IHSM_BUILD_DIR/lib -provider default -provider ihsm"
# Generation in the device is asked for explicitly.
GENPKEY="openssl genpkey $PROV -propquery provider=ihsm"
# Only the default provider, no configuration that could load ihsm.
plain_openssl() { OPENSSL_CONF=/dev/null openssl "$@"; }

echo "keys held in ihsmd sign for nginx and HAProxy" >msg

# gen NAME genpkey-args...: a masked key file NAME.pem and its public key NAME.pub
gen() {
    _n=$1
    shift
    $GENPKEY "$@" -out "$_n.pem" 2>"$_n.err" || { cat "$_n.err" >&2; ihsm_fail "genpkey $_n $*"; }
    grep -q -- "-----BEGIN IHSM MASKED KEY-----" "$_n.pem" || ihsm_fail "$_n.pem is not a masked key file"
    grep -q "PRIVATE KEY" "$_n.pem" && ihsm_fail "$_n.pem holds a clear private key"
    openssl pkey $PROV -in "$_n.pem" -pubout -out "$_n.pub" 2>"$_n.err" \
        || { cat "$_n.err" >&2; ihsm_fail "public key of $_n"; }
    grep -q -- "-----BEGIN PUBLIC KEY-----" "$_n.pub" || ihsm_fail "$_n.pub is not a public key"
}
