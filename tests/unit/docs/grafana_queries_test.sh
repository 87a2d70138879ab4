#!/usr/bin/env bash
# Every query of docs/grafana/streamrun.json parses as PromQL (promtool, from Debian's
# prometheus package), with the dashboard's $application variable in place.
set -euo pipefail
dashboard=$1
rules=$(mktemp /tmp/grafana-queries.XXXXXX.yml)
trap 'rm -f "$rules"' EXIT
printf 'groups:\n- name: dashboard\n  rules:\n' >"$rules"
count=0
while IFS= read -r expr; do
  count=$((count + 1))
  # JSON's \" back to ", the variable to a regex; YAML single quotes hold the rest as it is.
  expr=${expr//\\\"/\"}
  expr=${expr//\$application/.*}
  printf "  - record: query_%d\n    expr: '%s'\n" "$count" "${expr//\'/\'\'}" >>"$rules"
done < <(grep -o '"expr": "\([^"\\]\|\\.\)*"' "$dashboard" | sed 's/^"expr": "//; s/"$//')
[ "$count" -gt 0 ] || { echo "no queries found in $dashboard" >&2; exit 1; }
promtool check rules "$rules"
echo "$count queries parse"
