#!/usr/bin/env bash
# Installs what bench/scenarios needs beyond scripts/install-deps.sh, and
# nothing when it is all there already. Needs root (or sudo).
#
#   softhsm2, p11-kit, p11-kit-modules   the peer: keys in SoftHSM2, in process
#                                        or behind `p11-kit server`
#   libengine-pkcs11-openssl             the OpenSSL engine nginx 1.22 loads
#                                        them through (engine:pkcs11:...)
#   opensc                               pkcs11-tool, to make the SoftHSM2 keys
#   gnuplot-nox                          the chart
#   linux-perf                           profiles for docs/performance.md
#
# `install-bench-deps.sh PACKAGE...` installs only those (bench/scenarios asks
# for what the rows it runs need, so a quick run does not wait for apt).
# Exit 0 when everything is installed; 1 (with the reason on stderr) when
# apt-get failed. bench/scenarios then runs the rows that do not need the
# missing parts and says why the others are missing.
set -euo pipefail

packages=(
    softhsm2 p11-kit p11-kit-modules libengine-pkcs11-openssl opensc
    gnuplot-nox linux-perf
)
if [ $# -gt 0 ]; then
    for p in "$@"; do
        case " ${packages[*]} " in
            *" $p "*) ;;
            *) echo "install-bench-deps: $p is not one of: ${packages[*]}" >&2; exit 2 ;;
        esac
    done
    packages=("$@")
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-bench-deps: not root and no sudo: cannot install ${missing[*]}" >&2; exit 1; }
    SUDO="sudo -n"
fi
echo "install-bench-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Update the lists only when a package has no candidate yet (a fresh machine).
if apt-cache policy "${missing[@]}" 2>/dev/null | grep -q 'Candidate: (none)' \
   || ! apt-cache show "${missing[0]}" >/dev/null 2>&1; then
    $SUDO apt-get update -qq || { echo "install-bench-deps: apt-get update failed" >&2; exit 1; }
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "install-bench-deps: apt-get install ${missing[*]} failed" >&2
    exit 1
fi
