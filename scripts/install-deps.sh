#!/usr/bin/env bash
# Installs what ihsm needs to build and test on Debian 12, and nothing when
# it is all there already. Needs root (or sudo).
set -euo pipefail

packages=(
    build-essential cmake pkg-config git
    libssl-dev openssl liburing-dev libnghttp2-dev libjemalloc-dev libcmocka-dev
    clang                      # libFuzzer targets
    nginx haproxy curl         # integration tests: real TLS servers and a client
    python3 procps iproute2
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}" >&2
# Packages such as nginx start their service on install; tests start their
# own instances on loopback, so keep the packaged ones from starting.
policy=/usr/sbin/policy-rc.d
own_policy=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    own_policy=1
fi
trap '[ -n "$own_policy" ] && $SUDO rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
