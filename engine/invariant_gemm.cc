// InvariantGemm kernels and packing (see invariant_gemm.h).
//
// Layout of the packed B: panel q holds columns [q·W, q·W + W) for every p
// in [0, k), row after row: packed[(q·k + p)·W + t] = B[p][q·W + t], zero
// past n. A micro-kernel computes an MR × W block of C: MR rows of A are
// broadcast one element at a time against one packed row of the panel, so
// each accumulator lane runs the contract's FMA chain in ascending p. Rows
// left over at the bottom (fewer than MR) use the same kernel instantiated
// for fewer rows, and columns past n are masked on store, so edge elements
// follow the same chain as interior ones.
//
// Loop order: a thread takes a range of panels; for each panel it walks all
// row blocks (the panel, k·W floats, stays in L2 while the rows stream past).
#include "engine/invariant_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "engine/parallel.h"

namespace saedict::engine {
namespace {

constexpr int64_t kAlignment = 64;

// ---- AVX-512: 32 columns (two zmm) × up to 6 rows ---------------------------
template <int MR>
__attribute__((target("avx512f,fma"))) void TileAvx512(const float* a, int64_t lda,
                                                       const float* panel, int64_t k, float* c,
                                                       int64_t ldc, int cols) {
  __m512 acc0[MR];
  __m512 acc1[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    acc0[r] = _mm512_setzero_ps();
    acc1[r] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < k; ++p) {
    const __m512 b0 = _mm512_load_ps(panel + p * 32);
    const __m512 b1 = _mm512_load_ps(panel + p * 32 + 16);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + p]);
      acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
    }
  }
  if (cols == 32) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      _mm512_storeu_ps(c + r * ldc, acc0[r]);
      _mm512_storeu_ps(c + r * ldc + 16, acc1[r]);
    }
    return;
  }
  const __mmask16 m0 = cols >= 16 ? __mmask16(0xffff) : __mmask16((1u << cols) - 1);
  const __mmask16 m1 = cols <= 16 ? __mmask16(0) : __mmask16((1u << (cols - 16)) - 1);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
    _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
  }
}

// ---- AVX2 + FMA: 16 columns (two ymm) × up to 6 rows ------------------------
template <int MR>
__attribute__((target("avx2,fma"))) void TileAvx2(const float* a, int64_t lda, const float* panel,
                                                  int64_t k, float* c, int64_t ldc, int cols) {
  __m256 acc0[MR];
  __m256 acc1[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    acc0[r] = _mm256_setzero_ps();
    acc1[r] = _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < k; ++p) {
    const __m256 b0 = _mm256_load_ps(panel + p * 16);
    const __m256 b1 = _mm256_load_ps(panel + p * 16 + 8);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + p);
      acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
  }
  if (cols == 16) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      _mm256_storeu_ps(c + r * ldc, acc0[r]);
      _mm256_storeu_ps(c + r * ldc + 8, acc1[r]);
    }
    return;
  }
  alignas(32) float tmp[16];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    _mm256_store_ps(tmp, acc0[r]);
    _mm256_store_ps(tmp + 8, acc1[r]);
    std::memcpy(c + r * ldc, tmp, sizeof(float) * cols);
  }
}

// ---- Portable: 16 columns × up to 4 rows, std::fma (correctly rounded) ------
template <int MR>
void TilePortable(const float* a, int64_t lda, const float* panel, int64_t k, float* c, int64_t ldc,
                  int cols) {
  float acc[MR][16] = {};
  for (int64_t p = 0; p < k; ++p) {
    const float* b = panel + p * 16;
    for (int r = 0; r < MR; ++r) {
      const float av = a[r * lda + p];
      for (int t = 0; t < 16; ++t) acc[r][t] = std::fma(av, b[t], acc[r][t]);
    }
  }
  for (int r = 0; r < MR; ++r) std::memcpy(c + r * ldc, acc[r], sizeof(float) * cols);
}

// ---- Block kernels: 8 columns of a panel for up to 8 scattered rows --------
// Row r continues the chain held in c_rows[r][0, 8) over p in [0, k) of
// a_rows[r] and writes it back (the caller offsets a_rows and `panel` to
// the p range). `panel` points at the block's first column inside its packed
// panel at the range's first p; `stride` is the panel width. Each lane runs
// the same FMA chain as the tiles above. c_rows hold 8 floats each. One ymm
// kernel serves the AVX-512 and AVX2 kernels: on CPUs that split a zmm FMA
// into two ymm halves (AMD Zen 4) 16-column zmm blocks cost twice as much
// for the one or two wanted columns a block usually holds (FAST_EXACT,
// 2304x16384 k=64, 4096 rows: 335 -> 289 ms for the bf16 screen's 169
// blocks per row).
template <int MR>
__attribute__((target("avx2,fma"))) void BlockAvx2(const float* const* a_rows, const float* panel,
                                                   int64_t stride, int64_t k,
                                                   float* const* c_rows) {
  __m256 acc[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r] = _mm256_loadu_ps(c_rows[r]);
  for (int64_t p = 0; p < k; ++p) {
    const __m256 b = _mm256_loadu_ps(panel + p * stride);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a_rows[r] + p), b, acc[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) _mm256_storeu_ps(c_rows[r], acc[r]);
}

template <int MR>
void BlockPortable(const float* const* a_rows, const float* panel, int64_t stride, int64_t k,
                   float* const* c_rows) {
  float acc[MR][InvariantGemm::kBlockWidth];
  for (int r = 0; r < MR; ++r) std::memcpy(acc[r], c_rows[r], sizeof(acc[r]));
  for (int64_t p = 0; p < k; ++p) {
    const float* b = panel + p * stride;
    for (int r = 0; r < MR; ++r) {
      const float av = a_rows[r][p];
      for (int t = 0; t < InvariantGemm::kBlockWidth; ++t)
        acc[r][t] = std::fma(av, b[t], acc[r][t]);
    }
  }
  for (int r = 0; r < MR; ++r) std::memcpy(c_rows[r], acc[r], sizeof(acc[r]));
}

using BlockFn = void (*)(const float* const*, const float*, int64_t, int64_t, float* const*);

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, int);

struct KernelInfo {
  int64_t width;      // panel width
  int rows;           // MR of the full tile
  TileFn tiles[7];    // tiles[r] handles r rows, 1 <= r <= rows
  const char* name;
  int block_rows;     // MR of the block kernel
  BlockFn blocks[9];  // blocks[r] handles r rows, 1 <= r <= block_rows
};

const KernelInfo& Info(InvariantGemm::Kernel kernel) {
  static const KernelInfo avx512{32,
                                 6,
                                 {nullptr, TileAvx512<1>, TileAvx512<2>, TileAvx512<3>,
                                  TileAvx512<4>, TileAvx512<5>, TileAvx512<6>},
                                 "avx512",
                                 8,
                                 {nullptr, BlockAvx2<1>, BlockAvx2<2>, BlockAvx2<3>, BlockAvx2<4>,
                                  BlockAvx2<5>, BlockAvx2<6>, BlockAvx2<7>, BlockAvx2<8>}};
  static const KernelInfo avx2{
      16,
      6,
      {nullptr, TileAvx2<1>, TileAvx2<2>, TileAvx2<3>, TileAvx2<4>, TileAvx2<5>, TileAvx2<6>},
      "avx2",
      8,
      {nullptr, BlockAvx2<1>, BlockAvx2<2>, BlockAvx2<3>, BlockAvx2<4>, BlockAvx2<5>, BlockAvx2<6>,
       BlockAvx2<7>, BlockAvx2<8>}};
  static const KernelInfo portable{16,
                                   4,
                                   {nullptr, TilePortable<1>, TilePortable<2>, TilePortable<3>,
                                    TilePortable<4>, nullptr, nullptr},
                                   "portable",
                                   4,
                                   {nullptr, BlockPortable<1>, BlockPortable<2>, BlockPortable<3>,
                                    BlockPortable<4>, nullptr, nullptr, nullptr, nullptr}};
  switch (kernel) {
    case InvariantGemm::Kernel::kAvx512:
      return avx512;
    case InvariantGemm::Kernel::kAvx2:
      return avx2;
    default:
      return portable;
  }
}

bool CpuRuns(InvariantGemm::Kernel kernel) {
  switch (kernel) {
    case InvariantGemm::Kernel::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    case InvariantGemm::Kernel::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default:
      return true;
  }
}

}  // namespace

void InvariantGemm::AlignedFree::operator()(float* p) const { std::free(p); }

InvariantGemm::Kernel InvariantGemm::BestKernel() {
  if (CpuRuns(Kernel::kAvx512)) return Kernel::kAvx512;
  if (CpuRuns(Kernel::kAvx2)) return Kernel::kAvx2;
  return Kernel::kPortable;
}

InvariantGemm::InvariantGemm(int64_t k, int64_t n, Kernel kernel)
    : k_(k), n_(n), kernel_(kernel), panel_width_(Info(kernel).width) {
  num_panels_ = (n + panel_width_ - 1) / panel_width_;
}

InvariantGemm::~InvariantGemm() = default;

std::unique_ptr<InvariantGemm> InvariantGemm::Create(const float* b, int64_t k, int64_t n,
                                                     Layout layout, Kernel kernel) {
  if (kernel == Kernel::kAuto || !CpuRuns(kernel)) {
    kernel = kernel == Kernel::kAuto ? BestKernel() : Kernel::kPortable;
  }
  std::unique_ptr<InvariantGemm> gemm(new InvariantGemm(k, n, kernel));
  const int64_t w = gemm->panel_width_;
  const size_t floats = static_cast<size_t>(gemm->num_panels_ * k * w);
  const size_t bytes = (floats * sizeof(float) + kAlignment - 1) / kAlignment * kAlignment;
  gemm->packed_.reset(static_cast<float*>(std::aligned_alloc(kAlignment, bytes)));
  float* packed = gemm->packed_.get();
  const int64_t panels = gemm->num_panels_;
  ParallelFor(panels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      const int64_t j0 = q * w;
      const int64_t cols = std::min(w, n - j0);
      float* dst = packed + q * k * w;
      for (int64_t p = 0; p < k; ++p, dst += w) {
        if (layout == Layout::kKByN) {
          std::memcpy(dst, b + p * n + j0, sizeof(float) * cols);
        } else {
          for (int64_t t = 0; t < cols; ++t) dst[t] = b[(j0 + t) * k + p];
        }
        std::fill(dst + cols, dst + w, 0.0f);
      }
    }
  });
  return gemm;
}

std::string_view InvariantGemm::kernel_name() const { return Info(kernel_).name; }

int64_t InvariantGemm::packed_bytes() const {
  return num_panels_ * k_ * panel_width_ * static_cast<int64_t>(sizeof(float));
}

void InvariantGemm::MultiplyPanels(const float* a, int64_t m, int64_t lda, float* c, int64_t ldc,
                                   int64_t panel_begin, int64_t panel_end) const {
  const KernelInfo& info = Info(kernel_);
  const int64_t w = panel_width_;
  const int mr = info.rows;
  for (int64_t q = panel_begin; q < panel_end; ++q) {
    const float* panel = packed_.get() + q * k_ * w;
    const int64_t j0 = q * w;
    const int cols = static_cast<int>(std::min(w, n_ - j0));
    int64_t i = 0;
    for (; i + mr <= m; i += mr) {
      info.tiles[mr](a + i * lda, lda, panel, k_, c + i * ldc + j0, ldc, cols);
    }
    if (i < m) {
      info.tiles[m - i](a + i * lda, lda, panel, k_, c + i * ldc + j0, ldc, cols);
    }
  }
}

void InvariantGemm::Multiply(const float* a, int64_t m, int64_t lda, float* c, int64_t ldc) const {
  if (m <= 0) return;
  const int threads = Parallelism();
  // Chunks of panels small enough to balance, big enough to amortize.
  const int64_t grain = std::max<int64_t>(1, num_panels_ / (8 * threads));
  ParallelFor(num_panels_, grain,
              [&](int64_t begin, int64_t end) { MultiplyPanels(a, m, lda, c, ldc, begin, end); });
}

void InvariantGemm::MultiplyBlock(const float* const* a_rows, int64_t num_rows, int64_t block,
                                  int64_t p_begin, int64_t p_end, float* const* c_rows) const {
  const KernelInfo& info = Info(kernel_);
  const int64_t j0 = block * kBlockWidth;
  const int64_t w = panel_width_;
  const float* panel = packed_.get() + (j0 / w) * k_ * w + p_begin * w + j0 % w;
  const int64_t steps = p_end - p_begin;
  if (steps <= 0) return;
  const int mr = info.block_rows;
  const float* a[8];
  for (int64_t r = 0; r < num_rows; r += mr) {
    const int rows = static_cast<int>(std::min<int64_t>(mr, num_rows - r));
    for (int t = 0; t < rows; ++t) a[t] = a_rows[r + t] + p_begin;
    info.blocks[rows](a, panel, w, steps, c_rows + r);
  }
}

}  // namespace saedict::engine
