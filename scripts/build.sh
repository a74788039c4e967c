#!/usr/bin/env bash
# Configures and builds ihsm into ./build (or $IHSM_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${IHSM_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=${IHSM_BUILD_TYPE:-RelWithDebInfo} ${IHSM_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
