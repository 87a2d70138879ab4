#!/usr/bin/env bash
# Runs a command with a fresh seckill-orders service on a free loopback port, its base URL in
# ORDERS_URL (as pipelines/confirm-orders.yaml reads it); stops the service afterwards.
#   with_orders_service.sh SECKILL_ORDERS_BINARY COMMAND [ARGS...]
set -euo pipefail
service=$1
shift
out=$(mktemp)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
"$service" --listen 127.0.0.1:0 >"$out" 2>&1 &
pid=$!
for _ in $(seq 1 500); do
  address=$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$out")
  [ -n "$address" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$out" >&2; exit 1; }
  sleep 0.01
done
[ -n "$address" ] || { echo "seckill-orders did not start:" >&2; cat "$out" >&2; exit 1; }
ORDERS_URL="http://$address" "$@"
