// Device memory and the per-call lanes of the CUDA backend (cuda_encoder.cc):
// Memory owns one device or pinned-host allocation (device bytes counted
// in a shared counter), Upload copies a host vector into a new device
// allocation, and a Lane is what one Encode call holds for itself — its
// streams, events, cuBLAS handle and buffers (see cuda_encoder.cc's
// pipeline). Internal to engine/cuda.
//
// Thread safety: none of its own; a Lane belongs to one call at a time
// (the encoder's lane pool), Memory to its owner.
#ifndef SAEDICT_ENGINE_CUDA_DEVICE_MEMORY_H_
#define SAEDICT_ENGINE_CUDA_DEVICE_MEMORY_H_

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "engine/cuda/cuda_status.h"
#include "util/status_macros.h"

namespace saedict::engine::cuda::internal {

// Device (or pinned host) memory, freed on destruction; bytes are counted
// in *counter (device memory only).
class Memory {
 public:
  enum Kind { kDevice, kPinnedHost };
  Memory() = default;
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;
  ~Memory() { Reset(); }

  // When the allocation fails: CudaError's status (RESOURCE_EXHAUSTED when
  // out of memory), naming the size.
  absl::Status Allocate(Kind kind, size_t bytes, std::atomic<int64_t>* counter);
  void Reset();

  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  explicit operator bool() const { return ptr_ != nullptr; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  Kind kind_ = kDevice;
  std::atomic<int64_t>* counter_ = nullptr;
};

// `host` into a new device allocation *device (nothing for an empty vector).
template <typename T>
absl::Status Upload(const std::vector<T>& host, Memory* device, std::atomic<int64_t>* counter) {
  if (host.empty()) return absl::OkStatus();
  SAEDICT_RETURN_IF_ERROR(device->Allocate(Memory::kDevice, host.size() * sizeof(T), counter));
  SAEDICT_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(device->get(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return absl::OkStatus();
}

// One lane: what a call needs for itself (see cuda_encoder.cc's pipeline).
struct Lane {
  cudaStream_t compute = nullptr;
  cudaStream_t copy = nullptr;
  cublasHandle_t blas = nullptr;
  cudaEvent_t h2d_done[2] = {nullptr, nullptr};
  cudaEvent_t compute_done[2] = {nullptr, nullptr};
  cudaEvent_t d2h_done[2] = {nullptr, nullptr};

  Memory x[2];       // [chunk, d_in] F32 x' (matching pursuit: the residual)
  Memory x_bf16;     // [chunk, d_in] bf16 (kBF16)
  Memory pre;        // [chunk, d_sae] F32 GEMM output, then activations (MP: scores)
  Memory sel;        // [chunk] RowSelect
  Memory counts;     // [chunk + 1] per-row kept features
  Memory scan_temp;  // cub scan scratch
  Memory row_ptr[2];  // [chunk + 1]
  Memory csr_idx[2];  // [csr_capacity]
  Memory csr_val[2];
  int64_t csr_capacity = 0;
  // Matching pursuit: per-row lists [chunk, mp_k], counts, flags.
  Memory mp_idx, mp_val, mp_count, mp_active, mp_active_rows;
  int64_t mp_k = 0;
  // Pinned host staging.
  Memory h_x[2];        // [chunk, d_in]
  Memory h_row_ptr[2];  // [chunk + 1]
  Memory h_idx, h_val;  // [h_capacity]
  Memory h_active_rows;
  int64_t h_capacity = 0;

  // Waits for everything enqueued on the lane; clears a non-sticky error.
  void Drain() {
    if (compute != nullptr) cudaStreamSynchronize(compute);
    if (copy != nullptr) cudaStreamSynchronize(copy);
    cudaGetLastError();
  }

  ~Lane();
};

}  // namespace saedict::engine::cuda::internal

#endif  // SAEDICT_ENGINE_CUDA_DEVICE_MEMORY_H_
