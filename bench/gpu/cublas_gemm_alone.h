// cuBLAS GEMM alone, the ceiling the CUDA encode backend is measured
// against (bench/gpu/gpu_encode_bench.cc): pre[n, d_sae] = x[n, d_in] ·
// W[d_in, d_sae] on device-resident random data, in the two precisions the
// backend runs — F32 (no TF32: CUBLAS_PEDANTIC_MATH) and BF16 inputs with F32
// accumulation and F32 output (tensor cores) — with no transfer, bias,
// activation or selection. Plain C++ interface (no CUDA or Abseil types), so
// the .cu file stays free of host-library headers.
//
// Thread safety: one call at a time per process (it uses device 0's
// default stream and its own cuBLAS handle).
#ifndef SAEDICT_BENCH_GPU_CUBLAS_GEMM_ALONE_H_
#define SAEDICT_BENCH_GPU_CUBLAS_GEMM_ALONE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace saedict::bench::gpu {

struct GemmAloneTiming {
  std::vector<double> seconds;  // one per timed call (CUDA events)
  std::string error;            // empty on success; else the failing call
};

// `warmup` untimed calls, then `reps` timed ones, on `device`.
GemmAloneTiming TimeCublasGemm(int device, int64_t n, int64_t d_in, int64_t d_sae, bool bf16,
                               int warmup, int reps);

}  // namespace saedict::bench::gpu

#endif  // SAEDICT_BENCH_GPU_CUBLAS_GEMM_ALONE_H_
