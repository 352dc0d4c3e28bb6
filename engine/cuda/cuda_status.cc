#include "engine/cuda/cuda_status.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace saedict::engine::cuda::internal {
namespace {

// "cudaMemcpyAsync(a, b)" -> "cudaMemcpyAsync".
std::string CallName(const char* call) {
  const char* paren = std::strchr(call, '(');
  return paren == nullptr ? std::string(call) : std::string(call, paren - call);
}

}  // namespace

absl::Status CudaError(cudaError_t e, const char* call) {
  std::string message = absl::StrCat("CUDA ", CallName(call), " failed: ", cudaGetErrorName(e),
                                     " (", cudaGetErrorString(e), ")");
  cudaGetLastError();  // a non-sticky error must not be reported again by the next call
  switch (e) {
    case cudaErrorMemoryAllocation:
      return absl::ResourceExhaustedError(message);
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
      return absl::FailedPreconditionError(message);
    default:
      return absl::InternalError(message);
  }
}

const CublasApi& Blas() { return **LoadCublas(); }

absl::Status CublasError(cublasStatus_t s, const char* call) {
  std::string message = absl::StrCat("cuBLAS ", CallName(call), " failed: ",
                                     Blas().status_name(s), " (", Blas().status_string(s), ")");
  cudaGetLastError();
  switch (s) {
    case CUBLAS_STATUS_ALLOC_FAILED:
      return absl::ResourceExhaustedError(message);
    case CUBLAS_STATUS_NOT_SUPPORTED:
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return absl::UnimplementedError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace saedict::engine::cuda::internal
