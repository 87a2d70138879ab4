#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job on the embedded development
# broker: starts `streamrun broker`, runs the quickstart (produce, consume, commit, report)
# against it, and stops the broker.
#
#   DEMO_LISTEN=127.0.0.1:19092 scripts/demo.sh     # if port 9092 is taken
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bin="${BUILD_DIR:-build}/bin"
listen=${DEMO_LISTEN:-127.0.0.1:9092}

broker_out=$(mktemp)
"$bin/streamrun" broker --listen "$listen" --topic quickstart:4 >"$broker_out" &
broker_pid=$!
trap 'kill -TERM "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; rm -f "$broker_out"' EXIT

for _ in $(seq 1 300); do
  if grep -q ready "$broker_out"; then break; fi
  if ! kill -0 "$broker_pid" 2>/dev/null; then
    echo "demo: the development broker did not start (see the error above)" >&2
    exit 1
  fi
  sleep 0.1
done
grep ready "$broker_out" || { echo "demo: the broker did not become ready in 30 s" >&2; exit 1; }
bootstrap=$(grep ready "$broker_out" | awk '{print $NF}')

"$bin/streamrun-quickstart" --bootstrap "$bootstrap" --records "${DEMO_RECORDS:-5000}"
