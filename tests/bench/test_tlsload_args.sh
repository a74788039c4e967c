#!/usr/bin/env bash
# Argument errors exit 2 with a sentence that says what was wrong.
set -u
. "$(dirname "$0")/lib.sh"

# expect_usage MESSAGE ARGS...: exit code 2 and MESSAGE on stderr.
expect_usage() {
    local msg=$1 rc
    shift
    "$TLSLOAD" "$@" >"$TL_SCRATCH/out" 2>"$TL_SCRATCH/err"
    rc=$?
    [ "$rc" -eq 2 ] || { cat "$TL_SCRATCH/err" >&2; tl_fail "'$*' exited $rc, not 2"; }
    grep -qF -- "$msg" "$TL_SCRATCH/err" || { cat "$TL_SCRATCH/err" >&2; tl_fail "'$*' did not say '$msg'"; }
    [ -s "$TL_SCRATCH/out" ] && tl_fail "'$*' printed on stdout"
    return 0
}

expect_usage "unknown mode 'flood': use 'handshake' or 'h2'" flood --connect 127.0.0.1:1
expect_usage "usage: ihsm-tlsload handshake" flood --connect 127.0.0.1:1
expect_usage "missing mode" 
expect_usage "missing --connect HOST:PORT" handshake --count 5
expect_usage "--count and --duration are both 0" handshake --connect 127.0.0.1:1 --count 0 --duration 0
expect_usage "--duration 3601 is out of range" handshake --connect 127.0.0.1:1 --duration 3601
expect_usage "--tls wants 1.2 or 1.3, not '1.1'" handshake --connect 127.0.0.1:1 --tls 1.1
expect_usage "unknown option '--bogus'" handshake --connect 127.0.0.1:1 --bogus
expect_usage "--streams is for h2 mode" handshake --connect 127.0.0.1:1 --streams 4
expect_usage "--cafile and --insecure contradict" handshake --connect 127.0.0.1:1 --cafile x --insecure
expect_usage "has no port" handshake --connect 127.0.0.1
# Never load anything but this machine unless told to.
expect_usage "refusing to load 192.0.2.1:443 (192.0.2.1): not a loopback address" \
    handshake --connect 192.0.2.1:443 --count 1
expect_usage "refusing to load [2001:db8::1]:443" h2 --connect '[2001:db8::1]:443' --count 1

# Loopback in any spelling passes the rule; with nothing listening it is
# exit 1 and says so.
port=$(tl_free_port)
for target in "127.0.0.1:$port" "localhost:$port" "127.3.4.5:$port"; do
    "$TLSLOAD" handshake --connect "$target" --count 1 >/dev/null 2>"$TL_SCRATCH/err"
    rc=$?
    [ "$rc" -eq 1 ] || { cat "$TL_SCRATCH/err" >&2; tl_fail "$target with nothing listening exited $rc, not 1"; }
    grep -qF "nothing listens on $target" "$TL_SCRATCH/err" ||
        { cat "$TL_SCRATCH/err" >&2; tl_fail "$target: no 'nothing listens' message"; }
done

"$TLSLOAD" --help | grep -q -- "--concurrency C" || tl_fail "--help does not show the options"
echo "PASS: ihsm-tlsload argument checks"
