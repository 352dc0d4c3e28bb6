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
# Environment (bench/bench_runner.sh): BUILD_DIR (default build, the dev.sh build; relative to the repo root),
#   OUT_DIR (default: a fresh temporary directory), NO_BUILD=1 to skip the build,
#   JOBS (ninja -j, default 2). OPENBLAS_CORETYPE passes through (OpenBLAS 0.3.21
#   falls back to SSE3 "Prescott" kernels on CPUs it does not know; the report says so).
# A default run takes ~6-10 minutes on 2 cores, depending on the load (most of it
# the full 16384 x 16384 x 2304 precompute, twice, and the IVF training).
# The machine should be otherwise idle: the report prints the load average.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/bench_runner.sh"
run_bench index_bench 2,27 "$@"
