#!/usr/bin/env bash
# Builds the ThreadSanitizer configuration into build-tsan/ (two jobs, via scripts/setup.sh) and
# runs test tiers under it, collecting every TSan report of every process (tests and the apps
# they start) in build-tsan/tsan-reports/, then prints a summary. docs/sanitizers.md explains.
#
#   scripts/sanitize.sh                     # unit, integration and crash tiers
#   scripts/sanitize.sh unit                # one tier
#   CTEST_ARGS="-R poison" scripts/sanitize.sh integration
#   SKIP_BUILD=1 scripts/sanitize.sh unit   # reuse the existing build
#
# Exit status: non-zero if a test failed or any TSan report was written.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build-tsan}
CTEST_JOBS=${CTEST_JOBS:-2}
read -r -a ctest_args <<<"${CTEST_ARGS:-}"
labels=("$@")
if [ ${#labels[@]} -eq 0 ]; then labels=(unit integration crash); fi

if [ -z "${SKIP_BUILD:-}" ]; then
  BUILD_DIR=$BUILD_DIR \
    CMAKE_ARGS="-DSTREAMRUN_SANITIZE=thread -DSTREAMRUN_BUILD_BENCH=OFF ${CMAKE_ARGS:-}" \
    bash scripts/setup.sh
fi

reports="$PWD/$BUILD_DIR/tsan-reports"
rm -rf "$reports"
mkdir -p "$reports"

status=0
for label in "${labels[@]}"; do
  mkdir -p "$reports/$label"
  echo "sanitize: ctest -L $label under ThreadSanitizer (reports in $reports/$label)"
  # log_path: each process writes its reports to <path>.<pid>; a process with reports still
  # exits with TSan's exit code (66), so its test fails. Options given in TSAN_OPTIONS are
  # kept; the defaults and suppressions are compiled in (framework/runtime/src/tsan_support.cc).
  if ! TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$reports/$label/tsan" \
    ctest --test-dir "$BUILD_DIR" -L "^${label}\$" -j "$CTEST_JOBS" --output-on-failure \
    "${ctest_args[@]}"; then
    status=1
  fi
done

echo
echo "sanitize: TSan reports per tier"
for label in "${labels[@]}"; do
  count=$(cat "$reports/$label"/tsan.* 2>/dev/null | grep -c '^WARNING: ThreadSanitizer' || true)
  echo "  $label: $count report(s) in $(find "$reports/$label" -name 'tsan.*' | wc -l) process(es)"
  if [ "$count" -gt 0 ]; then
    status=1
    # Kind of report and where TSan places it (its SUMMARY line), most frequent first.
    cat "$reports/$label"/tsan.* | grep -h '^SUMMARY: ThreadSanitizer' |
      sed -e 's/^SUMMARY: ThreadSanitizer: /    /' -e 's/(pid=[0-9]*)//' |
      sort | uniq -c | sort -rn | head -40
  fi
done
exit $status
