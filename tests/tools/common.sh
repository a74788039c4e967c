# Shared by the ihsmctl shell tests: the device fixture plus checks of
# exit status and message.
set -eu
: "${IHSM_SOURCE_DIR:?run through ctest (IHSM_SOURCE_DIR unset)}"
. "$IHSM_SOURCE_DIR/tests/lib/ihsmd.sh"
[ -x "$IHSMCTL" ] || ihsm_skip "no ihsmctl at $IHSMCTL: build it first"

# Start a device, or skip when it is not built (partial builds).
tools_device_start() {
    [ -x "$IHSMD" ] || ihsm_skip "no ihsmd at $IHSMD: build it first"
    ihsm_device_start
    # The fixture's stop is not written for set -e (kill -KILL of a pid that
    # already exited fails): run it without.
    trap 'set +e; ihsm_device_stop' EXIT
    T="$IHSM_SCRATCH"
}

# expect RC PATTERN CMD...: CMD exits RC and its stderr matches the
# extended regexp PATTERN (empty: no check). Output is in $T/out, $T/err.
expect() {
    _want=$1 _pat=$2
    shift 2
    set +e
    "$@" >"$T/out" 2>"$T/err"
    _rc=$?
    set -e
    if [ "$_rc" != "$_want" ]; then
        echo "--- stdout" >&2; cat "$T/out" >&2
        echo "--- stderr" >&2; cat "$T/err" >&2
        ihsm_fail "exit $_rc, expected $_want: $*"
    fi
    if [ -n "$_pat" ] && ! grep -Eq -- "$_pat" "$T/err"; then
        echo "--- stderr" >&2; cat "$T/err" >&2
        ihsm_fail "stderr does not match /$_pat/: $*"
    fi
}

ok() { expect 0 "" "$@"; }

# json FILE EXPR: evaluate a python expression over the JSON object j.
json() {
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# json_check FILE EXPR...: every python expression over the JSON object j
# is true (one interpreter for all of them).
json_check() {
    python3 - "$@" <<'PY' || { cat "$1" >&2; ihsm_fail "JSON check failed on $1"; }
import json, sys
j = json.load(open(sys.argv[1]))
for e in sys.argv[2:]:
    if not eval(e):
        sys.exit("not true: " + e)
PY
}
