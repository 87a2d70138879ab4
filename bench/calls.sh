#!/usr/bin/env bash
# Async call throughput (issue 20): the YAML `call` operator against the real seckill-orders
# service with 10 % slow calls (SLOW_MS, default 100 ms), at capacity 1 and at capacity 64, on the development
# broker (PARTITIONS, default 1: one task, whose capacity this is about). Prints calls/s for each and their ratio; the calls overlap when the
# ratio is far above 1 (goal: at least 20x). Results as they complete (ORDERED=true: in input
# order, where a window of 64 waits for its slowest call: about 64/(0.1 * 64) = 6.4x at most).
#
#   bench/calls.sh                          # 20,000 records at capacity 64, 1,000 at capacity 1
#   RECORDS=50000 RECORDS_ONE=5000 SLOW_MS=20 bench/calls.sh
#
# Needs a build (scripts/setup.sh) and kcat (installed by it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BUILD_DIR:-build}/bin
records=${RECORDS:-20000}
records_one=${RECORDS_ONE:-1000}
partitions=${PARTITIONS:-1}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/streamrun" broker --listen 127.0.0.1:0 --topic "decisions:$partitions" \
  --topic "confirmations:$partitions" --topic "confirmer-bench-dead-letter:$partitions" \
  >"$work/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do grep -q "; ready on " "$work/broker.log" && break; sleep 0.1; done
bootstrap=$(grep "; ready on " "$work/broker.log" | awk '{print $NF}')

"$bin/seckill-orders" --listen 127.0.0.1:0 --slow-share 0.1 --slow-ms "${SLOW_MS:-100}" >"$work/orders.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do grep -q "listening on" "$work/orders.log" && break; sleep 0.1; done
orders_url="http://$(grep -m1 "listening on" "$work/orders.log" | awk '{print $NF}')"

awk -v n="$records" 'BEGIN { for (i = 0; i < n; i++)
  printf "o-%d:{\"order_id\":\"o-%d\",\"user_id\":\"u-%d\",\"sku\":\"s\",\"decision\":\"accepted\"}\n", i, i, i }' |
  kcat -P -b "$bootstrap" -t decisions -K: -z zstd

calls() { curl -fsS "$orders_url/stats" | sed 's/.*"calls":\([0-9]*\).*/\1/'; }

# Runs the confirmer at capacity $1 until the service has seen $2 more calls; prints calls/s,
# timed from the first call of this run to the last.
measure() {
  local capacity=$1 count=$2
  cat >"$work/bench-$capacity.yaml" <<EOF
application: confirmer-bench-$capacity
properties:
  bootstrap.servers: $bootstrap
  errors.policy: dead_letter
  errors.dead.letter.topic: confirmer-bench-dead-letter
pipeline:
  - from: {topic: decisions}
  - call: {url: '$orders_url/confirmations', body: {order_id: value.order_id, user_id: value.user_id, sku: value.sku}, idempotency_key: value.order_id, into: confirmation, capacity: $capacity, ordered: ${ORDERED:-false}, timeout_ms: 5000}
  - to: {topic: confirmations}
EOF
  local before first=0 now done_at
  before=$(calls)
  "$bin/streamrun" "$work/bench-$capacity.yaml" --set consumer.session.timeout.ms=6000 \
    --set admin.timeout.ms=500 --set admin.listen=0 --set consumer.fetch.wait.max.ms=10 \
    --set "state.dir=$work/state-$capacity" >"$work/confirmer-$capacity.log" 2>&1 &
  local pid=$!
  local started
  while true; do
    now=$(calls)
    if [ "$first" = 0 ] && [ "$now" -gt "$before" ]; then
      first=$now
      started=$(date +%s.%N)
    fi
    if [ "$now" -ge $((before + count)) ]; then
      done_at=$(date +%s.%N)
      break
    fi
    kill -0 "$pid" 2>/dev/null || { tail "$work/confirmer-$capacity.log" >&2; exit 1; }
    sleep 0.05
  done
  kill -TERM "$pid"
  wait "$pid" || true
  awk -v n=$((now - first)) -v a="$started" -v b="$done_at" 'BEGIN { printf "%.0f\n", n / (b - a) }'
}

one=$(measure 1 "$records_one")
many=$(measure 64 "$records")
echo "calls/s at capacity 1: $one ($records_one calls)"
echo "calls/s at capacity 64: $many ($records calls)"
awk -v a="$one" -v b="$many" 'BEGIN { printf "ratio: %.1fx\n", b / a }'
