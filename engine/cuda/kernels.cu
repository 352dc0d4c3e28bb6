// Device kernels of the CUDA encode backend (see kernels.h).
//
// Activation and selection: one 256-thread block per row. Pass 0 applies
// the activation in place (explicitly rounded __fadd_rn / __fmul_rn, so
// the same GEMM output gives the CPU's bits: the file is also compiled with
// --fmad=false) and counts the positive values. When the row keeps k of
// more than k positives, four 8-bit radix passes over the float bits of the
// positive values (bits of positive floats order like the floats) find the
// k-th largest value's bits exactly, and how many of the values equal to it
// are kept; the histograms live in shared memory, with warp-aggregated
// increments (__match_any_sync) because most values of a row share their
// top bits. The row itself stays in global memory (L2): d_sae may exceed
// shared memory.
//
// Compaction: one block per row walks the row in tiles of 256 features in
// ascending order; a block scan of the "kept" flags (and, for the values
// equal to the k-th, a scan of those first, so the lowest indices win the
// tie like the CPU's SelectTopK) gives each kept feature its slot, so
// indices come out ascending without a sort.
//
// Matching pursuit step: one block per row: argmax of the scores (larger
// value, then lower index: std::max_element's first maximum), the float64
// inner product with the chosen atom, the float32 residual update
// r_j = r_j - coef * w_j (rounded product, then difference, as the CPU) and
// the float64 squared norm for the stop rule. Reductions run in a tree, not
// the CPU's sequential order; in float64 that changes the coefficient's
// float32 rounding only in rare last-bit cases.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <climits>
#include <cstdint>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_scan.cuh>

#include "engine/cuda/kernels.h"

namespace saedict::engine::cuda::internal {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float Activate(const ActParams& p, int64_t j, float c) {
  switch (p.act) {
    case kActStandard:
      return __fadd_rn(c, p.b_enc[j]);
    case kActTopK: {
      const float h = __fadd_rn(c, p.b_enc[j]);
      return p.scale != nullptr ? __fmul_rn(h, p.scale[j]) : h;
    }
    case kActJumpReLU: {
      const float h = __fadd_rn(c, p.b_enc[j]);
      return h > p.threshold[j] ? h : 0.0f;
    }
    case kActGated: {
      const float magnitude = __fadd_rn(__fmul_rn(c, p.scale[j]), p.b_mag[j]);
      return __fadd_rn(c, p.b_gate[j]) > 0.0f ? magnitude : 0.0f;
    }
    default:
      return 0.0f;
  }
}

// The selection key: the bits of a positive value (they order like the
// values), 0 for everything else (0, negatives, NaN: never kept).
__device__ __forceinline__ uint32_t Key(float v) { return v > 0.0f ? __float_as_uint(v) : 0u; }

__global__ void __launch_bounds__(kThreads)
    ActivateSelectKernel(ActParams p, float* __restrict__ pre, RowSelect* __restrict__ sel,
                         unsigned long long* __restrict__ counts) {
  using Reduce = cub::BlockReduce<unsigned int, kThreads>;
  __shared__ typename Reduce::TempStorage reduce_storage;
  __shared__ unsigned int hist[256];
  __shared__ unsigned int shared_total;
  __shared__ unsigned int shared_bin;
  __shared__ unsigned int shared_rank;

  const int64_t r = blockIdx.x;
  const int64_t d = p.d_sae;
  float* row = pre + r * d;

  unsigned int positives = 0;
  for (int64_t j = threadIdx.x; j < d; j += kThreads) {
    const float v = Activate(p, j, row[j]);
    row[j] = v;
    positives += v > 0.0f ? 1u : 0u;
  }
  const unsigned int total = Reduce(reduce_storage).Sum(positives);
  if (threadIdx.x == 0) shared_total = total;
  __syncthreads();
  const unsigned int num_positive = shared_total;
  const bool capped = p.k > 0 && p.k < d && num_positive > static_cast<unsigned int>(p.k);
  if (!capped) {  // block-uniform
    if (threadIdx.x == 0) {
      counts[r] = num_positive;
      sel[r] = RowSelect{0u, 0u};
    }
    return;
  }

  // rank: the position (1-based, from the largest) of the wanted value
  // among the values whose key matches `prefix` on `mask`.
  uint32_t prefix = 0, mask = 0;
  unsigned int rank = static_cast<unsigned int>(p.k);
  const unsigned int lane = threadIdx.x & 31u;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += kThreads) hist[b] = 0;
    __syncthreads();
    // j0 is block-uniform, so every warp runs whole for __match_any_sync.
    for (int64_t j0 = 0; j0 < d; j0 += kThreads) {
      const int64_t j = j0 + threadIdx.x;
      const uint32_t key = j < d ? Key(row[j]) : 0u;
      const bool match = key != 0u && (key & mask) == prefix;
      const unsigned int bin = match ? (key >> shift) & 255u : 256u;
      const unsigned int peers = __match_any_sync(0xffffffffu, bin);
      if (match && lane == static_cast<unsigned int>(__ffs(peers) - 1)) {
        atomicAdd(&hist[bin], static_cast<unsigned int>(__popc(peers)));
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      unsigned int above = 0;
      int b = 255;
      for (; b > 0; --b) {
        if (above + hist[b] >= rank) break;
        above += hist[b];
      }
      shared_bin = static_cast<unsigned int>(b);
      shared_rank = rank - above;
    }
    __syncthreads();
    prefix |= shared_bin << shift;
    mask |= 255u << shift;
    rank = shared_rank;
    __syncthreads();  // hist and shared_* are rewritten by the next pass
  }
  if (threadIdx.x == 0) {
    counts[r] = static_cast<unsigned long long>(p.k);
    sel[r] = RowSelect{prefix, rank};
  }
}

__global__ void __launch_bounds__(kThreads)
    CompactKernel(const float* __restrict__ act, int64_t d, const RowSelect* __restrict__ sel,
                  const unsigned long long* __restrict__ row_ptr, uint32_t* __restrict__ indices,
                  float* __restrict__ values) {
  using Scan = cub::BlockScan<unsigned int, kThreads>;
  __shared__ typename Scan::TempStorage scan_storage;
  const int64_t r = blockIdx.x;
  const float* row = act + r * d;
  const RowSelect s = sel[r];
  const unsigned long long base = row_ptr[r];
  const unsigned long long want = row_ptr[r + 1] - base;
  unsigned long long written = 0;  // block-uniform
  unsigned int ties_seen = 0;      // block-uniform
  for (int64_t j0 = 0; j0 < d && written < want; j0 += kThreads) {
    const int64_t j = j0 + threadIdx.x;
    const float v = j < d ? row[j] : 0.0f;
    const uint32_t key = Key(v);
    const unsigned int tie = (s.need_eq > 0 && key != 0u && key == s.key) ? 1u : 0u;
    unsigned int tie_rank = 0, tie_total = 0;
    Scan(scan_storage).ExclusiveSum(tie, tie_rank, tie_total);
    __syncthreads();
    const unsigned int take = (key > s.key || (tie != 0u && ties_seen + tie_rank < s.need_eq)) ? 1u : 0u;
    unsigned int pos = 0, taken = 0;
    Scan(scan_storage).ExclusiveSum(take, pos, taken);
    __syncthreads();
    if (take != 0u && written + pos < want) {
      indices[base + written + pos] = static_cast<uint32_t>(j);
      values[base + written + pos] = v;
    }
    written += taken;
    ties_seen += tie_total;
  }
}

__global__ void ToBf16Kernel(const float* __restrict__ in, __nv_bfloat16* __restrict__ out,
                             int64_t count) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    out[i] = __float2bfloat16_rn(in[i]);
  }
}

__global__ void MpInitKernel(int64_t m, int32_t* count, uint8_t* active, unsigned int* active_rows) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r == 0) *active_rows = static_cast<unsigned int>(m);
  if (r < m) {
    count[r] = 0;
    active[r] = 1;
  }
}

struct ArgMax {
  float value;
  int64_t index;
};

struct BetterOf {
  __device__ __forceinline__ ArgMax operator()(const ArgMax& a, const ArgMax& b) const {
    return (a.value > b.value || (a.value == b.value && a.index < b.index)) ? a : b;
  }
};

__global__ void __launch_bounds__(kThreads)
    MpStepKernel(MpParams p, const float* __restrict__ scores, float* __restrict__ residual,
                 uint32_t* __restrict__ idx, float* __restrict__ val, int32_t* __restrict__ count,
                 uint8_t* __restrict__ active, unsigned int* __restrict__ active_rows) {
  using ArgReduce = cub::BlockReduce<ArgMax, kThreads>;
  using SumReduce = cub::BlockReduce<double, kThreads>;
  __shared__ union {
    typename ArgReduce::TempStorage arg;
    typename SumReduce::TempStorage sum;
  } storage;
  __shared__ ArgMax shared_best;
  __shared__ double shared_sum;

  const int64_t r = blockIdx.x;
  if (active[r] == 0) return;  // block-uniform
  const int64_t d_in = p.d_in;
  const int64_t d_sae = p.d_sae;
  auto stop = [&]() {
    if (threadIdx.x == 0) {
      active[r] = 0;
      atomicSub(active_rows, 1u);
    }
  };

  // Signed argmax, the first maximum (each thread scans ascending features
  // and keeps strictly larger values; the reduction prefers lower indices).
  const float* s = scores + r * d_sae;
  ArgMax mine{-FLT_MAX, d_sae};
  for (int64_t j = threadIdx.x; j < d_sae; j += kThreads) {
    const float v = s[j];
    if (v > mine.value || (v == mine.value && mine.index == d_sae)) mine = ArgMax{v, j};
  }
  const ArgMax best = ArgReduce(storage.arg).Reduce(mine, BetterOf());
  if (threadIdx.x == 0) shared_best = best;
  __syncthreads();
  const ArgMax chosen = shared_best;
  if (chosen.index >= d_sae || !(chosen.value > 0.0f)) {
    stop();
    return;
  }

  float* res = residual + r * d_in;
  const float* w = p.w_dec + chosen.index * d_in;
  double part = 0.0;
  for (int64_t j = threadIdx.x; j < d_in; j += kThreads) {
    part += static_cast<double>(res[j]) * static_cast<double>(w[j]);
  }
  const double dot = SumReduce(storage.sum).Sum(part);
  if (threadIdx.x == 0) shared_sum = dot;
  __syncthreads();
  const double inner = shared_sum;
  if (!(inner > 0.0)) {
    stop();
    return;
  }
  const float coef = static_cast<float>(inner / static_cast<double>(p.norm_sq[chosen.index]));
  if (threadIdx.x == 0) {
    uint32_t* row_idx = idx + r * p.k;
    float* row_val = val + r * p.k;
    const int32_t n = count[r];
    int32_t e = 0;
    while (e < n && row_idx[e] != static_cast<uint32_t>(chosen.index)) ++e;
    if (e < n) {
      row_val[e] = __fadd_rn(row_val[e], coef);
    } else if (n < p.k) {
      row_idx[n] = static_cast<uint32_t>(chosen.index);
      row_val[n] = coef;
      count[r] = n + 1;
    }
  }
  double sq = 0.0;
  for (int64_t j = threadIdx.x; j < d_in; j += kThreads) {
    const float updated = __fsub_rn(res[j], __fmul_rn(coef, w[j]));
    res[j] = updated;
    sq += static_cast<double>(updated) * static_cast<double>(updated);
  }
  __syncthreads();  // storage.sum is reused
  const double norm_sq = SumReduce(storage.sum).Sum(sq);
  if (threadIdx.x == 0) shared_sum = norm_sq;
  __syncthreads();
  if (p.threshold > 0.0 && sqrt(shared_sum) < p.threshold) stop();
}

__global__ void MpSortCountKernel(int64_t m, int32_t k, uint32_t* __restrict__ idx,
                                  float* __restrict__ val, const int32_t* __restrict__ count,
                                  unsigned long long* __restrict__ counts) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= m) return;
  uint32_t* row_idx = idx + r * k;
  float* row_val = val + r * k;
  const int32_t n = count[r];
  for (int32_t a = 1; a < n; ++a) {  // insertion sort by feature (features are distinct)
    const uint32_t key = row_idx[a];
    const float v = row_val[a];
    int32_t b = a - 1;
    while (b >= 0 && row_idx[b] > key) {
      row_idx[b + 1] = row_idx[b];
      row_val[b + 1] = row_val[b];
      --b;
    }
    row_idx[b + 1] = key;
    row_val[b + 1] = v;
  }
  unsigned long long nonzero = 0;
  for (int32_t e = 0; e < n; ++e) nonzero += row_val[e] != 0.0f ? 1u : 0u;
  counts[r] = nonzero;
}

__global__ void MpWriteKernel(int64_t m, int32_t k, const uint32_t* __restrict__ idx,
                              const float* __restrict__ val, const int32_t* __restrict__ count,
                              const unsigned long long* __restrict__ row_ptr,
                              uint32_t* __restrict__ indices, float* __restrict__ values) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= m) return;
  const uint32_t* row_idx = idx + r * k;
  const float* row_val = val + r * k;
  unsigned long long pos = row_ptr[r];
  const unsigned long long end = row_ptr[r + 1];
  for (int32_t e = 0; e < count[r] && pos < end; ++e) {
    if (row_val[e] == 0.0f) continue;
    indices[pos] = row_idx[e];
    values[pos] = row_val[e];
    ++pos;
  }
}

bool BadRows(int64_t m) { return m <= 0 || m > INT_MAX; }

unsigned int Blocks(int64_t items, int threads) {
  return static_cast<unsigned int>((items + threads - 1) / threads);
}

}  // namespace

cudaError_t CheckKernelImage() {
  cudaFuncAttributes attributes;
  return cudaFuncGetAttributes(&attributes, ActivateSelectKernel);
}

cudaError_t LaunchActivateSelect(const ActParams& params, float* pre, int64_t m, RowSelect* sel,
                                 unsigned long long* counts, cudaStream_t stream) {
  if (BadRows(m)) return cudaErrorInvalidValue;
  ActivateSelectKernel<<<static_cast<unsigned int>(m), kThreads, 0, stream>>>(params, pre, sel,
                                                                              counts);
  return cudaGetLastError();
}

cudaError_t ScanTempBytes(int64_t items, size_t* bytes) {
  if (items <= 0 || items > INT_MAX) return cudaErrorInvalidValue;
  *bytes = 0;
  return cub::DeviceScan::ExclusiveSum(nullptr, *bytes, static_cast<const unsigned long long*>(nullptr),
                                       static_cast<unsigned long long*>(nullptr),
                                       static_cast<int>(items));
}

cudaError_t LaunchExclusiveScan(void* temp, size_t temp_bytes, const unsigned long long* in,
                                unsigned long long* out, int64_t items, cudaStream_t stream) {
  if (items <= 0 || items > INT_MAX) return cudaErrorInvalidValue;
  const cudaError_t status = cub::DeviceScan::ExclusiveSum(temp, temp_bytes, in, out,
                                                           static_cast<int>(items), stream);
  if (status != cudaSuccess) return status;
  return cudaGetLastError();
}

cudaError_t LaunchCompact(const float* act, int64_t m, int64_t d_sae, const RowSelect* sel,
                          const unsigned long long* row_ptr, uint32_t* indices, float* values,
                          cudaStream_t stream) {
  if (BadRows(m)) return cudaErrorInvalidValue;
  CompactKernel<<<static_cast<unsigned int>(m), kThreads, 0, stream>>>(act, d_sae, sel, row_ptr,
                                                                       indices, values);
  return cudaGetLastError();
}

cudaError_t LaunchToBf16(const float* in, void* out, int64_t count, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  const int64_t blocks = count / kThreads + 1;
  ToBf16Kernel<<<static_cast<unsigned int>(blocks < 65536 ? blocks : 65536), kThreads, 0,
                 stream>>>(in, static_cast<__nv_bfloat16*>(out), count);
  return cudaGetLastError();
}

cudaError_t LaunchMpInit(int64_t m, int32_t* count, uint8_t* active, unsigned int* active_rows,
                         cudaStream_t stream) {
  if (BadRows(m)) return cudaErrorInvalidValue;
  MpInitKernel<<<Blocks(m, kThreads), kThreads, 0, stream>>>(m, count, active, active_rows);
  return cudaGetLastError();
}

cudaError_t LaunchMpStep(const MpParams& params, const float* scores, int64_t m, float* residual,
                         uint32_t* idx, float* val, int32_t* count, uint8_t* active,
                         unsigned int* active_rows, cudaStream_t stream) {
  if (BadRows(m)) return cudaErrorInvalidValue;
  MpStepKernel<<<static_cast<unsigned int>(m), kThreads, 0, stream>>>(
      params, scores, residual, idx, val, count, active, active_rows);
  return cudaGetLastError();
}

cudaError_t LaunchMpSortCount(int64_t m, int32_t k, uint32_t* idx, float* val, const int32_t* count,
                              unsigned long long* counts, cudaStream_t stream) {
  if (BadRows(m)) return cudaErrorInvalidValue;
  constexpr int kRowThreads = 128;
  MpSortCountKernel<<<Blocks(m, kRowThreads), kRowThreads, 0, stream>>>(m, k, idx, val, count,
                                                                         counts);
  return cudaGetLastError();
}

cudaError_t LaunchMpWrite(int64_t m, int32_t k, const uint32_t* idx, const float* val,
                          const int32_t* count, const unsigned long long* row_ptr,
                          uint32_t* indices, float* values, cudaStream_t stream) {
  if (BadRows(m)) return cudaErrorInvalidValue;
  constexpr int kRowThreads = 128;
  MpWriteKernel<<<Blocks(m, kRowThreads), kRowThreads, 0, stream>>>(m, k, idx, val, count, row_ptr,
                                                                    indices, values);
  return cudaGetLastError();
}

}  // namespace saedict::engine::cuda::internal
