// Avx2Int16Gemm (see avx2_int16_gemm.h).
#include "engine/avx2_int16_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/parallel.h"

namespace saedict::engine {
namespace {

constexpr int64_t kPanel = 16;  // columns per panel: two ymm of 8 int32 lanes
// Rows per kernel call: 6 rows' 12 accumulators fit beside the operands in
// 32 vector registers (a build for AVX-512 CPUs); with AVX2's 16, GCC 12
// spills accumulators inside the loop at 5 or 6 rows, so 4 there.
#if defined(__AVX512VL__)
constexpr int64_t kRows = 6;
#else
constexpr int64_t kRows = 4;
#endif
constexpr int64_t kBlockPairs = Avx2Int16Gemm::kBlockDepth / 2;
constexpr float kQ = static_cast<float>(Avx2Int16Gemm::kMaxQuantized);
static_assert(Avx2Int16Gemm::kBlockDepth * Avx2Int16Gemm::kMaxQuantized *
                      Avx2Int16Gemm::kMaxQuantized <=
                  std::numeric_limits<int32_t>::max(),
              "a block's int32 sum must not overflow");

int64_t RoundUp(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// The scale of values whose largest magnitude is max_abs: max_abs / Q, 0
// when that is below the normal range (the stand-in is then 0), NaN when
// max_abs is not finite.
float ScaleFor(float max_abs) {
  if (!std::isfinite(max_abs)) return std::numeric_limits<float>::quiet_NaN();
  const float s = max_abs / kQ;
  return s >= FLT_MIN ? s : 0.0f;
}

// round(v / scale) within [-Q, Q]; 0 for a zero or NaN scale.
inline int16_t Quantize(float v, float inverse_scale) {
  if (!(inverse_scale > 0.0f)) return 0;
  const float q = std::nearbyint(v * inverse_scale);
  return static_cast<int16_t>(std::clamp(q, -kQ, kQ));
}

inline uint32_t PairWord(int16_t lo, int16_t hi) {
  return static_cast<uint32_t>(static_cast<uint16_t>(lo)) |
         (static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16);
}

// c[MR rows, 16 columns] for rows at `a` (word 0 a row's scale, word 1 + t
// its pair t; rows lda_words apart) and one 16-column panel; `cols` < 16
// stores only the first cols columns.
template <int MR>
__attribute__((target("avx2,fma"))) void Tile(const uint32_t* a, int64_t lda_words,
                                              const uint32_t* panel, int64_t k_pairs,
                                              const float* column_scale, float* c, int64_t ldc,
                                              int cols) {
  alignas(32) float total[MR][kPanel] = {};
  for (int64_t t0 = 0; t0 < k_pairs; t0 += kBlockPairs) {
    const int64_t t1 = std::min(k_pairs, t0 + kBlockPairs);
    __m256i acc[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int64_t t = t0; t < t1; ++t) {
      const uint32_t* w = panel + t * kPanel;
      const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w));
      const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 8));
#pragma GCC unroll 6
      for (int r = 0; r < MR; ++r) {
        const __m256i av = _mm256_set1_epi32(static_cast<int>(a[r * lda_words + 1 + t]));
        acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(av, b0));
        acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(av, b1));
      }
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      for (int q = 0; q < 2; ++q) {
        float* sum = total[r] + 8 * q;
        _mm256_store_ps(sum, _mm256_add_ps(_mm256_load_ps(sum), _mm256_cvtepi32_ps(acc[r][q])));
      }
    }
  }
  for (int r = 0; r < MR; ++r) {
    const __m256 si = _mm256_set1_ps(std::bit_cast<float>(a[r * lda_words]));
    alignas(32) float out[kPanel];
    for (int q = 0; q < 2; ++q) {
      const __m256 sum = _mm256_load_ps(total[r] + 8 * q);
      _mm256_store_ps(out + 8 * q,
                      _mm256_mul_ps(_mm256_mul_ps(sum, si), _mm256_load_ps(column_scale + 8 * q)));
    }
    std::memcpy(c + r * ldc, out, cols * sizeof(float));
  }
}

using TileFn = void (*)(const uint32_t*, int64_t, const uint32_t*, int64_t, const float*, float*,
                        int64_t, int);
constexpr TileFn kTiles[7] = {nullptr, Tile<1>, Tile<2>, Tile<3>, Tile<4>, Tile<5>, Tile<6>};

void* AlignedAlloc(int64_t bytes) {
  return std::aligned_alloc(64, static_cast<size_t>(RoundUp(std::max<int64_t>(bytes, 1), 64)));
}

}  // namespace

void Avx2Int16Gemm::FreeDeleter::operator()(void* p) const { std::free(p); }

bool Avx2Int16Gemm::Available() {
  static const bool available = [] {
    if (EnvironmentSwitchSet("SAEDICT_NO_AVX2_INT16")) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;  // also checks that the OS saves ymm state
  }();
  return available;
}

Avx2Int16Gemm::Avx2Int16Gemm(int64_t k, int64_t n)
    : k_(k), n_(n), k_pairs_((k + 1) / 2), n_pad_(RoundUp(n, kPanel)) {}

Avx2Int16Gemm::~Avx2Int16Gemm() = default;

absl::StatusOr<std::unique_ptr<Avx2Int16Gemm>> Avx2Int16Gemm::Create(const float* b, int64_t k,
                                                                     int64_t n) {
  if (b == nullptr || k <= 0 || n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("AVX2 int16 GEMM: bad weights (", k, "x", n, ", null: ", b == nullptr, ")"));
  }
  if (!Available()) {
    return absl::UnimplementedError(
        "AVX2 int16 GEMM: this CPU has no AVX2 (or SAEDICT_NO_AVX2_INT16 is set)");
  }
  std::unique_ptr<Avx2Int16Gemm> gemm(new Avx2Int16Gemm(k, n));
  const int64_t k_pairs = gemm->k_pairs_, n_pad = gemm->n_pad_, panels = n_pad / kPanel;
  gemm->packed_.reset(static_cast<uint32_t*>(AlignedAlloc(k_pairs * n_pad * 4)));
  gemm->column_scale_.reset(static_cast<float*>(AlignedAlloc(n_pad * 4)));
  if (gemm->packed_ == nullptr || gemm->column_scale_ == nullptr) {
    return absl::ResourceExhaustedError("AVX2 int16 GEMM: out of memory");
  }
  // Column scales: one pass over B in storage order.
  std::vector<float> max_abs(n, 0.0f);
  for (int64_t p = 0; p < k; ++p) {
    const float* row = b + p * n;
    for (int64_t j = 0; j < n; ++j) {
      const float v = std::abs(row[j]);
      // A NaN must not be lost to std::max: it makes the column's scale NaN.
      max_abs[j] =
          std::isnan(v) || std::isnan(max_abs[j]) ? v + max_abs[j] : std::max(max_abs[j], v);
    }
  }
  float* scale = gemm->column_scale_.get();
  std::vector<float> inverse(n);
  for (int64_t j = 0; j < n_pad; ++j) {
    scale[j] = j < n ? ScaleFor(max_abs[j]) : 0.0f;
    if (j < n) {
      inverse[j] = scale[j] > 0.0f ? 1.0f / scale[j] : 0.0f;
      if (std::isfinite(scale[j]))
        gemm->max_column_scale_ = std::max(gemm->max_column_scale_, scale[j]);
    }
  }
  uint32_t* packed = gemm->packed_.get();
  ParallelFor(k_pairs, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const float* lo = b + 2 * t * n;
      const float* hi = 2 * t + 1 < k ? lo + n : nullptr;
      for (int64_t q = 0; q < panels; ++q) {
        uint32_t* dst = packed + (q * k_pairs + t) * kPanel;
        for (int64_t col = 0; col < kPanel; ++col) {
          const int64_t j = q * kPanel + col;
          dst[col] = j < n ? PairWord(Quantize(lo[j], inverse[j]),
                                      hi != nullptr ? Quantize(hi[j], inverse[j]) : int16_t{0})
                           : 0u;
        }
      }
    }
  });
  gemm->SetColumnNorms(b, k, n, [&](int64_t, const float* row, double* out) {
    for (int64_t j = 0; j < n; ++j) {
      out[j] = static_cast<double>(scale[j] > 0.0f ? scale[j] : 0.0f) *
               Quantize(row[j], inverse[j]);  // exact: 24 × 12 bits
    }
  });
  return gemm;
}

void Avx2Int16Gemm::EncodeRows(const float* a, int64_t m, void* encoded, RowNorms* norms) const {
  uint32_t* out = static_cast<uint32_t*>(encoded);
  const int64_t row_words = encoded_row_bytes() / 4;
  ParallelFor(m, std::max<int64_t>(1, (int64_t{1} << 15) / k_), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* x = a + i * k_;
      uint32_t* row = out + i * row_words;
      float max_abs = 0.0f;
      bool finite = true;
      for (int64_t p = 0; p < k_; ++p) {
        finite &= std::isfinite(x[p]);
        max_abs = std::max(max_abs, std::abs(x[p]));
      }
      const float scale = finite ? ScaleFor(max_abs) : std::numeric_limits<float>::quiet_NaN();
      const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
      row[0] = std::bit_cast<uint32_t>(scale);
      const double s = scale > 0.0f ? scale : 0.0f;  // the stand-in is s·q, exactly
      ResidualSquares sums;
      for (int64_t t = 0; t < k_pairs_; ++t) {
        const int16_t lo = Quantize(x[2 * t], inverse);
        const int16_t hi = 2 * t + 1 < k_ ? Quantize(x[2 * t + 1], inverse) : int16_t{0};
        row[1 + t] = PairWord(lo, hi);
        sums.Add(x[2 * t], s * lo);
        if (2 * t + 1 < k_) sums.Add(x[2 * t + 1], s * hi);
      }
      constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
      norms[i] = finite ? sums.UpperBounds() : RowNorms{kNaN, kNaN, kNaN};
    }
  });
}

double Avx2Int16Gemm::relative_error() const {
  const int64_t blocks = (k_ + kBlockDepth - 1) / kBlockDepth;
  return SummationGamma(2 * blocks + 2, 0x1p-23);
}

double Avx2Int16Gemm::absolute_error() const {
  return 0x1p-125 * (1.0 + static_cast<double>(max_column_scale_));
}

void Avx2Int16Gemm::MultiplyPanels(const uint32_t* rows, int64_t m, float* c, int64_t ldc,
                                   int64_t panel_begin, int64_t panel_end) const {
  const int64_t row_words = encoded_row_bytes() / 4;
  for (int64_t q = panel_begin; q < panel_end; ++q) {
    const uint32_t* panel = packed_.get() + q * k_pairs_ * kPanel;
    const int64_t j0 = q * kPanel;
    const int cols = static_cast<int>(std::min(kPanel, n_ - j0));
    for (int64_t i0 = 0; i0 < m; i0 += kRows) {
      const int64_t r = std::min(kRows, m - i0);
      kTiles[r](rows + i0 * row_words, row_words, panel, k_pairs_, column_scale_.get() + j0,
                c + i0 * ldc + j0, ldc, cols);
    }
  }
}

void Avx2Int16Gemm::Multiply(const void* encoded, int64_t m, float* c, int64_t ldc) const {
  if (m <= 0) return;
  const uint32_t* rows = static_cast<const uint32_t*>(encoded);
  const int64_t panels = n_pad_ / kPanel;
  const int threads = Parallelism();
  ParallelFor(panels, std::max<int64_t>(1, panels / (4 * threads)),
              [&](int64_t begin, int64_t end) { MultiplyPanels(rows, m, c, ldc, begin, end); });
}

}  // namespace saedict::engine
