// CUDA and cuBLAS error codes as absl::Status, for the host side of the
// CUDA backend (cuda_encoder.cc, device_memory.cc): the failing call is
// named, out-of-memory is RESOURCE_EXHAUSTED, a missing or unusable device
// FAILED_PRECONDITION, an unsupported cuBLAS operation UNIMPLEMENTED, the
// rest INTERNAL. Each conversion clears CUDA's last (non-sticky) error so
// the next call does not report it again. Internal to engine/cuda.
//
// Thread safety: plain functions.
#ifndef SAEDICT_ENGINE_CUDA_CUDA_STATUS_H_
#define SAEDICT_ENGINE_CUDA_CUDA_STATUS_H_

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "engine/cuda/cublas_loader.h"

namespace saedict::engine::cuda::internal {

// `call` is the call's source text ("cudaMalloc(&p, n)"); its name is reported.
absl::Status CudaError(cudaError_t e, const char* call);
absl::Status CublasError(cublasStatus_t s, const char* call);

// The loaded cuBLAS (cublas_loader.h); only called once LoadCublas() succeeded.
const CublasApi& Blas();

}  // namespace saedict::engine::cuda::internal

// Returns the converted status from the enclosing function when `call`
// fails.
#define SAEDICT_CUDA_RETURN_IF_ERROR(call)                                            \
  do {                                                                                \
    const cudaError_t saedict_cuda_error_ = (call);                                   \
    if (saedict_cuda_error_ != cudaSuccess) {                                         \
      return ::saedict::engine::cuda::internal::CudaError(saedict_cuda_error_, #call); \
    }                                                                                 \
  } while (0)

#define SAEDICT_CUBLAS_RETURN_IF_ERROR(call)                                               \
  do {                                                                                     \
    const cublasStatus_t saedict_cublas_status_ = (call);                                  \
    if (saedict_cublas_status_ != CUBLAS_STATUS_SUCCESS) {                                 \
      return ::saedict::engine::cuda::internal::CublasError(saedict_cublas_status_, #call); \
    }                                                                                      \
  } while (0)

#endif  // SAEDICT_ENGINE_CUDA_CUDA_STATUS_H_
