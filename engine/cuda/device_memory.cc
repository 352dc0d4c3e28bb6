#include "engine/cuda/device_memory.h"

#include "absl/strings/str_cat.h"

namespace saedict::engine::cuda::internal {

absl::Status Memory::Allocate(Kind kind, size_t bytes, std::atomic<int64_t>* counter) {
  Reset();
  if (bytes == 0) return absl::OkStatus();
  void* p = nullptr;
  if (kind == kDevice) {
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      absl::Status s = CudaError(e, "cudaMalloc");
      return absl::Status(s.code(), absl::StrCat(s.message(), " allocating ", bytes,
                                                 " bytes of device memory"));
    }
  } else {
    const cudaError_t e = cudaMallocHost(&p, bytes);
    if (e != cudaSuccess) {
      absl::Status s = CudaError(e, "cudaMallocHost");
      return absl::Status(s.code(), absl::StrCat(s.message(), " allocating ", bytes,
                                                 " bytes of pinned host memory"));
    }
  }
  ptr_ = p;
  bytes_ = bytes;
  kind_ = kind;
  counter_ = kind == kDevice ? counter : nullptr;
  if (counter_ != nullptr) counter_->fetch_add(static_cast<int64_t>(bytes));
  return absl::OkStatus();
}

void Memory::Reset() {
  if (ptr_ == nullptr) return;
  if (kind_ == kDevice) {
    cudaFree(ptr_);
  } else {
    cudaFreeHost(ptr_);
  }
  if (counter_ != nullptr) counter_->fetch_sub(static_cast<int64_t>(bytes_));
  ptr_ = nullptr;
  bytes_ = 0;
  counter_ = nullptr;
}

Lane::~Lane() {
  Drain();
  if (blas != nullptr) Blas().destroy(blas);
  for (int s = 0; s < 2; ++s) {
    if (h2d_done[s] != nullptr) cudaEventDestroy(h2d_done[s]);
    if (compute_done[s] != nullptr) cudaEventDestroy(compute_done[s]);
    if (d2h_done[s] != nullptr) cudaEventDestroy(d2h_done[s]);
  }
  if (compute != nullptr) cudaStreamDestroy(compute);
  if (copy != nullptr) cudaStreamDestroy(copy);
  // Memory members free themselves after this body.
}

}  // namespace saedict::engine::cuda::internal
