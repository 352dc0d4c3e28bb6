#!/usr/bin/env bash
# Runs the corpus benchmark (bench/ingest_bench.cc) and prints its report:
#   1. Ingest tokens/s end to end (client -> gRPC -> encode -> RocksDB, synced
#      WAL) next to Encode RPCs alone on the same batches, ratio ingest/encode;
#      target >= 150k tokens/s for the small (stories260k topk_l2_a) SAE.
#   2. Bytes on disk per stored token against the raw sparse size
#      nnz x (4 + 2) bytes, f32 and f16 value precision; target <= 1.3x.
#   3. GetFeature / TopActivations latency at ~1M stored tokens;
#      targets p99 <= 3 ms for GetFeature and TopActivations, <= 5 ms for
#      TopActivations with 4 quantile bins.
# The last line of stdout is the JSON report (also kept in OUT_DIR).
#
# Usage: bench/run_ingest_bench.sh [ingest_bench flags, e.g. --repeat=4
#          --batch_tokens=8192 --large_tokens=16384 --query_tokens=1000000
#          --queries=2000 --precisions=f32,f16 --cases=small,large,query]
#        bench/run_ingest_bench.sh --help     (all flags)
# Environment: BUILD_DIR (default build, the dev.sh build; relative to the repo root),
#   SAEDICT_SHARED_DATA (default ../shared/data relative to the repo root; without
#   it the small cases fall back to a random 64x512 k=16 SAE and say so),
#   OUT_DIR (default: a fresh temporary directory), NO_BUILD=1 to skip the build,
#   JOBS (ninja -j, default 2).
# The machine should be otherwise idle: the report prints the load average.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/saedict-ingest-bench.XXXXXX)}"
JOBS="${JOBS:-2}"
export SAEDICT_SHARED_DATA="${SAEDICT_SHARED_DATA:-$ROOT/../shared/data}"

for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,23p' "$0"; echo; ;;
  esac
done

if [[ "${NO_BUILD:-0}" != 1 ]]; then
  if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  ninja -C "$BUILD_DIR" -j"$JOBS" ingest_bench >&2
fi
BENCH="$BUILD_DIR/bench/ingest_bench"
if [[ ! -x "$BENCH" ]]; then
  echo "missing $BENCH; build it: ninja -C $BUILD_DIR ingest_bench" >&2
  exit 1
fi
mkdir -p "$OUT_DIR"
echo "results in $OUT_DIR; load average now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "reproduce: BUILD_DIR=$BUILD_DIR SAEDICT_SHARED_DATA=$SAEDICT_SHARED_DATA" \
  "bash bench/run_ingest_bench.sh $*" >&2

cd "$ROOT"
"$BENCH" --json="$OUT_DIR/ingest.json" "$@" 2>"$OUT_DIR/ingest_bench.stderr" \
  | tee "$OUT_DIR/ingest.txt" || {
  rc=$?
  echo "ingest_bench failed (rc $rc); its stderr:" >&2
  tail -40 "$OUT_DIR/ingest_bench.stderr" >&2
  exit "$rc"
}
echo "reproduce: BUILD_DIR=$BUILD_DIR SAEDICT_SHARED_DATA=$SAEDICT_SHARED_DATA" \
  "bash bench/run_ingest_bench.sh $*"
