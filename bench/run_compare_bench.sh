#!/usr/bin/env bash
# Runs the dictionary-comparison benchmark (bench/compare_bench.cc) and prints
# its report:
#   1. compare::CompareDecoders on 16384 x 16384 features at d_in 2304: A
#      random-normal decoder rows, B a perturbed permutation of 75% of them
#      plus fresh rows (fixed seeds). The GEMM phase (unit rows, blocked
#      cblas_sgemm, best partners rescored in float64) next to the sgemm
#      alone over the same blocks, then the exact one-to-one assignment
#      (MaxSimilarityAssignment, Jonker-Volgenant); target GEMM + assignment
#      <= 60 s in all. MMCS, matched fractions, the Hungarian mean and the
#      planted pairs recovered come with it.
#   2. MaxSimilarityAssignment alone on a purely random 4096 x 4096 matrix.
# Every figure is printed with the CPU model, the OpenBLAS core and the load
# average. The last line of stdout is the JSON report (also in OUT_DIR).
#
# Usage: bench/run_compare_bench.sh [compare_bench flags, e.g. --size=4096
#          --d_in=768 --shared=0.5 --random_n=2048 --reference=block]
#        bench/run_compare_bench.sh --help     (all flags)
# Environment: BUILD_DIR (default build, the dev.sh build; relative to the repo root),
#   OUT_DIR (default: a fresh temporary directory), NO_BUILD=1 to skip the build,
#   JOBS (ninja -j, default 2). OPENBLAS_CORETYPE passes through (OpenBLAS 0.3.21
#   falls back to SSE3 "Prescott" kernels on CPUs it does not know; the report
#   says so; OPENBLAS_CORETYPE=SkylakeX picks its AVX-512 kernels).
# A default run takes ~1.5-2 minutes on 2 cores with the Prescott kernels (the
# 1.24 TFLOP GEMM twice: the comparison and the sgemm-alone reference) and
# needs ~3 GB of memory (the 1 GiB cosine matrix, the dictionaries, unit rows).
# The machine should be otherwise idle: the report prints the load average.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/saedict-compare-bench.XXXXXX)}"
JOBS="${JOBS:-2}"

for arg in "$@"; do
  case "$arg" in
    -h|--help)  # no build, no run: the header and the bench's flags
      sed -n '2,27p' "$0"; echo
      if [[ -x "$BUILD_DIR/bench/compare_bench" ]]; then
        "$BUILD_DIR/bench/compare_bench" --help
      else
        echo "(build $BUILD_DIR/bench/compare_bench for its flags: ninja -C $BUILD_DIR compare_bench)"
      fi
      exit 0 ;;
  esac
done

if [[ "${NO_BUILD:-0}" != 1 ]]; then
  if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  ninja -C "$BUILD_DIR" -j"$JOBS" compare_bench >&2
fi
BENCH="$BUILD_DIR/bench/compare_bench"
if [[ ! -x "$BENCH" ]]; then
  echo "missing $BENCH; build it: ninja -C $BUILD_DIR compare_bench" >&2
  exit 1
fi
mkdir -p "$OUT_DIR"
echo "results in $OUT_DIR; load average now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "CPU: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)" >&2
echo "reproduce: BUILD_DIR=$BUILD_DIR bash bench/run_compare_bench.sh $*" >&2

cd "$ROOT"
# Progress (stderr) goes to the terminal and to OUT_DIR/compare_bench.stderr.
"$BENCH" --json="$OUT_DIR/compare.json" "$@" 2> >(tee "$OUT_DIR/compare_bench.stderr" >&2) \
  | tee "$OUT_DIR/compare.txt" || {
  rc=$?
  echo "compare_bench failed (rc $rc); its stderr is in $OUT_DIR/compare_bench.stderr" >&2
  exit "$rc"
}
echo "reproduce: BUILD_DIR=$BUILD_DIR bash bench/run_compare_bench.sh $*"
