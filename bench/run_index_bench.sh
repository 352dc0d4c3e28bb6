#!/usr/bin/env bash
# Runs the feature-index benchmark (bench/index_bench.cc) and prints its report:
#   1. Neighbour precompute (PrecomputeNeighbours, top_n=32) on the exact Flat
#      index of 16384 x 2304 random-normal directions next to the GEMM alone
#      (cblas_sgemm of the unit rows against themselves, same blocks); target
#      precompute / GEMM <= 1.3x.
#   2. Single-vector FeatureIndex::Search p50/p99 and recall@10 (brute force,
#      float64 cosine) next to one cblas_sgemv over the same float32 rows:
#      (a) exact Flat, 16384 x 2304 random-normal; target p50 <= 5 ms;
#      (b) approximate (IVF1024,Flat by default; --approx_factory=auto is
#          IVF2048,Flat), 262144 x 768 clustered directions, an nprobe sweep;
#          target p50 <= 5 ms at recall@10 >= 0.95.
#   3. FeatureIndex::Build time and memory_bytes() for both.
# Every figure is printed next to its reference, with the CPU model and the
# load average. The last line of stdout is the JSON report (also in OUT_DIR).
#
# Usage: bench/run_index_bench.sh [index_bench flags, e.g. --cases=precompute,exact,approx
#          --queries=200 --precompute_rows=16384 --approx_factory=auto
#          --ivf_nprobe=1,4,16,64 --clusters=4096 --spread=0.4]
#        bench/run_index_bench.sh --help     (all flags)
# Environment: BUILD_DIR (default build, the dev.sh build; relative to the repo root),
#   OUT_DIR (default: a fresh temporary directory), NO_BUILD=1 to skip the build,
#   JOBS (ninja -j, default 2). OPENBLAS_CORETYPE passes through (OpenBLAS 0.3.21
#   falls back to SSE3 "Prescott" kernels on CPUs it does not know; the report says so).
# A default run takes ~6-10 minutes on 2 cores, depending on the load (most of it
# the full 16384 x 16384 x 2304 precompute, twice, and the IVF training).
# The machine should be otherwise idle: the report prints the load average.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/saedict-index-bench.XXXXXX)}"
JOBS="${JOBS:-2}"

for arg in "$@"; do
  case "$arg" in
    -h|--help)  # no build, no run: the header and the bench's flags
      sed -n '2,27p' "$0"; echo
      if [[ -x "$BUILD_DIR/bench/index_bench" ]]; then
        "$BUILD_DIR/bench/index_bench" --help
      else
        echo "(build $BUILD_DIR/bench/index_bench for its flags: ninja -C $BUILD_DIR index_bench)"
      fi
      exit 0 ;;
  esac
done

if [[ "${NO_BUILD:-0}" != 1 ]]; then
  if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  ninja -C "$BUILD_DIR" -j"$JOBS" index_bench >&2
fi
BENCH="$BUILD_DIR/bench/index_bench"
if [[ ! -x "$BENCH" ]]; then
  echo "missing $BENCH; build it: ninja -C $BUILD_DIR index_bench" >&2
  exit 1
fi
mkdir -p "$OUT_DIR"
echo "results in $OUT_DIR; load average now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "CPU: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)" >&2
echo "reproduce: BUILD_DIR=$BUILD_DIR bash bench/run_index_bench.sh $*" >&2

cd "$ROOT"
# Progress (stderr) goes to the terminal and to OUT_DIR/index_bench.stderr.
"$BENCH" --json="$OUT_DIR/index.json" "$@" 2> >(tee "$OUT_DIR/index_bench.stderr" >&2) \
  | tee "$OUT_DIR/index.txt" || {
  rc=$?
  echo "index_bench failed (rc $rc); its stderr is in $OUT_DIR/index_bench.stderr" >&2
  exit "$rc"
}
echo "reproduce: BUILD_DIR=$BUILD_DIR bash bench/run_index_bench.sh $*"
