// MaxSimilarityAssignment (see linear_assignment.h).
//
// Internally the problem has n rows <= m columns (transposed otherwise) and
// minimises the cost c_ij = -s_ij. Column prices p_j = -v_j stand for the JV
// column potentials: the reduced cost of row i at column j, up to the row's
// own constant, is p_j - s_ij, and an assigned row is always assigned to a
// column where p_j - s_ij is smallest (that minimum is its implicit
// potential u_i). With every assigned pair tight that is the optimality
// condition of a square problem. A rectangular one also needs every free
// column at the lowest price: it starts from p = 0 and only ever raises the
// prices of columns it assigns, and assigned columns never become free.
#include "compare/linear_assignment.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#if defined(__AVX512F__) && defined(__AVX512VL__)
#include <immintrin.h>
#endif

namespace saedict::compare {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kPollEvery = 256;  // row scans between cancelled() polls
// Budget of the augmenting row reduction, in row scans per row (plus 64).
// Random-like parts of a matrix turn it into long auctions of small price
// rises; past the budget the rows left go to the shortest augmenting paths.
// 8 was the fastest of 2, 4, 8, 16, 32 on bench/compare_bench's 16384^2
// cosine matrix and on a random 4096^2 one.
constexpr int64_t kReductionScansPerRow = 8;
// Floats ahead of the current column that the row scans prefetch.
constexpr int32_t kPrefetchAhead = 2048;

// (value, column) pairs ordered by value, then by the lower column: every
// minimum below is the first one in column order, whatever the lane count.
inline bool Before(double v, int32_t j, double best_v, int32_t best_j) {
  return v < best_v || (v == best_v && j >= 0 && (best_j < 0 || j < best_j));
}

#if defined(__AVX512F__) && defined(__AVX512VL__)
// Prefetches the row's cache line kPrefetchAhead floats past column k
// (clamped to the row's last column).
inline void Prefetch(const float* s, int32_t k, int32_t m) {
  _mm_prefetch(reinterpret_cast<const char*>(s + std::min(k + kPrefetchAhead, m - 1)),
               _MM_HINT_T0);
}
#endif

// The two smallest p_j - s_j of one row by (value, column): u1 at j1, and
// u2 at j2 the smallest over the other columns. REQUIRES: m >= 2.
struct TwoMin {
  double u1 = kInf, u2 = kInf;
  int32_t j1 = -1, j2 = -1;

  void Add(double h, int32_t j) {
    if (Before(h, j, u1, j1)) {
      u2 = u1;
      j2 = j1;
      u1 = h;
      j1 = j;
    } else if (Before(h, j, u2, j2)) {
      u2 = h;
      j2 = j;
    }
  }
};

TwoMin RowTwoMin(const float* s, const double* p, int32_t m) {
  TwoMin t;
  int32_t k = 0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
  // Per lane the two smallest in column order (strict <: the earlier
  // column stays first), merged by (value, column).
  __m512d m1 = _mm512_set1_pd(kInf), m2 = m1;
  __m256i i1 = _mm256_set1_epi32(-1), i2 = i1;
  __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i step = _mm256_set1_epi32(8);
  for (; k + 8 <= m; k += 8) {
    if ((k & 15) == 0) Prefetch(s, k, m);
    const __m512d h = _mm512_sub_pd(_mm512_loadu_pd(p + k),
                                    _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(s + k)));
    const __mmask8 lt1 = _mm512_cmp_pd_mask(h, m1, _CMP_LT_OQ);
    const __mmask8 lt2 = _mm512_cmp_pd_mask(h, m2, _CMP_LT_OQ) & ~lt1;
    m2 = _mm512_mask_mov_pd(_mm512_mask_mov_pd(m2, lt2, h), lt1, m1);
    i2 = _mm256_mask_mov_epi32(_mm256_mask_mov_epi32(i2, lt2, idx), lt1, i1);
    m1 = _mm512_mask_mov_pd(m1, lt1, h);
    i1 = _mm256_mask_mov_epi32(i1, lt1, idx);
    idx = _mm256_add_epi32(idx, step);
  }
  alignas(64) double v1[8], v2[8];
  alignas(32) int32_t c1[8], c2[8];
  _mm512_store_pd(v1, m1);
  _mm512_store_pd(v2, m2);
  _mm256_store_si256(reinterpret_cast<__m256i*>(c1), i1);
  _mm256_store_si256(reinterpret_cast<__m256i*>(c2), i2);
  for (int l = 0; l < 8; ++l) {
    if (c1[l] >= 0) t.Add(v1[l], c1[l]);
    if (c2[l] >= 0) t.Add(v2[l], c2[l]);
  }
#endif
  for (; k < m; ++k) t.Add(p[k] - static_cast<double>(s[k]), k);
  return t;
}

// One Dijkstra step's scan of row s: for every column k,
//   h = base + pp[k] - s[k];  if h < d[k]: d[k] = h, pred[k] = row
// and the smallest d afterwards by (value, column). Settled columns carry
// pp = d = +inf, so they neither change nor count.
struct ScanMin {
  double d = kInf;
  int32_t j = -1;
};

ScanMin Relax(const float* s, const double* pp, double base, int32_t row, int32_t m, double* d,
              int32_t* pred) {
  ScanMin r;
  int32_t k = 0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
  // Four independent accumulators of eight lanes (the minimum's compare and
  // blend chain would otherwise bound the loop), merged by (value, column).
  constexpr int kAcc = 4;
  const __m512d vbase = _mm512_set1_pd(base);
  const __m256i vrow = _mm256_set1_epi32(row);
  __m512d lm[kAcc];
  __m256i li[kAcc];
  for (int a = 0; a < kAcc; ++a) {
    lm[a] = _mm512_set1_pd(kInf);
    li[a] = _mm256_set1_epi32(-1);
  }
  __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i step = _mm256_set1_epi32(8);
  for (; k + 8 * kAcc <= m; k += 8 * kAcc) {
    Prefetch(s, k, m);
    Prefetch(s, k + 16, m);
    for (int a = 0; a < kAcc; ++a) {
      const int32_t c = k + 8 * a;
      const __m512d sk = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(s + c));
      const __m512d h = _mm512_sub_pd(_mm512_add_pd(vbase, _mm512_loadu_pd(pp + c)), sk);
      __m512d dk = _mm512_loadu_pd(d + c);
      const __mmask8 better = _mm512_cmp_pd_mask(h, dk, _CMP_LT_OQ);
      dk = _mm512_mask_mov_pd(dk, better, h);
      _mm512_mask_storeu_pd(d + c, better, h);
      _mm256_mask_storeu_epi32(pred + c, better, vrow);
      const __mmask8 lower = _mm512_cmp_pd_mask(dk, lm[a], _CMP_LT_OQ);
      lm[a] = _mm512_mask_mov_pd(lm[a], lower, dk);
      li[a] = _mm256_mask_mov_epi32(li[a], lower, idx);
      idx = _mm256_add_epi32(idx, step);
    }
  }
  for (int a = 0; a < kAcc; ++a) {
    alignas(64) double lmv[8];
    alignas(32) int32_t liv[8];
    _mm512_store_pd(lmv, lm[a]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(liv), li[a]);
    for (int l = 0; l < 8; ++l) {
      if (Before(lmv[l], liv[l], r.d, r.j)) r = {lmv[l], liv[l]};
    }
  }
#endif
  for (; k < m; ++k) {
    const double h = base + pp[k] - static_cast<double>(s[k]);
    if (h < d[k]) {
      d[k] = h;
      pred[k] = row;
    }
    if (Before(d[k], k, r.d, r.j)) r = {d[k], k};
  }
  return r;
}

// The solver proper on n <= m; s is n x m row-major.
class Solver {
 public:
  Solver(const float* s, int32_t n, int32_t m, const std::function<bool()>& cancelled)
      : s_(s), n_(n), m_(m), cancelled_(cancelled), x_(n, -1), y_(m, -1), p_(m, 0.0) {}

  absl::Status Run() {
    if (Cancelled()) return Cancel();
    std::vector<int32_t> free_rows;
    if (n_ == m_) {
      ColumnReduction();
      free_rows = ReductionTransfer();
    } else {
      for (int32_t i = 0; i < n_; ++i) free_rows.push_back(i);
    }
    if (m_ >= 2) {
      // Two passes, and a budget against long chains of tiny price rises.
      int64_t budget = kReductionScansPerRow * int64_t{n_} + 64;
      for (int pass = 0; pass < 2 && !free_rows.empty(); ++pass) {
        absl::StatusOr<std::vector<int32_t>> next = AugmentingRowReduction(free_rows, &budget);
        if (!next.ok()) return next.status();
        free_rows = *std::move(next);
      }
    }
    return ShortestAugmentingPaths(free_rows);
  }

  const std::vector<int32_t>& row_to_col() const { return x_; }

 private:
  const float* Row(int32_t i) const { return s_ + static_cast<int64_t>(i) * m_; }
  bool Cancelled() const { return cancelled_ != nullptr && cancelled_(); }
  static absl::Status Cancel() {
    return absl::CancelledError("linear assignment cancelled");
  }
  // Counts a row scan; polls cancelled() every kPollEvery of them.
  bool TickCancelled() { return ++scans_ % kPollEvery == 0 && Cancelled(); }

  // p_j = max_i s_ij (v_j = min_i c_ij); each column, from the last, is
  // assigned to its best row unless that row already has a column.
  void ColumnReduction() {
    std::vector<float> best(Row(0), Row(0) + m_);
    std::vector<int32_t> arg(m_, 0);
    for (int32_t i = 1; i < n_; ++i) {
      const float* s = Row(i);
      for (int32_t j = 0; j < m_; ++j) {
        if (s[j] > best[j]) {
          best[j] = s[j];
          arg[j] = i;
        }
      }
    }
    multiply_claimed_.assign(n_, false);
    for (int32_t j = m_ - 1; j >= 0; --j) {
      p_[j] = best[j];
      const int32_t i = arg[j];
      if (x_[i] < 0) {
        x_[i] = j;
        y_[j] = i;
      } else {
        multiply_claimed_[i] = true;
      }
    }
  }

  // Rows claimed by exactly one column move their slack to that column:
  // p_j1 += min_{j != j1} (p_j - s_ij), so the row's assigned column ties
  // with its next best. Returns the free rows.
  std::vector<int32_t> ReductionTransfer() {
    std::vector<int32_t> free_rows;
    for (int32_t i = 0; i < n_; ++i) {
      if (x_[i] < 0) {
        free_rows.push_back(i);
        continue;
      }
      if (multiply_claimed_[i] || m_ < 2) continue;
      const int32_t j1 = x_[i];
      const TwoMin t = RowTwoMin(Row(i), p_.data(), m_);
      const double mu = t.j1 == j1 ? t.u2 : t.u1;  // min over j != j1
      p_[j1] += mu - (p_[j1] - static_cast<double>(Row(i)[j1]));
    }
    return free_rows;
  }

  // One JV augmenting row reduction pass over `free_rows`: each row takes
  // its cheapest column, raising that column's price to the row's second
  // cheapest so the row stays indifferent; the row it displaces is
  // processed next when the price rose, else left for the next pass.
  // Returns the rows still free (those past the budget included).
  absl::StatusOr<std::vector<int32_t>> AugmentingRowReduction(std::vector<int32_t> free_rows,
                                                             int64_t* budget) {
    std::vector<int32_t> next;
    size_t k = 0;
    while (k < free_rows.size()) {
      if (*budget <= 0) {
        next.insert(next.end(), free_rows.begin() + k, free_rows.end());
        break;
      }
      --*budget;
      if (TickCancelled()) return Cancel();
      const int32_t i = free_rows[k++];
      TwoMin t = RowTwoMin(Row(i), p_.data(), m_);
      int32_t j1 = t.j1;
      int32_t i0 = y_[j1];
      const bool raised = t.u1 < t.u2;
      if (raised) {
        p_[j1] += t.u2 - t.u1;
      } else if (i0 >= 0) {
        j1 = t.j2;
        i0 = y_[j1];
      }
      x_[i] = j1;
      y_[j1] = i;
      if (i0 >= 0) {
        x_[i0] = -1;
        if (raised) {
          free_rows[--k] = i0;
        } else {
          next.push_back(i0);
        }
      }
    }
    return next;
  }

  // Each free row in turn: Dijkstra from it over the reduced costs to the
  // nearest free column, the prices of the settled columns updated so every
  // reduced cost stays >= 0, then the path flipped.
  absl::Status ShortestAugmentingPaths(const std::vector<int32_t>& free_rows) {
    if (free_rows.empty()) return absl::OkStatus();
    std::vector<double> d(m_), pp(m_);
    std::vector<int32_t> pred(m_);
    std::vector<int32_t> settled;
    std::vector<double> settled_d;
    // The free columns, and each one's place in that list (swap-removal).
    std::vector<int32_t> free_cols, free_pos(m_, -1);
    for (int32_t j = 0; j < m_; ++j) {
      if (y_[j] < 0) {
        free_pos[j] = static_cast<int32_t>(free_cols.size());
        free_cols.push_back(j);
      }
    }
    for (const int32_t f : free_rows) {
      if (Cancelled()) return Cancel();
      std::copy(p_.begin(), p_.end(), pp.begin());
      std::fill(d.begin(), d.end(), kInf);
      settled.clear();
      settled_d.clear();
      int32_t row = f;
      double base = 0;
      ScanMin sink;
      while (true) {
        const ScanMin r = Relax(Row(row), pp.data(), base, row, m_, d.data(), pred.data());
        // The nearest free column wins when it is as near as the nearest of all.
        sink = ScanMin();
        for (const int32_t j : free_cols) {
          if (Before(d[j], j, sink.d, sink.j)) sink = {d[j], j};
        }
        if (sink.j >= 0 && sink.d <= r.d) break;
        if (TickCancelled()) return Cancel();
        if (static_cast<int32_t>(settled.size()) >= m_ || r.j < 0) {
          return absl::InternalError(absl::StrCat(
              "linear assignment: no free column reachable from row ", f, " (", n_, " x ", m_,
              "); cannot happen"));
        }
        settled.push_back(r.j);
        settled_d.push_back(r.d);
        d[r.j] = kInf;
        pp[r.j] = kInf;
        row = y_[r.j];
        base = r.d - (p_[r.j] - static_cast<double>(Row(row)[r.j]));
      }
      for (size_t t = 0; t < settled.size(); ++t) p_[settled[t]] += sink.d - settled_d[t];
      // Flip the path: sink <- pred[sink] = row r, r's old column <- pred, ...
      int32_t j = sink.j;
      while (true) {
        const int32_t i = pred[j];
        y_[j] = i;
        const int32_t old = x_[i];
        x_[i] = j;
        if (i == f) break;
        j = old;
      }
      const int32_t last = free_cols.back();
      free_cols[free_pos[sink.j]] = last;
      free_pos[last] = free_pos[sink.j];
      free_cols.pop_back();
      free_pos[sink.j] = -1;
    }
    return absl::OkStatus();
  }

  const float* s_;
  int32_t n_, m_;
  const std::function<bool()>& cancelled_;
  std::vector<int32_t> x_;  // row -> column, -1 free
  std::vector<int32_t> y_;  // column -> row, -1 free
  std::vector<double> p_;   // column prices (-v)
  std::vector<bool> multiply_claimed_;
  int64_t scans_ = 0;
};

// The first non-finite entry, or -1.
int64_t FirstNonFinite(absl::Span<const float> s) {
  constexpr size_t kChunk = 4096;
  for (size_t begin = 0; begin < s.size(); begin += kChunk) {
    const size_t end = std::min(s.size(), begin + kChunk);
    float acc = 0;  // x * 0 is NaN exactly when x is not finite
    for (size_t k = begin; k < end; ++k) acc += s[k] * 0.0f;
    if (acc == 0) continue;
    for (size_t k = begin; k < end; ++k) {
      if (!std::isfinite(s[k])) return static_cast<int64_t>(k);
    }
  }
  return -1;
}

}  // namespace

absl::StatusOr<Assignment> MaxSimilarityAssignment(absl::Span<const float> similarity,
                                                   int64_t rows, int64_t cols,
                                                   const std::function<bool()>& cancelled) {
  constexpr int64_t kMaxSide = std::numeric_limits<int32_t>::max();
  if (rows <= 0 || cols <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "similarity: rows = ", rows, ", cols = ", cols, "; both must be at least 1"));
  }
  if (rows > kMaxSide || cols > kMaxSide) {
    return absl::InvalidArgumentError(absl::StrCat(
        "similarity: rows = ", rows, ", cols = ", cols, "; each must be below 2^31"));
  }
  if (static_cast<int64_t>(similarity.size()) / cols != rows ||
      static_cast<int64_t>(similarity.size()) % cols != 0) {
    return absl::InvalidArgumentError(absl::StrCat("similarity: ", similarity.size(),
                                                   " entries; expected rows x cols = ", rows,
                                                   " x ", cols));
  }
  if (const int64_t bad = FirstNonFinite(similarity); bad >= 0) {
    return absl::InvalidArgumentError(absl::StrCat("similarity[", bad / cols, "][", bad % cols,
                                                   "] is ", similarity[bad],
                                                   "; expected finite values"));
  }
  const bool transposed = rows > cols;
  std::vector<float> t;
  const float* s = similarity.data();
  if (transposed) {
    t.resize(similarity.size());
    constexpr int64_t kTile = 64;
    for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
      for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r) {
          for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) {
            t[c * rows + r] = similarity[r * cols + c];
          }
        }
      }
    }
    s = t.data();
  }
  const int32_t n = static_cast<int32_t>(transposed ? cols : rows);
  const int32_t m = static_cast<int32_t>(transposed ? rows : cols);
  Solver solver(s, n, m, cancelled);
  if (absl::Status st = solver.Run(); !st.ok()) return st;

  Assignment out;
  out.row_to_col.assign(rows, -1);
  out.col_to_row.assign(cols, -1);
  const std::vector<int32_t>& x = solver.row_to_col();
  for (int32_t i = 0; i < n; ++i) {
    const int64_t r = transposed ? x[i] : i;
    const int64_t c = transposed ? i : x[i];
    out.row_to_col[r] = c;
    out.col_to_row[c] = r;
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (out.row_to_col[r] >= 0) out.total += similarity[r * cols + out.row_to_col[r]];
  }
  return out;
}

}  // namespace saedict::compare
