#!/usr/bin/env bash
# The main job: the flash-sale ("seckill") demo on the embedded development broker
# (docs/seckill.md). Installs and builds (scripts/setup.sh), starts `streamrun broker` with every
# topic the pipeline needs, loads the stock, starts the inventory pipeline, fires a burst of
# orders at it, waits until every order is decided, runs the checker (its table and invariants
# are the demo's result) and stops everything it started, also on Ctrl-C. Exit status: the
# checker's (0 when every invariant holds).
#
#   scripts/demo.sh                    # the C++ app (apps/seckill), 500,000 orders
#   scripts/demo.sh --yaml             # the same with pipelines/inventory.yaml
#   scripts/demo.sh --orders 200000 --rate 0 --hot-share 0.9
#   scripts/demo.sh --chaos-orders     # the order service goes down for 20 s during the burst
#   DEMO_LISTEN=127.0.0.1:19092 scripts/demo.sh   # if port 9092 is taken
#
# Every accepted order is also confirmed with the order service (seckill-orders) over HTTP by a
# second pipeline, pipelines/confirm-orders.yaml (docs/external-calls.md). The inventory
# pipeline also counts orders and sales per SKU and second into `sales-rate` (docs/time.md; with
# --yaml, which has no such step, pipelines/sales-rate.yaml does, beside it); the checker waits
# for the confirmations and the sales rates too, and shows the sell-through.
#
# Options: --yaml, --orders N, --rate R (orders/s, 0: as fast as possible), --skus N,
# --hot-share S, --malformed-share S, --partitions N (of every topic; default 16),
# --chaos-orders (the order service fails every call for 20 s, starting 1 s into the burst).
set -euo pipefail
cd "$(dirname "$0")/.."

yaml=false
chaos_orders=false
orders=500000
# The development broker keeps about 5 MiB or 100k batches per partition and deletes older ones
# (the pipeline logs it as an error: records lost), and every order of the hot SKU goes through
# one partition of the repartition topic: the burst comes at 20k orders/s, so that the backlog of
# the hot SKU stays within what the broker keeps while the confirmer's calls share the machine
# (on the 2-core development machine 30k/s already loses some; docs/seckill.md). A real cluster
# keeps what it is configured to: use --rate 0 there.
rate=20000
skus=100
hot_share=0.5
malformed_share=0.01
partitions=16
while [ $# -gt 0 ]; do
  case "$1" in
    --yaml) yaml=true ;;
    --chaos-orders) chaos_orders=true ;;
    --orders | --rate | --skus | --hot-share | --malformed-share | --partitions)
      if [ $# -lt 2 ]; then
        echo "demo: $1 needs a value" >&2
        exit 2
      fi
      case "$1" in
        --orders) orders=$2 ;;
        --rate) rate=$2 ;;
        --skus) skus=$2 ;;
        --hot-share) hot_share=$2 ;;
        --malformed-share) malformed_share=$2 ;;
        --partitions) partitions=$2 ;;
      esac
      shift
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "demo: unknown option '$1' (see scripts/demo.sh --help)" >&2
      exit 2
      ;;
  esac
  shift
done

# Checked here, before anything is built or started.
check() {
  local name=$1 value=$2 pattern=$3 what=$4
  if ! [[ $value =~ $pattern ]]; then
    echo "demo: $name must be $what (got '$value'; see scripts/demo.sh --help)" >&2
    exit 2
  fi
}
# A whole number within [low, high] (the limits of the programs the value goes to).
check_count() {
  local name=$1 value=$2 low=$3 high=$4 what=$5
  check "$name" "$value" '^[0-9]{1,10}$' "$what from $low to $high"
  if ((10#$value < low || 10#$value > high)); then
    echo "demo: $name must be $what from $low to $high (got '$value'; see scripts/demo.sh --help)" >&2
    exit 2
  fi
}
share='^(0|0?\.[0-9]+|1|1\.0*)$'
check_count --orders "$orders" 0 1000000000 "a whole number"
check_count --rate "$rate" 0 1000000000 "a whole number of orders/s (0: as fast as possible)"
check_count --skus "$skus" 1 1000000 "a whole number"
check_count --partitions "$partitions" 1 10000 "a whole number"
check --hot-share "$hot_share" "$share" "a share between 0 and 1"
check --malformed-share "$malformed_share" "$share" "a share between 0 and 1"

scripts/setup.sh
bin="${BUILD_DIR:-build}/bin"
listen=${DEMO_LISTEN:-127.0.0.1:9092}
work=$(mktemp -d)
broker_pid=""
pipeline_pid=""
orders_pid=""
confirmer_pid=""
rater_pid=""

stop() {
  local pid=$1 name=$2
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "demo: $name did not stop within 60 s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  # The pipelines first: they commit while the broker is still there.
  stop "$rater_pid" "the sales-rate pipeline"
  stop "$confirmer_pid" "the confirmer"
  stop "$pipeline_pid" "the pipeline"
  stop "$orders_pid" "the order service"
  stop "$broker_pid" "the broker"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if $yaml; then
  pipeline_name="pipelines/inventory.yaml"
  topics=$("$bin/streamrun" topics pipelines/inventory.yaml --partitions "$partitions")
  dead_letter=inventory-dead-letter
else
  pipeline_name="seckill-inventory (apps/seckill)"
  topics=$("$bin/seckill-inventory" --topics "$partitions")
  dead_letter=seckill-dead-letter
fi
# The confirmer's and the sales-rate pipeline's topics too (`decisions` is listed by all).
topics+=$'\n'$("$bin/streamrun" topics pipelines/confirm-orders.yaml --partitions "$partitions")
if $yaml; then
  topics+=$'\n'$("$bin/streamrun" topics pipelines/sales-rate.yaml --partitions "$partitions")
fi
topic_args=()
while IFS=$'\t' read -r topic _; do
  topic_args+=(--topic "$topic")
done < <(sort -u -t $'\t' -k1,1 <<<"$topics")

echo "demo: starting the development broker on $listen"
"$bin/streamrun" broker --listen "$listen" "${topic_args[@]}" >"$work/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 1 300); do
  if grep -q "; ready on " "$work/broker.log"; then break; fi
  if ! kill -0 "$broker_pid" 2>/dev/null; then
    cat "$work/broker.log" >&2
    echo "demo: the development broker did not start (see above)" >&2
    exit 1
  fi
  sleep 0.1
done
grep -q "; ready on " "$work/broker.log" || {
  echo "demo: the broker did not become ready in 30 s" >&2
  exit 1
}
bootstrap=$(grep "; ready on " "$work/broker.log" | awk '{print $NF}')

# Small JSON documents in bursts: zstd keeps the most of them within the broker's cap.
"$bin/seckill-load" --bootstrap "$bootstrap" --orders 0 --skus "$skus" --set compression.type=zstd

# Settings for the development broker: it has no Admin API (the topics exist already), holds a
# group's join for its session timeout, and answers a fetch that finds no new record only after
# the whole fetch.wait.max.ms (Kafka answers as soon as records arrive; docs/seckill.md).
dev_settings=(--set consumer.session.timeout.ms=6000 --set admin.timeout.ms=500
  --set consumer.fetch.wait.max.ms=10 --set "state.dir=$work/state")
echo "demo: starting the inventory pipeline: $pipeline_name (log, while the demo runs: $work/pipeline.log)"
if $yaml; then
  "$bin/streamrun" pipelines/inventory.yaml --set "bootstrap.servers=$bootstrap" \
    "${dev_settings[@]}" >"$work/pipeline.log" 2>&1 &
else
  "$bin/seckill-inventory" --bootstrap "$bootstrap" "${dev_settings[@]}" \
    >"$work/pipeline.log" 2>&1 &
fi
pipeline_pid=$!
# Ready once its group has handed out every partition of `topic` (the log says so per task).
wait_for_tasks() {
  local pid=$1 log=$2 topic=$3 name=$4 started=0
  for _ in $(seq 1 600); do
    started=$(grep -c "started for $topic\[" "$log" || true)
    if [ "$started" -ge "$partitions" ]; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$log" >&2
      echo "demo: $name stopped (see above)" >&2
      exit 1
    fi
    sleep 0.1
  done
  tail -20 "$log" >&2
  echo "demo: $name did not take all $partitions partitions of $topic within 60 s" >&2
  exit 1
}
wait_for_tasks "$pipeline_pid" "$work/pipeline.log" orders "the pipeline"

# The order service, and the pipeline that confirms every accepted order with it over HTTP.
# Both run at a lower CPU priority than the inventory pipeline: on a small machine that runs
# everything, the 100,000-odd HTTP calls early in the burst (the stock sells out within seconds)
# would otherwise take the cores the decisions need, and the hot SKU's backlog would outgrow
# what the development broker keeps. Confirmations wait; decisions do not. (In production they
# run on machines of their own.)
nice -n 10 "$bin/seckill-orders" --listen "${DEMO_ORDERS_LISTEN:-127.0.0.1:0}" >"$work/orders.log" 2>&1 &
orders_pid=$!
for _ in $(seq 1 300); do
  if grep -q "listening on" "$work/orders.log"; then break; fi
  sleep 0.1
done
orders_url="http://$(grep -m1 "listening on" "$work/orders.log" | awk '{print $NF}')"
echo "demo: starting the confirmer: pipelines/confirm-orders.yaml, calling $orders_url"
ORDERS_URL=$orders_url nice -n 10 "$bin/streamrun" pipelines/confirm-orders.yaml \
  --set "bootstrap.servers=$bootstrap" --set consumer.session.timeout.ms=6000 \
  --set admin.timeout.ms=500 --set consumer.fetch.wait.max.ms=10 \
  --set "state.dir=$work/confirmer-state" --set admin.listen=127.0.0.1:0 \
  >"$work/confirmer.log" 2>&1 &
confirmer_pid=$!
wait_for_tasks "$confirmer_pid" "$work/confirmer.log" decisions "the confirmer"

if $yaml; then
  # YAML pipelines have one output: the sales per SKU and second come from a pipeline of their
  # own, pipelines/sales-rate.yaml, which reads `decisions` as they come. (Started later, it
  # would read them as a backlog, faster than it can count them: the hot SKU's share would
  # outgrow what the development broker keeps of its repartition topic.)
  nice -n 5 "$bin/streamrun" pipelines/sales-rate.yaml --set "bootstrap.servers=$bootstrap" \
    --set consumer.session.timeout.ms=6000 --set admin.timeout.ms=500 \
    --set consumer.fetch.wait.max.ms=10 --set "state.dir=$work/rater-state" \
    --set admin.listen=127.0.0.1:0 >"$work/rater.log" 2>&1 &
  rater_pid=$!
  wait_for_tasks "$rater_pid" "$work/rater.log" decisions "the sales-rate pipeline"
  echo "demo: started pipelines/sales-rate.yaml (log, while the demo runs: $work/rater.log)"
fi

if $chaos_orders; then
  # Accepted orders come early in the burst (the stock sells out first): the outage starts 1 s
  # in, so that the calls for them meet it.
  (
    sleep 1
    if curl -fsS -X POST "$orders_url/chaos" -d '{"down_for_ms": 20000}' >/dev/null; then
      echo "demo: the order service fails every call for 20 s from now (--chaos-orders)"
    fi
  ) &
fi
"$bin/seckill-load" --bootstrap "$bootstrap" --no-stock --orders "$orders" --rate "$rate" \
  --skus "$skus" --hot-share "$hot_share" --malformed-share "$malformed_share" \
  --set compression.type=zstd
echo "demo: checking (waits until every order is decided)"
status=0
nice -n 10 "$bin/seckill-check" --bootstrap "$bootstrap" --dead-letter "$dead_letter" --wait 1800 \
  --idle 120 --confirmations confirmations --confirm-dead-letter confirmer-dead-letter \
  --sales-rate sales-rate ||
  status=$?
# What the confirmer's circuit breaker went through, from its /metrics.
confirmer_admin=$(grep -o "admin endpoint on http://[0-9.:]*" "$work/confirmer.log" | awk '{print $NF}')
if [ -n "$confirmer_admin" ]; then
  metrics=$(curl -fsS "$confirmer_admin/metrics" || true)
  opened=$(grep -o 'streamrun_call_breaker_transitions_total{[^}]*to="open"} [0-9]*' <<<"$metrics" | awk '{print $NF}')
  closed=$(grep -o 'streamrun_call_breaker_transitions_total{[^}]*to="closed"} [0-9]*' <<<"$metrics" | awk '{print $NF}')
  echo "demo: order service: $(curl -fsS "$orders_url/stats" || echo unreachable);" \
    "the confirmer's breaker opened ${opened:-0} and closed ${closed:-0} times"
fi
if [ -n "$rater_pid" ] && ! kill -0 "$rater_pid" 2>/dev/null; then
  echo "demo: the sales-rate pipeline had stopped; its log:" >&2
  tail -20 "$work/rater.log" >&2
fi
if ! kill -0 "$confirmer_pid" 2>/dev/null; then
  echo "demo: the confirmer had stopped; its log:" >&2
  tail -20 "$work/confirmer.log" >&2
fi
# Records the broker deleted before the pipeline read them (its retention is shorter than the
# backlog) are logged as errors: say so, since they show up above as undecided orders.
for log in "$work/pipeline.log" "$work/rater.log"; do
  if [ -f "$log" ] && grep -q "librdkafka OFFSET" "$log"; then
    echo "demo: the broker deleted records before a pipeline read them ($(basename "$log")):" >&2
    grep "librdkafka OFFSET" "$log" | head -3 >&2
    echo "demo: the hot SKU's backlog outgrew what the development broker keeps: try a lower --rate" >&2
  fi
done
if ! kill -0 "$pipeline_pid" 2>/dev/null; then
  echo "demo: the pipeline had stopped; its log:" >&2
  tail -20 "$work/pipeline.log" >&2
fi
exit "$status"
