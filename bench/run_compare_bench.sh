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
# Environment (bench/bench_runner.sh): BUILD_DIR (default build, the dev.sh build; relative to the repo root),
#   OUT_DIR (default: a fresh temporary directory), NO_BUILD=1 to skip the build,
#   JOBS (ninja -j, default 2). OPENBLAS_CORETYPE passes through (OpenBLAS 0.3.21
#   falls back to SSE3 "Prescott" kernels on CPUs it does not know; the report
#   says so; OPENBLAS_CORETYPE=SkylakeX picks its AVX-512 kernels).
# A default run takes ~1.5-2 minutes on 2 cores with the Prescott kernels (the
# 1.24 TFLOP GEMM twice: the comparison and the sgemm-alone reference) and
# needs ~3 GB of memory (the 1 GiB cosine matrix, the dictionaries, unit rows).
# The machine should be otherwise idle: the report prints the load average.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/bench_runner.sh"
run_bench compare_bench 2,27 "$@"
