#include "bench/gpu/cublas_gemm_alone.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

namespace saedict::bench::gpu {
namespace {

__global__ void FillKernel(float* out, int64_t count, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    out[i] = static_cast<float>(h & 0xffff) / 32768.0f - 1.0f;
  }
}

__global__ void ToBf16Kernel(const float* in, __nv_bfloat16* out, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = __float2bfloat16_rn(in[i]);
  }
}

// Frees what it holds on every path out of TimeCublasGemm.
struct DeviceBuffers {
  float* x = nullptr;
  float* w = nullptr;
  float* pre = nullptr;
  __nv_bfloat16* x16 = nullptr;
  __nv_bfloat16* w16 = nullptr;
  cublasHandle_t handle = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  ~DeviceBuffers() {
    cudaFree(x);
    cudaFree(w);
    cudaFree(pre);
    cudaFree(x16);
    cudaFree(w16);
    if (handle != nullptr) cublasDestroy(handle);
    if (start != nullptr) cudaEventDestroy(start);
    if (stop != nullptr) cudaEventDestroy(stop);
  }
};

std::string CudaError(const char* what, cudaError_t e) {
  return std::string(what) + ": " + cudaGetErrorString(e);
}

}  // namespace

GemmAloneTiming TimeCublasGemm(int device, int64_t n, int64_t d_in, int64_t d_sae, bool bf16,
                               int warmup, int reps) {
  GemmAloneTiming out;
  DeviceBuffers b;
  cudaError_t e = cudaSetDevice(device);
  if (e != cudaSuccess) return {{}, CudaError("cudaSetDevice", e)};
  const size_t xs = static_cast<size_t>(n * d_in), ws = static_cast<size_t>(d_in * d_sae);
  if ((e = cudaMalloc(&b.x, xs * sizeof(float))) != cudaSuccess ||
      (e = cudaMalloc(&b.w, ws * sizeof(float))) != cudaSuccess ||
      (e = cudaMalloc(&b.pre, static_cast<size_t>(n * d_sae) * sizeof(float))) != cudaSuccess) {
    return {{}, CudaError("cudaMalloc", e)};
  }
  FillKernel<<<1024, 256>>>(b.x, static_cast<int64_t>(xs), 1);
  FillKernel<<<1024, 256>>>(b.w, static_cast<int64_t>(ws), 2);
  if (bf16) {
    if ((e = cudaMalloc(&b.x16, xs * sizeof(__nv_bfloat16))) != cudaSuccess ||
        (e = cudaMalloc(&b.w16, ws * sizeof(__nv_bfloat16))) != cudaSuccess) {
      return {{}, CudaError("cudaMalloc", e)};
    }
    ToBf16Kernel<<<1024, 256>>>(b.x, b.x16, static_cast<int64_t>(xs));
    ToBf16Kernel<<<1024, 256>>>(b.w, b.w16, static_cast<int64_t>(ws));
  }
  if ((e = cudaDeviceSynchronize()) != cudaSuccess) return {{}, CudaError("fill kernels", e)};
  if (cublasCreate(&b.handle) != CUBLAS_STATUS_SUCCESS) return {{}, "cublasCreate failed"};
  cublasSetMathMode(b.handle, bf16 ? CUBLAS_DEFAULT_MATH : CUBLAS_PEDANTIC_MATH);
  cudaEventCreate(&b.start);
  cudaEventCreate(&b.stop);
  // Row-major pre[n, d_sae] = x[n, d_in] W[d_in, d_sae] is column-major
  // pre^T[d_sae, n] = W^T x^T: m = d_sae, n = n, k = d_in, no transposes.
  const float one = 1.0f, zero = 0.0f;
  auto gemm = [&]() -> cublasStatus_t {
    if (bf16) {
      return cublasGemmEx(b.handle, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(d_sae),
                          static_cast<int>(n), static_cast<int>(d_in), &one, b.w16, CUDA_R_16BF,
                          static_cast<int>(d_sae), b.x16, CUDA_R_16BF, static_cast<int>(d_in),
                          &zero, b.pre, CUDA_R_32F, static_cast<int>(d_sae), CUBLAS_COMPUTE_32F,
                          CUBLAS_GEMM_DEFAULT);
    }
    return cublasSgemm(b.handle, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(d_sae),
                       static_cast<int>(n), static_cast<int>(d_in), &one, b.w,
                       static_cast<int>(d_sae), b.x, static_cast<int>(d_in), &zero, b.pre,
                       static_cast<int>(d_sae));
  };
  for (int i = 0; i < warmup; ++i) {
    if (gemm() != CUBLAS_STATUS_SUCCESS) return {{}, "cuBLAS GEMM failed (warm-up)"};
  }
  for (int i = 0; i < reps; ++i) {
    cudaEventRecord(b.start);
    if (gemm() != CUBLAS_STATUS_SUCCESS) return {{}, "cuBLAS GEMM failed"};
    cudaEventRecord(b.stop);
    if ((e = cudaEventSynchronize(b.stop)) != cudaSuccess) return {{}, CudaError("GEMM", e)};
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, b.start, b.stop);
    out.seconds.push_back(ms / 1000.0);
  }
  return out;
}

}  // namespace saedict::bench::gpu
