#!/usr/bin/env bash
# Fuzzes the YAML loaders (dsl::load_pipeline and dsl::load_test_suite) with libFuzzer. Builds
# tests/fuzz/pipeline_loader_fuzz into build-fuzz/ with clang, ASan and UBSan (through
# scripts/setup.sh: apt packages, two jobs, that target only), re-runs the saved inputs of
# tests/fuzz/regressions/, then fuzzes for FUZZ_SECONDS from a corpus seeded with the example
# pipelines and their tests, the lint corpus and those regressions. docs/fuzzing.md explains.
#
#   scripts/fuzz.sh                                  # 60 s
#   FUZZ_SECONDS=600 scripts/fuzz.sh
#   FUZZ_SECONDS=0 scripts/fuzz.sh                   # only run the seeds and regressions once
#   FUZZ_CORPUS=$HOME/streamrun-corpus scripts/fuzz.sh   # keep the corpus between runs
#   FUZZ_SKIP_BUILD=1 FUZZ_ARGS="-seed=1" scripts/fuzz.sh
#
# Other settings: FUZZ_BUILD_DIR (build-fuzz), FUZZ_BUILD_TYPE (RelWithDebInfo),
# FUZZ_CMAKE_ARGS. The libFuzzer log is written to build-fuzz/fuzz.log.
#
# Exit status: non-zero when a regression input fails or the run finds a crash, leak, undefined
# behaviour, timeout (10 s) or out-of-memory (2 GB); the input is saved in
# build-fuzz/fuzz-artifacts/ and the command that reproduces it is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
read -r -a fuzz_args <<<"${FUZZ_ARGS:-}"

if [ -z "${FUZZ_SKIP_BUILD:-}" ]; then
  BUILD_DIR=$BUILD_DIR BUILD_TARGET=pipeline_loader_fuzz \
    CMAKE_BUILD_TYPE=${FUZZ_BUILD_TYPE:-RelWithDebInfo} \
    CMAKE_ARGS="-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DSTREAMRUN_FUZZ=ON \
                -DSTREAMRUN_BUILD_TESTS=OFF -DSTREAMRUN_BUILD_BENCH=OFF ${FUZZ_CMAKE_ARGS:-}" \
    bash scripts/setup.sh
fi

fuzzer=$BUILD_DIR/bin/pipeline_loader_fuzz
artifacts=$BUILD_DIR/fuzz-artifacts
log=$BUILD_DIR/fuzz.log
mkdir -p "$artifacts"
if [ ! -x "$fuzzer" ]; then
  echo "fuzz: $fuzzer was not built (STREAMRUN_FUZZ needs clang: see docs/fuzzing.md)" >&2
  exit 1
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# libFuzzer's out-of-memory report (-rss_limit_mb) starts with ASan's heap profile, which takes
# many minutes for a heap near 2 GB (a linear search per allocation) before the input is saved.
# ASan's hard limit, a little lower and checked every 100 ms, ends such a run first, at once,
# and libFuzzer still saves the input (crash-*). timeout(1) is the last guard against a hang.
export ASAN_OPTIONS="hard_rss_limit_mb=1900${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
guard=(timeout --kill-after=10)
reproduce="ASAN_OPTIONS=hard_rss_limit_mb=1900 $fuzzer -timeout=10"

# The essentials of a failed libFuzzer run's log: the report's own lines, and the frames of its
# stack traces that are in streamrun code (each function once: recursion shows as one frame).
print_failure() {
  awk '/^ALARM:|^terminate called|^  what\(\)|runtime error:|^SUMMARY:|^pipeline_loader_fuzz:/ ||
       /^==[0-9]+== *ERROR:|hard rss limit|leak of/ {
         print; next
       }
       /^ +#[0-9]+ / && /streamrun|tests\/fuzz/ {
         where = $0; sub(/^ +#[0-9]+ 0x[0-9a-f]+ in /, "", where)
         if (!(where in seen) && shown < 12) { print; shown++ }
         seen[where] = 1
       }' "$1" | cut -c1-240
}

# 1. The saved inputs that once failed, each run once.
regressions=()
failed=()
for input in tests/fuzz/regressions/*.yaml; do
  [ -f "$input" ] || continue
  if "${guard[@]}" 300 "$fuzzer" -timeout=10 -rss_limit_mb=2048 "$input" >"$log" 2>&1; then
    regressions+=("$input")
  else
    failed+=("$input")
    echo "fuzz: regression input $input fails:"
    print_failure "$log" | sed 's/^/    /'
    echo "fuzz: reproduce with: $reproduce $input"
  fi
done
echo "fuzz: tests/fuzz/regressions/: ${#regressions[@]} input(s) pass, ${#failed[@]} fail"

# 2. Fuzzing from the seeds (a failing regression would only stop it at once: left out).
corpus=${FUZZ_CORPUS:-}
if [ -z "$corpus" ]; then
  corpus=$(mktemp -d "${TMPDIR:-/tmp}/streamrun-fuzz-corpus.XXXXXX")
  trap 'rm -rf "$corpus"' EXIT
fi
mkdir -p "$corpus"
for seed in pipelines/*.yaml tests/unit/dsl/lint/*.yaml tests/unit/dsl/tests/*.yaml \
  "${regressions[@]}"; do
  cp "$seed" "$corpus/seed-${seed//\//-}"
done
if [ "$FUZZ_SECONDS" -gt 0 ]; then
  limit=(-max_total_time="$FUZZ_SECONDS")
  echo "fuzz: fuzzing the YAML loaders for $FUZZ_SECONDS s (log: $log)"
else
  limit=(-runs=0)
  echo "fuzz: running the seeds once (log: $log)"
fi
started=$SECONDS
status=0
"${guard[@]}" $((FUZZ_SECONDS + 600)) "$fuzzer" "${limit[@]}" -dict=tests/fuzz/yaml.dict \
  -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "${fuzz_args[@]}" "$corpus" >"$log" 2>&1 || status=$?

if [ "$status" -eq 0 ]; then
  # The last status line: executions, coverage (edges), features, corpus, speed.
  { grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log" || true; } | tail -1 | sed 's/^/fuzz: /'
  { grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
    "$log" || true; } | sed 's/^/fuzz: /'
  echo "fuzz: nothing found in $((SECONDS - started)) s"
else
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "fuzz: libFuzzer did not stop by itself: ended by timeout(1)"
  fi
  echo "fuzz: libFuzzer stopped after $((SECONDS - started)) s (exit status $status):"
  print_failure "$log" | sed 's/^/    /'
  input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  if [ -n "$input" ]; then
    echo "fuzz: the input is saved in $input"
    echo "fuzz: reproduce with: $reproduce $input"
    echo "fuzz: once understood, keep it as tests/fuzz/regressions/NAME.yaml (docs/fuzzing.md)"
  fi
fi
if [ ${#failed[@]} -gt 0 ] && [ "$status" -eq 0 ]; then
  status=1
fi
exit "$status"
