#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the test suite: the unit, integration and crash
# tiers (CTest labels). Ends with ctest's summary; exits non-zero when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd "${BUILD_DIR:-build}"
exec ctest --output-on-failure -j2 -L 'unit|integration|crash'
