// CudaEncoder: host side of the CUDA backend (see cuda_encoder.h): weight
// upload, the lane pool, the chunk pipeline and the cuBLAS calls. The
// kernels are in kernels.cu behind kernels.h; Abseil stays in this file
// (compiled by the C++ compiler), out of nvcc's way.
//
// Pipeline of one call on its lane (two slots s = chunk % 2):
//   Stage(c):   host: wait h2d_done[s] (chunk c-2's input copy), x' of chunk
//               c into pinned h_x[s] (Encoder::PreprocessRows);
//               copy stream: wait compute_done[s] (chunk c-2 no longer
//               reads x[s]), H2D, record h2d_done[s];
//               compute stream: wait h2d_done[s] and d2h_done[s] (chunk
//               c-2's CSR copied out of row_ptr/csr[s]), GEMM, activation
//               and selection, scan, compaction, row offsets D2H into
//               pinned h_row_ptr[s], record compute_done[s].
//   Collect(c): host: wait compute_done[s], read nnz; copy stream: D2H of
//               indices and values into pinned h_idx / h_val, record and
//               wait d2h_done[s]; append to the result.
// The host loop is Stage(0), then for each c: Stage(c+1), Collect(c), so
// chunk c+1's preprocessing and H2D overlap chunk c's kernels, and chunk
// c's D2H overlaps chunk c+1's kernels.
#include "engine/cuda/cuda_encoder.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <library_types.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engine/cuda/cublas_loader.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/device_memory.h"
#include "engine/cuda/kernels.h"
#include "util/status_macros.h"

namespace saedict::engine::cuda {
namespace {

using internal::ActParams;
using internal::CudaError;
using internal::Blas;
using internal::Lane;
using internal::Memory;
using internal::MpParams;
using internal::RowSelect;
using internal::Upload;

// Largest [chunk_rows, d_sae] F32 pre-activation buffer per lane.
constexpr int64_t kMaxPreBytes = int64_t{512} << 20;
constexpr int kMaxLanes = 64;

// Structure of codes from the device (values are checked by FinishEncode):
// SparseCodes::Validate, reported as the backend's bug.
absl::Status CheckStructure(const SparseCodes& codes) {
  const absl::Status s = codes.Validate();
  if (s.ok()) return s;
  return absl::InternalError(
      absl::StrCat("the CUDA backend returned malformed codes (a bug): ", s.message()));
}

}  // namespace

bool BuiltWithCuda() { return true; }

int DeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return std::max(count, 0);
}

namespace {

// FAILED_PRECONDITION naming why no device can be used, or OK with *count.
absl::Status CountDevices(int* count) {
  *count = 0;
  const cudaError_t e = cudaGetDeviceCount(count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    *count = 0;
    return absl::FailedPreconditionError(
        absl::StrCat("no CUDA device: cudaGetDeviceCount failed: ", cudaGetErrorName(e), " (",
                     cudaGetErrorString(e), ")"));
  }
  if (*count <= 0) {
    *count = 0;
    return absl::FailedPreconditionError("no CUDA device: cudaGetDeviceCount found none");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DeviceInfo> GetDeviceInfo(int ordinal) {
  int count = 0;
  SAEDICT_RETURN_IF_ERROR(CountDevices(&count));
  if (ordinal < 0 || ordinal >= count) {
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA device ", ordinal, " out of range: ", count, " device(s)"));
  }
  cudaDeviceProp prop;
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, ordinal));
  DeviceInfo info;
  info.ordinal = ordinal;
  info.name = prop.name;
  info.cc_major = prop.major;
  info.cc_minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.total_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  int previous = 0;
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaGetDevice(&previous));
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaSetDevice(ordinal));
  size_t free_bytes = 0, total_bytes = 0;
  const cudaError_t e = cudaMemGetInfo(&free_bytes, &total_bytes);
  cudaSetDevice(previous);
  if (e != cudaSuccess) return CudaError(e, "cudaMemGetInfo");
  info.free_bytes = static_cast<int64_t>(free_bytes);
  info.total_bytes = static_cast<int64_t>(total_bytes);
  return info;
}

class CudaEncoder::Impl {
 public:
  Impl(std::shared_ptr<const Encoder> cpu, const CudaEncoderOptions& options, DeviceInfo device)
      : cpu_(std::move(cpu)), options_(options), device_(std::move(device)) {
    const DictionaryConfig& c = config();
    const int64_t by_memory = std::max<int64_t>(1, kMaxPreBytes / (4 * c.d_sae));
    chunk_rows_ = std::min<int64_t>({options.chunk_rows, by_memory,
                                     std::numeric_limits<int32_t>::max() - 1});
    mp_ = c.architecture == Architecture::kMatchingPursuit;
  }

  ~Impl() {
    cudaSetDevice(options_.device);
    lanes_.clear();  // before the weights, with the device current
  }

  const DictionaryConfig& config() const { return cpu_->dictionary().config; }

  absl::Status Init();
  absl::StatusOr<EncodeResult> Encode(absl::Span<const float> x, int64_t n,
                                      const EncodeOptions& options) const;

  std::shared_ptr<const Encoder> cpu_;
  CudaEncoderOptions options_;
  DeviceInfo device_;
  int64_t chunk_rows_ = 0;
  bool mp_ = false;
  mutable std::atomic<int64_t> device_bytes_{0};

 private:
  absl::Status UploadWeights();
  absl::Status InitLane(Lane& lane);
  absl::Status EnsureCapacity(Lane& lane, int64_t per_row, int32_t mp_k) const;
  absl::Status EnsureHostCapacity(Lane& lane, int64_t entries) const;
  absl::Status RunChunks(Lane& lane, absl::Span<const float> x, int64_t n, int32_t k, bool bf16,
                         SparseCodes* codes) const;
  absl::Status Stage(Lane& lane, absl::Span<const float> x, int64_t n, int64_t chunk, int64_t c,
                     int32_t k, bool bf16) const;
  absl::Status Collect(Lane& lane, int64_t n, int64_t chunk, int64_t c, SparseCodes* codes) const;
  // lane.pre [m, d_sae] = a [m, d_in] · W_enc (matching pursuit: a · W_dec^T).
  absl::Status Gemm(Lane& lane, const float* a, int64_t m, bool bf16) const;
  absl::Status MatchingPursuit(Lane& lane, int slot, int64_t m, int32_t k, bool bf16) const;

  Lane* Acquire() const;
  void Release(Lane* lane) const;

  // Resident weights. Non-MP: w_ = W_enc [d_in, d_sae]; MP: w_ = W_dec [d_sae, d_in].
  Memory w_, w_bf16_;
  Memory b_enc_, threshold_, scale_, b_gate_, b_mag_, norm_sq_;

  std::vector<std::unique_ptr<Lane>> lanes_;
  mutable absl::Mutex mu_;
  mutable std::vector<Lane*> free_ ABSL_GUARDED_BY(mu_);
};

absl::Status CudaEncoder::Impl::UploadWeights() {
  const DictionaryConfig& c = config();
  const Dictionary& d = cpu_->dictionary();
  std::atomic<int64_t>* counter = &device_bytes_;
  // The per-feature scales, computed exactly as the CPU Encoder computes them
  // (engine/encoder.cc): topk rescale ||W_dec_i|| (float64 sum of squares),
  // gated exp(r_mag) in float, matching pursuit ||W_dec_i||^2.
  auto row_norm_sq = [&](int64_t i) { return d.DecoderRowSquaredNorm(i); };
  std::vector<float> scale;
  if (c.architecture == Architecture::kTopK && c.rescale_acts_by_decoder_norm) {
    scale.resize(c.d_sae);
    for (int64_t i = 0; i < c.d_sae; ++i) scale[i] = static_cast<float>(std::sqrt(row_norm_sq(i)));
  } else if (c.architecture == Architecture::kGated) {
    scale.resize(c.d_sae);
    for (int64_t i = 0; i < c.d_sae; ++i) scale[i] = std::exp(d.r_mag[i]);
  }
  if (mp_) {
    std::vector<float> norm_sq(c.d_sae);
    for (int64_t i = 0; i < c.d_sae; ++i) norm_sq[i] = static_cast<float>(row_norm_sq(i));
    SAEDICT_RETURN_IF_ERROR(Upload(norm_sq, &norm_sq_, counter));
    SAEDICT_RETURN_IF_ERROR(Upload(d.w_dec, &w_, counter));
  } else {
    SAEDICT_RETURN_IF_ERROR(Upload(d.w_enc, &w_, counter));
  }
  SAEDICT_RETURN_IF_ERROR(Upload(scale, &scale_, counter));
  SAEDICT_RETURN_IF_ERROR(Upload(d.b_enc, &b_enc_, counter));
  SAEDICT_RETURN_IF_ERROR(Upload(d.threshold, &threshold_, counter));
  SAEDICT_RETURN_IF_ERROR(Upload(d.b_gate, &b_gate_, counter));
  SAEDICT_RETURN_IF_ERROR(Upload(d.b_mag, &b_mag_, counter));
  if (options_.keep_bf16_weights) {
    const int64_t count = c.d_in * c.d_sae;
    SAEDICT_RETURN_IF_ERROR(w_bf16_.Allocate(Memory::kDevice, count * 2, counter));
    SAEDICT_CUDA_RETURN_IF_ERROR(
        internal::LaunchToBf16(w_.as<float>(), w_bf16_.get(), count, /*stream=*/nullptr));
  }
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  return absl::OkStatus();
}

absl::Status CudaEncoder::Impl::InitLane(Lane& lane) {
  const DictionaryConfig& c = config();
  std::atomic<int64_t>* counter = &device_bytes_;
  const int64_t chunk = chunk_rows_;
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&lane.compute, cudaStreamNonBlocking));
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&lane.copy, cudaStreamNonBlocking));
  for (int s = 0; s < 2; ++s) {
    SAEDICT_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&lane.h2d_done[s], cudaEventDisableTiming));
    SAEDICT_CUDA_RETURN_IF_ERROR(
        cudaEventCreateWithFlags(&lane.compute_done[s], cudaEventDisableTiming));
    SAEDICT_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&lane.d2h_done[s], cudaEventDisableTiming));
  }
  SAEDICT_CUBLAS_RETURN_IF_ERROR(Blas().create(&lane.blas));
  SAEDICT_CUBLAS_RETURN_IF_ERROR(Blas().set_stream(lane.blas, lane.compute));
  // True float32 for F32 (no TF32); bf16 GemmEx still uses tensor cores.
  SAEDICT_CUBLAS_RETURN_IF_ERROR(Blas().set_math_mode(lane.blas, CUBLAS_DEFAULT_MATH));
  SAEDICT_CUBLAS_RETURN_IF_ERROR(Blas().set_pointer_mode(lane.blas, CUBLAS_POINTER_MODE_HOST));

  const size_t x_bytes = static_cast<size_t>(chunk * c.d_in) * sizeof(float);
  const size_t offsets_bytes = static_cast<size_t>(chunk + 1) * sizeof(unsigned long long);
  for (int s = 0; s < 2; ++s) {
    SAEDICT_RETURN_IF_ERROR(lane.x[s].Allocate(Memory::kDevice, x_bytes, counter));
    SAEDICT_RETURN_IF_ERROR(lane.row_ptr[s].Allocate(Memory::kDevice, offsets_bytes, counter));
    SAEDICT_RETURN_IF_ERROR(lane.h_x[s].Allocate(Memory::kPinnedHost, x_bytes, counter));
    SAEDICT_RETURN_IF_ERROR(lane.h_row_ptr[s].Allocate(Memory::kPinnedHost, offsets_bytes, counter));
  }
  if (w_bf16_) {
    SAEDICT_RETURN_IF_ERROR(lane.x_bf16.Allocate(Memory::kDevice, x_bytes / 2, counter));
  }
  SAEDICT_RETURN_IF_ERROR(lane.pre.Allocate(
      Memory::kDevice, static_cast<size_t>(chunk * c.d_sae) * sizeof(float), counter));
  SAEDICT_RETURN_IF_ERROR(lane.sel.Allocate(
      Memory::kDevice, static_cast<size_t>(chunk) * sizeof(RowSelect), counter));
  SAEDICT_RETURN_IF_ERROR(lane.counts.Allocate(Memory::kDevice, offsets_bytes, counter));
  size_t scan_bytes = 0;
  SAEDICT_CUDA_RETURN_IF_ERROR(internal::ScanTempBytes(chunk + 1, &scan_bytes));
  SAEDICT_RETURN_IF_ERROR(
      lane.scan_temp.Allocate(Memory::kDevice, std::max<size_t>(scan_bytes, 16), counter));
  if (mp_) {
    SAEDICT_RETURN_IF_ERROR(
        lane.mp_count.Allocate(Memory::kDevice, static_cast<size_t>(chunk) * 4, counter));
    SAEDICT_RETURN_IF_ERROR(
        lane.mp_active.Allocate(Memory::kDevice, static_cast<size_t>(chunk), counter));
    SAEDICT_RETURN_IF_ERROR(lane.mp_active_rows.Allocate(Memory::kDevice, 16, counter));
    SAEDICT_RETURN_IF_ERROR(lane.h_active_rows.Allocate(Memory::kPinnedHost, 16, counter));
  }
  // The dictionary's own k (topk, matching pursuit) sizes the CSR buffers
  // now; an uncapped or larger-k call grows them on first use.
  if (c.architecture == Architecture::kTopK || mp_) {
    SAEDICT_RETURN_IF_ERROR(EnsureCapacity(lane, std::min<int64_t>(c.k, c.d_sae), mp_ ? c.k : 0));
  }
  return absl::OkStatus();
}

absl::Status CudaEncoder::Impl::Init() {
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaSetDevice(options_.device));
  if (const cudaError_t image = internal::CheckKernelImage(); image != cudaSuccess) {
    cudaGetLastError();
    return absl::FailedPreconditionError(absl::StrCat(
        "CUDA device ", options_.device, " (", device_.name, ", compute capability ",
        device_.cc_major, ".", device_.cc_minor, ") cannot run this build's kernels: ",
        cudaGetErrorName(image), "; they are built for CMAKE_CUDA_ARCHITECTURES (default "
        "90a-real;90-virtual: Hopper code and compute_90 PTX); reconfigure with this device's "
        "architecture"));
  }
  SAEDICT_RETURN_IF_ERROR(UploadWeights());
  for (int i = 0; i < options_.lanes; ++i) {
    auto lane = std::make_unique<Lane>();
    SAEDICT_RETURN_IF_ERROR(InitLane(*lane));
    lanes_.push_back(std::move(lane));
  }
  absl::MutexLock lock(&mu_);
  for (auto& lane : lanes_) free_.push_back(lane.get());
  return absl::OkStatus();
}

absl::Status CudaEncoder::Impl::EnsureCapacity(Lane& lane, int64_t per_row, int32_t mp_k) const {
  std::atomic<int64_t>* counter = &device_bytes_;
  const int64_t entries = chunk_rows_ * std::max<int64_t>(per_row, 1);
  if (lane.csr_capacity < entries) {
    lane.Drain();  // idle between calls; cudaFree would wait anyway
    lane.csr_capacity = 0;
    for (int s = 0; s < 2; ++s) {
      SAEDICT_RETURN_IF_ERROR(lane.csr_idx[s].Allocate(
          Memory::kDevice, static_cast<size_t>(entries) * sizeof(uint32_t), counter));
      SAEDICT_RETURN_IF_ERROR(lane.csr_val[s].Allocate(
          Memory::kDevice, static_cast<size_t>(entries) * sizeof(float), counter));
    }
    lane.csr_capacity = entries;
  }
  if (mp_k > lane.mp_k) {
    lane.Drain();
    lane.mp_k = 0;
    const size_t list = static_cast<size_t>(chunk_rows_) * static_cast<size_t>(mp_k);
    SAEDICT_RETURN_IF_ERROR(lane.mp_idx.Allocate(Memory::kDevice, list * sizeof(uint32_t), counter));
    SAEDICT_RETURN_IF_ERROR(lane.mp_val.Allocate(Memory::kDevice, list * sizeof(float), counter));
    lane.mp_k = mp_k;
  }
  return absl::OkStatus();
}

absl::Status CudaEncoder::Impl::EnsureHostCapacity(Lane& lane, int64_t entries) const {
  if (entries <= lane.h_capacity) return absl::OkStatus();
  // Only called between chunks, when no copy into h_idx / h_val is pending.
  const int64_t grown = std::max(entries, lane.h_capacity + lane.h_capacity / 2);
  lane.h_capacity = 0;
  SAEDICT_RETURN_IF_ERROR(lane.h_idx.Allocate(
      Memory::kPinnedHost, static_cast<size_t>(grown) * sizeof(uint32_t), nullptr));
  SAEDICT_RETURN_IF_ERROR(
      lane.h_val.Allocate(Memory::kPinnedHost, static_cast<size_t>(grown) * sizeof(float), nullptr));
  lane.h_capacity = grown;
  return absl::OkStatus();
}

Lane* CudaEncoder::Impl::Acquire() const {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](std::vector<Lane*>* free_lanes) { return !free_lanes->empty(); }, &free_));
  Lane* lane = free_.back();
  free_.pop_back();
  return lane;
}

void CudaEncoder::Impl::Release(Lane* lane) const {
  absl::MutexLock lock(&mu_);
  free_.push_back(lane);
}

absl::Status CudaEncoder::Impl::Gemm(Lane& lane, const float* a, int64_t m, bool bf16) const {
  const DictionaryConfig& c = config();
  const int rows = static_cast<int>(m);
  const int d_in = static_cast<int>(c.d_in);
  const int d_sae = static_cast<int>(c.d_sae);
  const float one = 1.0f, zero = 0.0f;
  // Column-major view: pre^T [d_sae, m] = op(W) [d_sae, d_in] · a^T [d_in, m].
  // W_enc [d_in, d_sae] row-major is W_enc^T column-major (ld d_sae, no
  // transpose); W_dec [d_sae, d_in] row-major is W_dec^T column-major (ld
  // d_in), transposed to give W_dec.
  const cublasOperation_t op = mp_ ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int lda = mp_ ? d_in : d_sae;
  float* out = lane.pre.as<float>();
  if (!bf16) {
    SAEDICT_CUBLAS_RETURN_IF_ERROR(Blas().sgemm(lane.blas, op, CUBLAS_OP_N, d_sae, rows, d_in, &one,
                                               w_.as<float>(), lda, a, d_in, &zero, out, d_sae));
    return absl::OkStatus();
  }
  SAEDICT_CUDA_RETURN_IF_ERROR(
      internal::LaunchToBf16(a, lane.x_bf16.get(), m * c.d_in, lane.compute));
  SAEDICT_CUBLAS_RETURN_IF_ERROR(Blas().gemm_ex(
      lane.blas, op, CUBLAS_OP_N, d_sae, rows, d_in, &one, w_bf16_.get(), CUDA_R_16BF, lda,
      lane.x_bf16.get(), CUDA_R_16BF, d_in, &zero, out, CUDA_R_32F, d_sae, CUBLAS_COMPUTE_32F,
      CUBLAS_GEMM_DEFAULT));
  return absl::OkStatus();
}

absl::Status CudaEncoder::Impl::MatchingPursuit(Lane& lane, int slot, int64_t m, int32_t k,
                                                bool bf16) const {
  const DictionaryConfig& c = config();
  float* residual = lane.x[slot].as<float>();
  MpParams p;
  p.d_in = c.d_in;
  p.d_sae = c.d_sae;
  p.w_dec = w_.as<float>();
  p.norm_sq = norm_sq_.as<float>();
  p.threshold = c.mp_residual_threshold;
  p.k = k;
  auto* count = lane.mp_count.as<int32_t>();
  auto* active = lane.mp_active.as<uint8_t>();
  auto* active_rows = lane.mp_active_rows.as<unsigned int>();
  SAEDICT_CUDA_RETURN_IF_ERROR(internal::LaunchMpInit(m, count, active, active_rows, lane.compute));
  for (int32_t step = 0; step < k; ++step) {
    SAEDICT_RETURN_IF_ERROR(Gemm(lane, residual, m, bf16));
    SAEDICT_CUDA_RETURN_IF_ERROR(internal::LaunchMpStep(p, lane.pre.as<float>(), m, residual,
                                                        lane.mp_idx.as<uint32_t>(),
                                                        lane.mp_val.as<float>(), count, active,
                                                        active_rows, lane.compute));
    // With a residual threshold rows stop early: skip the remaining GEMMs
    // once every row has (one small synchronous read per step).
    if (p.threshold > 0.0 && step + 1 < k) {
      auto* host_rows = lane.h_active_rows.as<unsigned int>();
      SAEDICT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host_rows, active_rows, sizeof(unsigned int),
                                                   cudaMemcpyDeviceToHost, lane.compute));
      SAEDICT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(lane.compute));
      if (*host_rows == 0) break;
    }
  }
  SAEDICT_CUDA_RETURN_IF_ERROR(internal::LaunchMpSortCount(
      m, k, lane.mp_idx.as<uint32_t>(), lane.mp_val.as<float>(), count,
      lane.counts.as<unsigned long long>(), lane.compute));
  return absl::OkStatus();
}

absl::Status CudaEncoder::Impl::Stage(Lane& lane, absl::Span<const float> x, int64_t n,
                                      int64_t chunk, int64_t c, int32_t k, bool bf16) const {
  const DictionaryConfig& cfg = config();
  const int s = static_cast<int>(c & 1);
  const int64_t r0 = c * chunk;
  const int64_t m = std::min(chunk, n - r0);

  // Host: x' of the chunk into pinned memory, once chunk c-2's copy of it is done.
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(lane.h2d_done[s]));
  SAEDICT_RETURN_IF_ERROR(cpu_->PreprocessRows(x, r0, r0 + m, lane.h_x[s].as<float>()));

  // Copy stream: H2D once chunk c-2's kernels stopped reading x[s].
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(lane.copy, lane.compute_done[s], 0));
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(lane.x[s].get(), lane.h_x[s].get(),
                                               static_cast<size_t>(m * cfg.d_in) * sizeof(float),
                                               cudaMemcpyHostToDevice, lane.copy));
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaEventRecord(lane.h2d_done[s], lane.copy));

  // Compute stream: after the H2D and after chunk c-2's CSR left row_ptr/csr[s].
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(lane.compute, lane.h2d_done[s], 0));
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(lane.compute, lane.d2h_done[s], 0));
  auto* counts = lane.counts.as<unsigned long long>();
  if (mp_) {
    SAEDICT_RETURN_IF_ERROR(MatchingPursuit(lane, s, m, k, bf16));
  } else {
    SAEDICT_RETURN_IF_ERROR(Gemm(lane, lane.x[s].as<float>(), m, bf16));
    ActParams p;
    switch (cfg.architecture) {
      case Architecture::kStandard:
        p.act = internal::kActStandard;
        break;
      case Architecture::kTopK:
        p.act = internal::kActTopK;
        break;
      case Architecture::kJumpReLU:
        p.act = internal::kActJumpReLU;
        break;
      case Architecture::kGated:
        p.act = internal::kActGated;
        break;
      case Architecture::kMatchingPursuit:
        return absl::InternalError("matching pursuit in the activation path");
    }
    p.d_sae = cfg.d_sae;
    p.b_enc = b_enc_.as<float>();
    p.threshold = threshold_.as<float>();
    p.scale = scale_.as<float>();
    p.b_gate = b_gate_.as<float>();
    p.b_mag = b_mag_.as<float>();
    p.k = k;
    SAEDICT_CUDA_RETURN_IF_ERROR(internal::LaunchActivateSelect(
        p, lane.pre.as<float>(), m, lane.sel.as<RowSelect>(), counts, lane.compute));
  }
  SAEDICT_CUDA_RETURN_IF_ERROR(
      cudaMemsetAsync(counts + m, 0, sizeof(unsigned long long), lane.compute));
  auto* row_ptr = lane.row_ptr[s].as<unsigned long long>();
  SAEDICT_CUDA_RETURN_IF_ERROR(internal::LaunchExclusiveScan(
      lane.scan_temp.get(), lane.scan_temp.bytes(), counts, row_ptr, m + 1, lane.compute));
  if (mp_) {
    SAEDICT_CUDA_RETURN_IF_ERROR(internal::LaunchMpWrite(
        m, k, lane.mp_idx.as<uint32_t>(), lane.mp_val.as<float>(), lane.mp_count.as<int32_t>(),
        row_ptr, lane.csr_idx[s].as<uint32_t>(), lane.csr_val[s].as<float>(), lane.compute));
  } else {
    SAEDICT_CUDA_RETURN_IF_ERROR(internal::LaunchCompact(
        lane.pre.as<float>(), m, cfg.d_sae, lane.sel.as<RowSelect>(), row_ptr,
        lane.csr_idx[s].as<uint32_t>(), lane.csr_val[s].as<float>(), lane.compute));
  }
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(lane.h_row_ptr[s].get(), row_ptr,
                                               static_cast<size_t>(m + 1) * sizeof(unsigned long long),
                                               cudaMemcpyDeviceToHost, lane.compute));
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaEventRecord(lane.compute_done[s], lane.compute));
  return absl::OkStatus();
}

absl::Status CudaEncoder::Impl::Collect(Lane& lane, int64_t n, int64_t chunk, int64_t c,
                                        SparseCodes* codes) const {
  const int s = static_cast<int>(c & 1);
  const int64_t m = std::min(chunk, n - c * chunk);
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(lane.compute_done[s]));
  const auto* offsets = lane.h_row_ptr[s].as<unsigned long long>();
  const unsigned long long nnz = offsets[m];
  if (offsets[0] != 0 || nnz > static_cast<unsigned long long>(lane.csr_capacity)) {
    return absl::InternalError(absl::StrCat("the CUDA backend counted ", nnz,
                                            " entries for a chunk of ", m, " rows, capacity ",
                                            lane.csr_capacity, " (a bug)"));
  }
  SAEDICT_RETURN_IF_ERROR(EnsureHostCapacity(lane, static_cast<int64_t>(nnz)));
  if (nnz > 0) {
    SAEDICT_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(lane.copy, lane.compute_done[s], 0));
    SAEDICT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(lane.h_idx.get(), lane.csr_idx[s].get(),
                                                 nnz * sizeof(uint32_t), cudaMemcpyDeviceToHost,
                                                 lane.copy));
    SAEDICT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(lane.h_val.get(), lane.csr_val[s].get(),
                                                 nnz * sizeof(float), cudaMemcpyDeviceToHost,
                                                 lane.copy));
  }
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaEventRecord(lane.d2h_done[s], lane.copy));
  SAEDICT_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(lane.d2h_done[s]));
  const uint64_t base = codes->indices.size();
  for (int64_t i = 1; i <= m; ++i) codes->row_offsets.push_back(base + offsets[i]);
  if (nnz > 0) {
    const auto* idx = lane.h_idx.as<uint32_t>();
    const auto* val = lane.h_val.as<float>();
    codes->indices.insert(codes->indices.end(), idx, idx + nnz);
    codes->values.insert(codes->values.end(), val, val + nnz);
  }
  return absl::OkStatus();
}

absl::Status CudaEncoder::Impl::RunChunks(Lane& lane, absl::Span<const float> x, int64_t n,
                                          int32_t k, bool bf16, SparseCodes* codes) const {
  const DictionaryConfig& c = config();
  const int64_t per_row = k > 0 ? std::min<int64_t>(k, c.d_sae) : c.d_sae;
  SAEDICT_RETURN_IF_ERROR(EnsureCapacity(lane, per_row, mp_ ? k : 0));
  if (k > 0) {
    codes->indices.reserve(static_cast<size_t>(n) * per_row);
    codes->values.reserve(static_cast<size_t>(n) * per_row);
  }
  codes->row_offsets.reserve(static_cast<size_t>(n) + 1);
  const int64_t chunk = std::min(chunk_rows_, n);
  const int64_t chunks = (n + chunk - 1) / chunk;
  for (int64_t i = 0; i <= chunks; ++i) {
    if (i < chunks) SAEDICT_RETURN_IF_ERROR(Stage(lane, x, n, chunk, i, k, bf16));
    if (i > 0) SAEDICT_RETURN_IF_ERROR(Collect(lane, n, chunk, i - 1, codes));
  }
  return absl::OkStatus();
}

absl::StatusOr<EncodeResult> CudaEncoder::Impl::Encode(absl::Span<const float> x, int64_t n,
                                                       const EncodeOptions& options) const {
  SAEDICT_RETURN_IF_ERROR(cpu_->ValidateEncodeInput(x, n, options));
  const DictionaryConfig& c = config();
  const bool bf16 = options.compute_mode == ComputeMode::kBF16;
  if (bf16 && !w_bf16_) {
    return absl::UnimplementedError(
        "compute_mode BF16 is not available: this CUDA encoder was created with "
        "keep_bf16_weights=false; use F32");
  }
  EncodeResult result;
  result.compute_mode = bf16 ? ComputeMode::kBF16 : ComputeMode::kF32;
  SparseCodes& codes = result.codes;
  codes.num_rows = n;
  codes.num_features = c.d_sae;
  codes.row_offsets.assign(1, 0);
  codes.indices.clear();
  codes.values.clear();
  const bool k_architecture =
      c.architecture == Architecture::kTopK || c.architecture == Architecture::kMatchingPursuit;
  const int32_t k = k_architecture && options.top_k == 0 ? c.k : options.top_k;
  if (n > 0) {
    Lane* lane = Acquire();
    struct Lease {
      const Impl* impl;
      Lane* lane;
      ~Lease() { impl->Release(lane); }
    } lease{this, lane};
    cudaGetLastError();  // an old error of this thread is not this call's
    SAEDICT_CUDA_RETURN_IF_ERROR(cudaSetDevice(options_.device));
    const absl::Status status = RunChunks(*lane, x, n, k, bf16, &codes);
    if (!status.ok()) {
      lane->Drain();
      return status;
    }
  }
  SAEDICT_RETURN_IF_ERROR(CheckStructure(codes));
  SAEDICT_RETURN_IF_ERROR(cpu_->FinishEncode(x, n, options, &result));
  return result;
}

absl::StatusOr<std::unique_ptr<CudaEncoder>> CudaEncoder::Create(
    std::shared_ptr<const Encoder> cpu, const CudaEncoderOptions& options) {
  if (cpu == nullptr) return absl::InvalidArgumentError("CudaEncoder: the CPU encoder is null");
  if (options.chunk_rows < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("CudaEncoder: chunk_rows must be >= 1, got ", options.chunk_rows));
  }
  if (options.lanes < 1 || options.lanes > kMaxLanes) {
    return absl::InvalidArgumentError(
        absl::StrCat("CudaEncoder: lanes must be in [1, ", kMaxLanes, "], got ", options.lanes));
  }
  int count = 0;
  SAEDICT_RETURN_IF_ERROR(CountDevices(&count));
  if (options.device < 0 || options.device >= count) {
    return absl::InvalidArgumentError(absl::StrCat("CudaEncoder: device ", options.device,
                                                   " out of range: ", count, " CUDA device(s)"));
  }
  SAEDICT_ASSIGN_OR_RETURN(DeviceInfo info, GetDeviceInfo(options.device));
  SAEDICT_RETURN_IF_ERROR(LoadCublas().status());
  auto impl = std::make_unique<Impl>(std::move(cpu), options, std::move(info));
  SAEDICT_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<CudaEncoder>(new CudaEncoder(std::move(impl)));
}

CudaEncoder::CudaEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaEncoder::~CudaEncoder() = default;

absl::StatusOr<EncodeResult> CudaEncoder::Encode(absl::Span<const float> x, int64_t n,
                                                 const EncodeOptions& options) const {
  return impl_->Encode(x, n, options);
}

int64_t CudaEncoder::device_bytes() const { return impl_->device_bytes_.load(); }
const DeviceInfo& CudaEncoder::device() const { return impl_->device_; }
const Encoder& CudaEncoder::cpu() const { return *impl_->cpu_; }
int64_t CudaEncoder::chunk_rows() const { return impl_->chunk_rows_; }

}  // namespace saedict::engine::cuda
