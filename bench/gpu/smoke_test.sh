#!/usr/bin/env bash
# Smoke test of gpu_encode_bench, run by ctest everywhere: --help and bad
# flags answer as documented; a tiny in-process run either measures (a CUDA
# device is here) or says there is no device and exits 3; and the worker
# protocol path (--only_worker=true) measures a real saedict-worker with the
# CPU backend on a loopback port.
# Usage: smoke_test.sh PATH/TO/gpu_encode_bench PATH/TO/saedict-worker
set -uo pipefail
bench="$1"
worker_bin="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }
"$bench" --help | grep -q -- "--worker=HOST:PORT" || fail "--help does not print the usage"
out="$("$bench" --bogus=1 2>&1)"; rc=$?
[[ $rc -eq 2 && "$out" == *"unknown flag --bogus"* ]] || fail "--bogus=1: exit $rc, '$out'"
out="$("$bench" --reps=0 2>&1)"; rc=$?
[[ $rc -eq 2 && "$out" == *"reps"* ]] || fail "--reps=0: exit $rc, '$out'"
json="$(mktemp)"
out="$("$bench" --tokens=64 --reps=1 --warmup=0 --check_rows=8 --shape=2304x16384_k64 \
  --json="$json" 2>&1)"; rc=$?
if [[ $rc -eq 3 ]]; then
  [[ "$out" == *"no CUDA device"* ]] || fail "exit 3 without saying why: '$out'"
  echo "no CUDA device here: the tiny run was refused as documented (exit 3)"
else
  [[ $rc -eq 0 ]] || fail "tiny run: exit $rc, '$out'"
  grep -q '"cuda_bf16"' "$json" || fail "tiny run wrote no cuda_bf16 figure"
  echo "tiny run on the GPU: $(cat "$json")"
fi

dir="$(mktemp -d)"
"$worker_bin" --backend=cpu --port=0 --port_file="$dir/port" --cache_dir="$dir/cache" \
  --metrics_port=-1 2>"$dir/log" &
worker=$!
trap 'kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null; rm -rf "$dir" "$json"' EXIT
for _ in $(seq 100); do [[ -s "$dir/port" ]] && break; sleep 0.1; done
[[ -s "$dir/port" ]] || fail "saedict-worker did not start: $(cat "$dir/log")"
out="$("$bench" --only_worker=true --worker="127.0.0.1:$(cat "$dir/port")" --worker_mode=f32 \
  --shape=64x512x8 --tokens=256 --worker_rows=64 --worker_calls=2 --reps=2 --warmup=1 \
  --json="$json" 2>&1)"; rc=$?
[[ $rc -eq 0 ]] || fail "--only_worker run: exit $rc, '$out'"
grep -q '"worker_f32": {"tokens_per_s": [0-9]' "$json" || fail "no worker figure: $(cat "$json")"
echo "worker protocol, CPU backend: $(cat "$json")"
echo "ok"
