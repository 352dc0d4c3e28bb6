#!/usr/bin/env bash
# The README's HTTP API examples (the curl lines between its
# curl-examples-begin / -end markers), run against a fresh saedictd --demo
# on free loopback ports: each must answer 2xx with a JSON body.
# Usage: readme_curl_test.sh SAEDICTD README
set -euo pipefail
saedictd=$1
readme=$2
if ! command -v curl >/dev/null 2>&1; then
  echo "SKIPPED: curl not installed; the README's curl examples were not run"
  exit 77
fi
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
"$saedictd" --data_dir="$work/var" --dictionary_root="$work" --port=0 --metrics_port=-1 \
  --http_port=0 --http_port_file="$work/http_port" --port_file="$work/port" \
  >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ -s "$work/port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log"; echo "saedictd exited"; exit 1; }
  sleep 0.1
done
[ -s "$work/port" ] || { cat "$work/log"; echo "saedictd did not start"; exit 1; }
port=$(cat "$work/http_port")
mapfile -t examples < <(sed -n '/<!-- curl-examples-begin -->/,/<!-- curl-examples-end -->/p' \
  "$readme" | grep '^curl ')
[ ${#examples[@]} -ge 5 ] || { echo "found only ${#examples[@]} curl examples in $readme"; exit 1; }
failed=0
for example in "${examples[@]}"; do
  command=${example//localhost:8080/127.0.0.1:$port}
  command="curl -sS --fail-with-body ${command#curl }"
  if ! out=$(eval "$command"); then
    echo "FAILED: $example"$'\n'"  -> $out"
    failed=$((failed + 1))
    continue
  fi
  if ! printf '%s' "$out" | python3 -c 'import json, sys; json.load(sys.stdin)' 2>/dev/null; then
    echo "FAILED (not JSON): $example"$'\n'"  -> ${out:0:300}"
    failed=$((failed + 1))
    continue
  fi
  echo "ok: $example"
done
echo "$(( ${#examples[@]} - failed )) passed, $failed failed"
[ "$failed" -eq 0 ]
