// CudaEncoder: the CUDA backend of the encode engine (DESIGN.md §2, §9). It
// encodes with the weights of a CPU Encoder resident on one GPU and returns
// the same EncodeResult, so a caller (a worker, a benchmark) can use either.
// Plain C++: no CUDA header is included here, and a build without the CUDA
// toolkit (or with -DSAEDICT_CUDA=OFF) links a stub with the same API whose
// Create fails with FAILED_PRECONDITION.
//
// What runs where, per Encode call:
//   host   Encoder::ValidateEncodeInput (the CPU's checks and error messages),
//          then per chunk of chunk_rows rows Encoder::PreprocessRows (the
//          CPU's normalization and b_dec subtraction, bit for bit, and its
//          "too large for float32" check) into pinned staging memory;
//   device H2D of the chunk; F32: cublasSgemm (CUBLAS_DEFAULT_MATH: true
//          float32, never TF32); BF16: x' converted to bf16 on the device,
//          cublasGemmEx bf16 x bf16 -> F32 accumulate and output (tensor
//          cores) against the resident bf16 copy of W_enc; then one kernel
//          per row (bias + activation + top-k selection by a radix select on
//          the float bits, ties to the lower index like the CPU), a scan of
//          the per-row counts (cub) and a compaction writing each row's CSR
//          entries in ascending feature order; only row offsets, indices and
//          values are copied back. Matching pursuit iterates on the device:
//          a GEMM of the residual against W_dec^T, then one kernel per row
//          (signed argmax, first index on ties, float64 inner product,
//          residual update, the residual-norm stop rule), k times.
//          Chunks are pipelined: while chunk i computes, the host prepares
//          chunk i+1 and copies it in on a second stream (double buffers,
//          events), and chunk i-1's CSR arrays come back.
//   host   Encoder::FinishEncode: the finiteness check of the codes, and the
//          reconstruction / row error when asked, from the sparse codes with
//          the CPU engine's own functions (host work, O(n * nnz * d_out) for
//          the decode plus O(n * d_in * d_out) for a skip transcoder).
//
// Agreement with the CPU Encoder (F32 mode, same input): the same features
// are selected per row except where the CPU's decision margin (k-th vs
// (k+1)-th value, a threshold, a gate, the sign of relu's input, the MP
// argmax) is within the tolerance; values agree within
//   |v_gpu - v_cpu| <= kF32Tolerance * (|v_cpu| + A),
// where A = sum_j |x'_j W_jf| (times the feature's scale for a
// topk-rescaled or gated dictionary) is the size of the terms the GEMM
// sums: the device sums them in another order, and two float32 orderings of
// a d_in-term sum differ by about sqrt(d_in) * 2^-24 * A (3e-6 A for
// d_in = 2304), so the floor covers reorderings up to d_in ~ 10^4 with
// margin. Matching pursuit values (recomputed in float64 from the residual)
// agree to about 1e-7 relative while the argmax choices agree. BF16 mode:
// within kBf16Tolerance * (|v| + A) of the F32 values, selection may differ
// within that margin.
//
// Not promised (unlike the CPU F32 path): batch invariance. cuBLAS picks
// kernels by shape, so a row's values may differ in the last bits with the
// chunk it lands in; they are deterministic for the same call shape on the
// same GPU and library.
//
// Memory: the weights stay resident (W_enc in F32 and, with
// keep_bf16_weights, bf16; matching pursuit W_dec; the bias, threshold,
// gate and scale vectors). Each lane holds a [chunk_rows, d_sae] F32
// pre-activation buffer (chunk_rows is reduced so it stays <= 512 MiB),
// double-buffered inputs and CSR outputs, and pinned host staging. The CSR
// buffers hold chunk_rows * k entries for a capped encode (topk, matching
// pursuit, top_k > 0) and chunk_rows * d_sae for an uncapped one (standard,
// jumprelu, gated without top_k); they grow on the first call that needs it.
//
// Thread safety: Create, device_bytes and device are safe at any time;
// Encode is const and may be called concurrently from any number of threads:
// a lane pool (mutex + condition) hands each call one lane — its own CUDA
// streams, cuBLAS handle and buffers — for the whole call, and callers wait
// when all `lanes` are busy. Each call sets the thread's current CUDA device
// to options.device. Destroying the encoder while a call runs is undefined.
#ifndef SAEDICT_ENGINE_CUDA_CUDA_ENCODER_H_
#define SAEDICT_ENGINE_CUDA_CUDA_ENCODER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/encoder.h"

namespace saedict::engine::cuda {

// The tolerances documented above (relative to |v| + A).
inline constexpr double kF32Tolerance = 1e-5;
inline constexpr double kBf16Tolerance = 1e-2;

// True when this build has the CUDA backend (configure found the toolkit).
bool BuiltWithCuda();

// Number of CUDA devices: 0 when the build has no CUDA, there is no driver,
// the driver is too old, or there is no device. Never fails, never throws.
int DeviceCount();

struct DeviceInfo {
  int ordinal = -1;
  std::string name;
  int cc_major = 0;  // compute capability
  int cc_minor = 0;
  int multiprocessors = 0;
  int64_t total_bytes = 0;  // device memory
  int64_t free_bytes = 0;   // at the time of the query
};

// INVALID_ARGUMENT for an ordinal outside [0, DeviceCount()); FAILED_PRECONDITION
// without CUDA; INTERNAL naming the CUDA call that failed. Creates the
// device's primary context (cudaMemGetInfo); leaves the calling thread's
// current device as it was.
absl::StatusOr<DeviceInfo> GetDeviceInfo(int ordinal);

struct CudaEncoderOptions {
  int device = 0;             // CUDA device ordinal
  int64_t chunk_rows = 2048;  // rows per device chunk (reduced for wide dictionaries)
  int lanes = 2;              // concurrent calls, each with its own streams and buffers
  // Keep a bf16 copy of W_enc (W_dec for matching pursuit) resident for
  // ComputeMode::kBF16; without it kBF16 calls are UNIMPLEMENTED.
  bool keep_bf16_weights = true;
};

class CudaEncoder {
 public:
  // `cpu` supplies the dictionary, its validation, preprocessing, content
  // hash and the host-side reconstruction (the CudaEncoder keeps it alive).
  // INVALID_ARGUMENT for a null encoder or bad options (device ordinal out of
  // range, chunk_rows or lanes < 1); FAILED_PRECONDITION when the build has
  // no CUDA backend or no device is usable (the message names why: the
  // cudaGetDeviceCount error); RESOURCE_EXHAUSTED when the weights or a
  // lane's buffers do not fit; INTERNAL naming a failed CUDA / cuBLAS call.
  static absl::StatusOr<std::unique_ptr<CudaEncoder>> Create(std::shared_ptr<const Encoder> cpu,
                                                             const CudaEncoderOptions& options);
  ~CudaEncoder();
  CudaEncoder(const CudaEncoder&) = delete;
  CudaEncoder& operator=(const CudaEncoder&) = delete;

  // As Encoder::Encode: x [n, d_in] row-major float32; the same
  // INVALID_ARGUMENT errors for the input (size, NaN/Inf naming row and
  // column, top_k range, a row too large for float32, a row error asked of
  // a transcoder). compute_mode kF32 and kFastExact run F32 (the result's
  // compute_mode says kF32); kBF16 runs the bf16 GEMM (UNIMPLEMENTED without
  // keep_bf16_weights). result.fast_exact is left empty. RESOURCE_EXHAUSTED
  // when a buffer cannot grow; INTERNAL naming the CUDA / cuBLAS call that
  // failed (a device fault may leave the encoder unusable: later calls then
  // fail too, and the caller should fall back to the CPU Encoder).
  absl::StatusOr<EncodeResult> Encode(absl::Span<const float> x, int64_t n,
                                      const EncodeOptions& options = {}) const;

  // Device memory held now: weights plus every lane's buffers.
  int64_t device_bytes() const;
  const DeviceInfo& device() const;
  const Encoder& cpu() const;
  // Rows per chunk actually used (options.chunk_rows, reduced for wide dictionaries).
  int64_t chunk_rows() const;

 private:
  class Impl;
  explicit CudaEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace saedict::engine::cuda

#endif  // SAEDICT_ENGINE_CUDA_CUDA_ENCODER_H_
