#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), fuzzes the YAML loaders briefly (scripts/fuzz.sh, 60 s
# by default: FUZZ_SECONDS; SKIP_FUZZ=1 leaves it out) and runs the test suite: the unit,
# integration, crash and package tiers (CTest labels). Ends with ctest's summary; exits non-zero when a
# test fails or the fuzz run found something (the tests run all the same).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Before the tests, so that ctest's summary stays last.
fuzz_status=0
if [ -z "${SKIP_FUZZ:-}" ]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-60} bash scripts/fuzz.sh || fuzz_status=$?
fi
cd "${BUILD_DIR:-build}"
if [ "$fuzz_status" -eq 0 ]; then
  exec ctest --output-on-failure -j2 -L 'unit|integration|crash|package'
fi
ctest --output-on-failure -j2 -L 'unit|integration|crash|package' || true
exit "$fuzz_status"
