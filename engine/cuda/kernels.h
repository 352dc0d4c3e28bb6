// The device kernels of the CUDA encode backend (kernels.cu) behind a plain
// C++ interface: raw device pointers, a stream, a cudaError_t back. No
// Abseil and no engine headers here, so nvcc never compiles them; only
// cuda_encoder.cc includes this. Internal to engine/cuda.
//
// Every Launch* enqueues on `stream` and returns the launch's error
// (cudaGetLastError); execution errors surface at the next synchronizing
// call. Row-major layouts throughout; m <= INT_MAX rows per launch.
#ifndef SAEDICT_ENGINE_CUDA_KERNELS_H_
#define SAEDICT_ENGINE_CUDA_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace saedict::engine::cuda::internal {

// cudaSuccess when this binary holds code the current device can run
// (cudaErrorNoKernelImageForDevice or similar otherwise).
cudaError_t CheckKernelImage();

enum Act : int32_t { kActStandard = 0, kActTopK = 1, kActJumpReLU = 2, kActGated = 3 };

// The activation of engine/activation.h, per feature j of GEMM output c:
//   standard: c + b_enc[j]        topk: (c + b_enc[j]) [* scale[j]]
//   jumprelu: h = c + b_enc[j]; h > threshold[j] ? h : 0
//   gated:    c + b_gate[j] > 0 ? c * scale[j] + b_mag[j] : 0
// each operation rounded separately (no FMA), as the CPU computes it.
struct ActParams {
  int32_t act = kActStandard;
  int64_t d_sae = 0;
  const float* b_enc = nullptr;
  const float* threshold = nullptr;
  const float* scale = nullptr;  // topk: ||W_dec_j|| or null; gated: exp(r_mag_j)
  const float* b_gate = nullptr;
  const float* b_mag = nullptr;
  int32_t k = 0;  // 0: keep every positive value; else the k largest positives
};

// A row's selection: values v > 0 with bits(v) > key are kept, and of those
// with bits(v) == key the first need_eq by feature index (key 0, need_eq 0:
// every positive value).
struct RowSelect {
  uint32_t key;
  uint32_t need_eq;
};

// pre [m, d_sae] is replaced by the activation values; per row: sel[r] and
// counts[r] (features kept). counts[m] is not written.
cudaError_t LaunchActivateSelect(const ActParams& params, float* pre, int64_t m, RowSelect* sel,
                                 unsigned long long* counts, cudaStream_t stream);

// Temporary bytes for ExclusiveScan of up to `items` counts.
cudaError_t ScanTempBytes(int64_t items, size_t* bytes);
// out[i] = sum of in[0, i) for i in [0, items).
cudaError_t LaunchExclusiveScan(void* temp, size_t temp_bytes, const unsigned long long* in,
                                unsigned long long* out, int64_t items, cudaStream_t stream);

// Writes each row's kept (feature, value) pairs of act [m, d_sae] at
// [row_ptr[r], row_ptr[r + 1]) of indices / values, features ascending.
cudaError_t LaunchCompact(const float* act, int64_t m, int64_t d_sae, const RowSelect* sel,
                          const unsigned long long* row_ptr, uint32_t* indices, float* values,
                          cudaStream_t stream);

// out[i] = bf16(in[i]) (round to nearest even); out is __nv_bfloat16.
cudaError_t LaunchToBf16(const float* in, void* out, int64_t count, cudaStream_t stream);

// --- matching pursuit (engine/matching_pursuit.cc on the device) ----------
struct MpParams {
  int64_t d_in = 0;
  int64_t d_sae = 0;
  const float* w_dec = nullptr;    // [d_sae, d_in]
  const float* norm_sq = nullptr;  // [d_sae], ||W_dec_i||^2 (float, as the CPU)
  double threshold = 0.0;          // stop when ||r|| < threshold (0: never)
  int32_t k = 0;                   // steps; list capacity per row
};

// Per row: count 0, active 1; *active_rows = m.
cudaError_t LaunchMpInit(int64_t m, int32_t* count, uint8_t* active, unsigned int* active_rows,
                         cudaStream_t stream);
// One greedy step of every active row given scores [m, d_sae] = r W_dec^T:
// updates residual [m, d_in], the row's list (idx / val [m, k], count [m]),
// and clears active[r] (decrementing *active_rows) when the row stops.
cudaError_t LaunchMpStep(const MpParams& params, const float* scores, int64_t m, float* residual,
                         uint32_t* idx, float* val, int32_t* count, uint8_t* active,
                         unsigned int* active_rows, cudaStream_t stream);
// Sorts each row's list by feature and writes counts[r] = its nonzero values.
cudaError_t LaunchMpSortCount(int64_t m, int32_t k, uint32_t* idx, float* val, const int32_t* count,
                              unsigned long long* counts, cudaStream_t stream);
// Writes each row's nonzero entries at [row_ptr[r], row_ptr[r + 1]).
cudaError_t LaunchMpWrite(int64_t m, int32_t k, const uint32_t* idx, const float* val,
                          const int32_t* count, const unsigned long long* row_ptr,
                          uint32_t* indices, float* values, cudaStream_t stream);

}  // namespace saedict::engine::cuda::internal

#endif  // SAEDICT_ENGINE_CUDA_KERNELS_H_
