#!/usr/bin/env bash
# `streamrun FILE` on a terminal (a pty from script(1)) draws a live status line under its log;
# with stderr not a terminal it writes plain log lines only.
set -euo pipefail
streamrun=$1
pipeline=$2
work=$(mktemp -d /tmp/streamrun-status-line.XXXXXX)
broker_pid=""
trap '[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null; rm -rf "$work"' EXIT

topics=()
while IFS=$'\t' read -r topic _; do topics+=(--topic "$topic"); done \
  < <("$streamrun" topics "$pipeline" --partitions 2)
"$streamrun" broker --listen 127.0.0.1:0 --stop-with-parent "${topics[@]}" >"$work/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 1 300); do
  grep -q "; ready on " "$work/broker.log" && break
  sleep 0.1
done
bootstrap=$(grep "; ready on " "$work/broker.log" | awk '{print $NF}')
[ -n "$bootstrap" ] || { cat "$work/broker.log" >&2; echo "no broker" >&2; exit 1; }

run=("$streamrun" "$pipeline" --set "bootstrap.servers=$bootstrap" --set admin.timeout.ms=500
  --set consumer.session.timeout.ms=6000 --set admin.listen=0 --set "state.dir=$work/state")
# Two and a half seconds: the line is drawn every second.
timeout -s INT 2.5 script -qfec "$(printf '%q ' "${run[@]}")" /dev/null >"$work/tty.out" 2>&1 || true
if ! grep -q $'\r\033\\[Kstreamrun: [0-9]* records/s' "$work/tty.out"; then
  cat -v "$work/tty.out" >&2
  echo "no status line on the terminal" >&2
  exit 1
fi
timeout -s INT 2.5 "${run[@]}" >"$work/plain.out" 2>&1 || true
if grep -q "records/s" "$work/plain.out" || grep -q $'\033\\[K' "$work/plain.out"; then
  cat -v "$work/plain.out" >&2
  echo "a status line where stderr is not a terminal" >&2
  exit 1
fi
grep -q "application 'word-count' starting" "$work/plain.out" || {
  cat "$work/plain.out" >&2
  echo "no log lines without a terminal" >&2
  exit 1
}
echo "status line on a terminal, plain log lines otherwise"
