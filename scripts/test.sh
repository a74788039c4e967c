#!/usr/bin/env bash
# The test command: installs what is needed, builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build=${IHSM_BUILD_DIR:-build}
cd "$build"
ctest --output-on-failure --timeout 600 -j"${IHSM_TEST_JOBS:-2}" "$@"
