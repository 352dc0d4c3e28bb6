// FastExactScreen (see fast_exact.h for the bound and why it is exact).
//
// Per tile: encode the rows in the screen GEMM's low precision and take
// their norms; one screen GEMM into `pre`; per row (in parallel) the bound,
// the activation interval and the candidate list; then the exact values by
// 8-column block — each block's rows gathered from every candidate row of
// a group of rows that needs it, so a block's weights are read once per
// group — and the fallback rows densely.
#include "engine/fast_exact.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include "engine/parallel.h"

namespace saedict::engine {
namespace {

// Bytes of preprocessed rows per group of the exact phase (see Run).
constexpr int64_t kExactGroupBytes = int64_t{8} << 20;

}  // namespace

FastExactScreen::FastExactScreen(int64_t d_in, int64_t d_sae, const FastExactOptions& options)
    : d_in_(d_in), d_sae_(d_sae), bound_scale_(options.bound_scale) {
  max_candidates_ =
      options.max_candidates > 0 ? options.max_candidates : std::max<int64_t>(64, d_sae / 32);
  exact_group_rows_ =
      options.exact_group_rows > 0
          ? options.exact_group_rows
          : std::max<int64_t>(256, kExactGroupBytes / (d_in * static_cast<int64_t>(sizeof(float))));
}

bool FastExactScreen::Available() { return ScreenGemmAvailable(); }

absl::StatusOr<std::unique_ptr<FastExactScreen>> FastExactScreen::Create(
    const float* w_enc, int64_t d_in, int64_t d_sae, const FastExactOptions& options) {
  if (w_enc == nullptr) return absl::InvalidArgumentError("fast exact screen: weights are null");
  if (d_in <= 0 || d_sae <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("fast exact screen: shape must be positive, got ", d_in, "x", d_sae));
  }
  if (!(options.bound_scale > 0.0) || !std::isfinite(options.bound_scale)) {
    return absl::InvalidArgumentError(
        absl::StrCat("fast exact screen: bound_scale must be > 0, got ", options.bound_scale));
  }
  if (options.max_candidates < 0 || options.exact_group_rows < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fast exact screen: max_candidates and exact_group_rows must be >= 0 (0: automatic), "
        "got ",
        options.max_candidates, " and ", options.exact_group_rows));
  }
  std::unique_ptr<FastExactScreen> screen(new FastExactScreen(d_in, d_sae, options));
  absl::StatusOr<std::unique_ptr<ScreenGemm>> gemm = CreateScreenGemm(w_enc, d_in, d_sae);
  if (!gemm.ok()) return gemm.status();
  screen->gemm_ = std::move(gemm).value();
  return screen;
}

int64_t FastExactScreen::EncodedWords(int64_t rows) const {
  return (rows * gemm_->encoded_row_bytes() + 7) / 8;
}

int64_t FastExactScreen::bytes() const {
  return gemm_->packed_bytes() + static_cast<int64_t>(3 * d_sae_ * sizeof(float));
}

void FastExactScreen::EncodeTile(const float* a, int64_t m, void* encoded,
                                 std::vector<RowCoefficients>* coefficients) const {
  coefficients->resize(m);
  std::vector<RowNorms> norms(m);
  gemm_->EncodeRows(a, m, encoded, norms.data());
  const double gamma_exact = SummationGamma(d_in_, 0x1p-24);
  const double inflate =
      bound_scale_ * (1.0 + 4.0 / static_cast<double>(d_in_) + 0x1p-16) * (1.0 + 0x1p-30);
  const double relative = gemm_->relative_error(), absolute = gemm_->absolute_error();
  for (int64_t i = 0; i < m; ++i) {
    const RowNorms& n = norms[i];
    RowCoefficients& co = (*coefficients)[i];
    co.a = RoundUpToFloat((gamma_exact * n.input + n.residual) * inflate);
    co.b = RoundUpToFloat(relative * n.screen * inflate);
    co.c = RoundUpToFloat(n.screen * inflate);
    co.d = RoundUpToFloat(absolute * inflate);
  }
}

namespace {

// E_j from a row's coefficients: the one formula the screen (IntervalOf) and
// ScreenWithBound, which the bound tests check, both evaluate.
inline float BoundAt(float ca, float cb, float cc, float cd, float w, float wt, float dw) {
  return ca * w + cb * wt + cc * dw + cd;
}

}  // namespace

void FastExactScreen::RowBound(const RowCoefficients& co, float* bound) const {
  const ColumnNorms& norms = gemm_->column_norms();
  const float* w = norms.input.data();
  const float* wt = norms.screen.data();
  const float* dw = norms.residual.data();
  for (int64_t j = 0; j < d_sae_; ++j)
    bound[j] = BoundAt(co.a, co.b, co.c, co.d, w[j], wt[j], dw[j]);
}

absl::Status FastExactScreen::ScreenWithBound(const float* a, int64_t m, float* c_screen,
                                              float* bound) const {
  std::vector<uint64_t> encoded(EncodedWords(m));
  std::vector<RowCoefficients> coefficients;
  EncodeTile(a, m, encoded.data(), &coefficients);
  gemm_->Multiply(encoded.data(), m, c_screen, d_sae_);
  for (int64_t i = 0; i < m; ++i) RowBound(coefficients[i], bound + i * d_sae_);
  return absl::OkStatus();
}

absl::Status FastExactScreen::CheckBound(const float* exact, const float* screen,
                                         const float* bound, int64_t m, int64_t n) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const int64_t e = i * n + j;
      const double miss = std::abs(static_cast<double>(exact[e]) - screen[e]);
      if (!(miss <= bound[e])) {
        return absl::InternalError(absl::StrCat(
            "fast exact bound violated at row ", i, ", feature ", j, ": exact ", exact[e],
            ", screen ", screen[e], ", |difference| ", miss, " > bound ", bound[e]));
      }
    }
  }
  return absl::OkStatus();
}

namespace {

// j with v[j] >= t, ascending, appended to `out`.
void CollectAtLeast(const float* v, int64_t d, float t, std::vector<uint32_t>* out) {
  int64_t j = 0;
#if defined(__AVX512F__)
  const __m512 tv = _mm512_set1_ps(t);
  for (; j + 16 <= d; j += 16) {
    for (uint32_t mask = _mm512_cmp_ps_mask(_mm512_loadu_ps(v + j), tv, _CMP_GE_OQ); mask != 0;
         mask &= mask - 1) {
      out->push_back(static_cast<uint32_t>(j + __builtin_ctz(mask)));
    }
  }
#endif
  for (; j < d; ++j) {
    if (v[j] >= t) out->push_back(static_cast<uint32_t>(j));
  }
}

// lower / upper = the activation's positive part at c - E and c + E, E from
// the row's coefficients; false when any end is not finite.
template <Architecture A, bool kScaled>
bool IntervalOf(const ActivationParams& params, const float* __restrict w,
                const float* __restrict wt, const float* __restrict dw, float ca, float cb,
                float cc, float cd, const float* __restrict c, int64_t d, float* __restrict lower,
                float* __restrict upper) {
  // A local copy: stores to lower/upper cannot alias it, so its pointers
  // stay in registers and the loop vectorizes.
  const ActivationParams p = params;
  uint32_t bad = 0;  // an all-ones exponent marks Inf or NaN (also from a NaN in c)
  for (int64_t j = 0; j < d; ++j) {
    const float e = BoundAt(ca, cb, cc, cd, w[j], wt[j], dw[j]);
    const float lo = c[j] - e;
    const float hi = c[j] + e;
    bad |= static_cast<uint32_t>((std::bit_cast<uint32_t>(lo) & 0x7f800000u) == 0x7f800000u) |
           static_cast<uint32_t>((std::bit_cast<uint32_t>(hi) & 0x7f800000u) == 0x7f800000u);
    lower[j] = std::max(ActivatedValueOf<A, kScaled>(p, j, lo), 0.0f);
    upper[j] = std::max(ActivatedValueOf<A, kScaled>(p, j, hi), 0.0f);
  }
  return bad == 0;
}

}  // namespace

bool FastExactScreen::Interval(const ActivationParams& p, const RowCoefficients& co, const float* c,
                               float* lower, float* upper) const {
  const ColumnNorms& norms = gemm_->column_norms();
  const float* w = norms.input.data();
  const float* wt = norms.screen.data();
  const float* dw = norms.residual.data();
  switch (p.architecture) {
    case Architecture::kStandard:
      return IntervalOf<Architecture::kStandard, false>(p, w, wt, dw, co.a, co.b, co.c, co.d, c,
                                                        d_sae_, lower, upper);
    case Architecture::kTopK:
      return p.scale != nullptr
                 ? IntervalOf<Architecture::kTopK, true>(p, w, wt, dw, co.a, co.b, co.c, co.d, c,
                                                         d_sae_, lower, upper)
                 : IntervalOf<Architecture::kTopK, false>(p, w, wt, dw, co.a, co.b, co.c, co.d, c,
                                                          d_sae_, lower, upper);
    case Architecture::kJumpReLU:
      return IntervalOf<Architecture::kJumpReLU, false>(p, w, wt, dw, co.a, co.b, co.c, co.d, c,
                                                        d_sae_, lower, upper);
    case Architecture::kGated:
      return IntervalOf<Architecture::kGated, false>(p, w, wt, dw, co.a, co.b, co.c, co.d, c,
                                                     d_sae_, lower, upper);
    case Architecture::kMatchingPursuit:
      break;
  }
  return false;
}

absl::Status FastExactScreen::Run(const float* a, int64_t m, const ActivationParams& params,
                                  const InvariantGemm& exact, float* scratch, int64_t scratch_rows,
                                  ScreenedRows* out, FastExactStats* stats) const {
  if (scratch_rows <= 0) return absl::InvalidArgumentError("fast exact screen: no scratch rows");
  const int64_t d = d_sae_;
  out->features.resize(m);
  out->values.resize(m);
  out->dense_index.assign(m, -1);
  out->dense.clear();
  std::vector<uint64_t> encoded(EncodedWords(std::min(m, scratch_rows)));
  std::vector<RowCoefficients> coefficients;
  std::vector<uint8_t> fallback(m, 0);
  const int32_t k = params.k;

  // 1. Screen in sub-tiles of scratch_rows: candidates per row.
  for (int64_t r0 = 0; r0 < m; r0 += scratch_rows) {
    const int64_t rows = std::min(scratch_rows, m - r0);
    EncodeTile(a + r0 * d_in_, rows, encoded.data(), &coefficients);
    gemm_->Multiply(encoded.data(), rows, scratch, d);
    ParallelFor(
        rows, std::max<int64_t>(1, (int64_t{1} << 14) / d), [&](int64_t begin, int64_t end) {
          thread_local std::vector<float> lower, upper;
          thread_local std::vector<uint32_t> top_indices;
          thread_local std::vector<float> top_values;
          lower.resize(d);
          upper.resize(d);
          for (int64_t i = begin; i < end; ++i) {
            std::vector<uint32_t>& list = out->features[r0 + i];
            list.clear();
            if (!Interval(params, coefficients[i], scratch + i * d, lower.data(), upper.data())) {
              fallback[r0 + i] = 1;
              continue;
            }
            float tau = 0.0f;  // a lower bound of the k-th selected value
            if (k > 0 && k < d) {
              top_indices.clear();
              top_values.clear();
              if (SelectTopK(lower.data(), d, k, &top_indices, &top_values) == k) {
                tau = *std::min_element(top_values.begin(), top_values.end());
              }
            }
            // upper > 0 and upper >= tau, as one comparison.
            CollectAtLeast(upper.data(), d,
                           tau > 0.0f ? tau : std::numeric_limits<float>::denorm_min(), &list);
            if (static_cast<int64_t>(list.size()) > max_candidates_) {
              fallback[r0 + i] = 1;
              list.clear();
            }
          }
        });
  }

  // 2. Exact values of the candidates' 8-column blocks, grouped by block so
  //    each block's weights are read once for all the rows that need it.
  //    pair_offset[i]: row i's first (row, block) pair; pairs hold kW floats.
  const int64_t num_blocks = exact.num_blocks();
  constexpr int64_t kW = InvariantGemm::kBlockWidth;
  std::vector<int64_t> pair_offset(m + 1, 0);
  std::vector<std::vector<int64_t>> block_pairs(num_blocks);  // pair ids per block
  std::vector<int32_t> pair_row;
  int64_t total_candidates = 0, num_dense = 0;
  for (int64_t i = 0; i < m; ++i) {
    pair_offset[i + 1] = pair_offset[i];
    if (fallback[i]) {
      out->dense_index[i] = num_dense++;
      continue;
    }
    int64_t last = -1;
    for (uint32_t j : out->features[i]) {
      const int64_t b = j / kW;
      if (b == last) continue;
      last = b;
      block_pairs[b].push_back(pair_offset[i + 1]++);
      pair_row.push_back(static_cast<int32_t>(i));
    }
    total_candidates += static_cast<int64_t>(out->features[i].size());
  }
  const int64_t num_pairs = pair_offset[m];
  std::vector<float> pair_values(static_cast<size_t>(num_pairs * kW), 0.0f);  // chains start at +0
  const int threads = Parallelism();
  // Every pair's whole chain in one call (p over [0, d_in)): splitting p to
  // keep row slices in L2 measured slower (the scattered rows' streams stop
  // being prefetched), 2304x16384 k=64: 383 ms per 4096 rows whole, 474 /
  // 651 ms in slices of 1024 / 256. Rows are taken in groups of about 8 MiB
  // instead, so the scattered rows a block needs come from L3 rather than
  // memory, at the price of one pass over the F32 weights per group (AMD
  // EPYC Zen 4, 2304x16384 k=64, 4096 rows: 340 ms in one group, 281 / 310 /
  // 393 ms in groups of 1024 / 512 / 256 rows). block_pairs[b] ascends by
  // row, so cursor[b] walks it group by group.
  const int64_t group_rows = exact_group_rows_;
  std::vector<size_t> cursor(num_blocks, 0);
  for (int64_t g0 = 0; g0 < m; g0 += group_rows) {
    const int64_t g_end = std::min(m, g0 + group_rows);
    ParallelFor(num_blocks, std::max<int64_t>(1, num_blocks / (16 * threads)),
                [&](int64_t begin, int64_t end) {
                  std::vector<const float*> a_rows;
                  std::vector<float*> c_rows;
                  for (int64_t b = begin; b < end; ++b) {
                    const std::vector<int64_t>& pairs = block_pairs[b];
                    a_rows.clear();
                    c_rows.clear();
                    for (size_t& e = cursor[b]; e < pairs.size() && pair_row[pairs[e]] < g_end;
                         ++e) {
                      a_rows.push_back(a + pair_row[pairs[e]] * d_in_);
                      c_rows.push_back(pair_values.data() + pairs[e] * kW);
                    }
                    if (a_rows.empty()) continue;
                    exact.MultiplyBlock(a_rows.data(), static_cast<int64_t>(a_rows.size()), b, 0,
                                        d_in_, c_rows.data());
                  }
                });
  }
  // Each row's candidate values, from its pairs (blocks ascending like features).
  ParallelFor(m, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const std::vector<uint32_t>& features = out->features[i];
      std::vector<float>& values = out->values[i];
      values.resize(features.size());
      int64_t q = pair_offset[i] - 1, block = -1;
      for (size_t e = 0; e < features.size(); ++e) {
        const int64_t b = features[e] / kW;
        if (b != block) {
          block = b;
          ++q;
        }
        values[e] = pair_values[q * kW + features[e] % kW];
      }
    }
  });

  // 3. Fallback rows, densely (the same chain as every other F32 value).
  if (num_dense > 0) {
    std::vector<float> rows_in(static_cast<size_t>(num_dense * d_in_));
    for (int64_t i = 0; i < m; ++i) {
      if (out->dense_index[i] >= 0) {
        std::memcpy(rows_in.data() + out->dense_index[i] * d_in_, a + i * d_in_,
                    d_in_ * sizeof(float));
      }
    }
    out->dense.resize(static_cast<size_t>(num_dense * d));
    exact.Multiply(rows_in.data(), num_dense, d_in_, out->dense.data(), d);
  }
  if (stats != nullptr) {
    stats->rows += m;
    stats->fallback_rows += num_dense;
    stats->candidates += total_candidates;
    stats->blocks += num_pairs;
  }
  return absl::OkStatus();
}

}  // namespace saedict::engine
