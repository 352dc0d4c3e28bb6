// CompareDecoders (see decoder_matching.h).
#include "compare/decoder_matching.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "compare/linear_assignment.h"
#include "engine/parallel.h"
#include "index/directions.h"

namespace saedict::compare {
namespace {

using index::DirectionKind;
using index::Directions;

// Candidates within this of the float32 maximum are rescored in float64
// (the float32 GEMM of unit rows errs by ~1e-6 at d_in in the thousands).
constexpr double kRescoreWindow = 1e-4;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kRowGrain = 64;       // rows of a block per ParallelFor chunk
constexpr int64_t kColumnGrain = 2048;  // columns per chunk of the column-maxima pass

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

absl::Status CheckDictionary(const engine::Dictionary& d, const char* name) {
  const int64_t n = d.config.d_sae, dim = d.config.decoder_dim();  // d_out for transcoders
  if (n <= 0 || dim <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("dictionary ", name, ": d_sae = ", n,
                                                   ", d_in = ", dim, "; both must be >= 1"));
  }
  if (static_cast<int64_t>(d.w_dec.size()) != n * dim) {
    return absl::InvalidArgumentError(absl::StrCat("dictionary ", name, ": W_dec has ",
                                                   d.w_dec.size(), " values; expected d_sae x d_in = ",
                                                   n, " x ", dim));
  }
  return absl::OkStatus();
}

// A non-owning shared_ptr (Directions wants one; the caller owns the dictionary).
std::shared_ptr<const engine::Dictionary> Borrow(const engine::Dictionary& d) {
  return std::shared_ptr<const engine::Dictionary>(std::shared_ptr<const engine::Dictionary>(),
                                                   &d);
}

// Of `candidates` (ascending), the one with the largest float64 cosine to
// `query`'s direction in `others`; the lower id on ties.
BestMatch Rescore(const std::vector<double>& unit_query, const Directions& others,
                  const std::vector<int64_t>& candidates) {
  BestMatch best;
  double best_cos = -kInf;
  for (const int64_t c : candidates) {
    const double cos = others.ExactCosine(unit_query.data(), c);
    if (cos > best_cos) {
      best_cos = cos;
      best.partner = c;
    }
  }
  if (best.partner >= 0) best.cosine = best_cos;
  return best;
}

// Per column of the matrix: the running float32 maximum over the rows seen
// so far and every row within kRescoreWindow of it when it was seen
// (pruned against the final maximum in Finish).
class ColumnMaxima {
 public:
  explicit ColumnMaxima(const std::vector<bool>& zero) : max_(zero.size(), kNegInf) {
    threshold_.resize(zero.size());
    for (size_t j = 0; j < zero.size(); ++j) threshold_[j] = zero[j] ? kInf : -kInf;
    candidates_.resize(zero.size());
    pruned_size_.assign(zero.size(), 0);
  }

  // Rows first_row .. first_row + rows - 1 of the matrix, block[r * ld + j],
  // for the columns [j0, j1) only (so disjoint column ranges may run on
  // different threads); rows with skip[row] are left out.
  void AddRows(int64_t first_row, int64_t rows, const float* block, int64_t ld, int64_t j0,
               int64_t j1, const std::vector<bool>& skip) {
    for (int64_t r = 0; r < rows; ++r) {
      if (skip[first_row + r]) continue;
      const float* values = block + r * ld;
      for (int64_t j = j0; j < j1; ++j) {
        if (values[j] >= threshold_[j]) Add(first_row + r, j, values[j]);
      }
    }
  }

  // The rows within the window of column j's final maximum, ascending.
  std::vector<int64_t> Candidates(int64_t j) const {
    std::vector<int64_t> out;
    const double threshold = static_cast<double>(max_[j]) - kRescoreWindow;
    for (const auto& [row, value] : candidates_[j]) {
      if (value >= threshold) out.push_back(row);
    }
    return out;
  }

 private:
  void Add(int64_t row, int64_t j, float value) {
    if (value > max_[j]) {
      max_[j] = value;
      threshold_[j] = static_cast<double>(value) - kRescoreWindow;
    }
    std::vector<std::pair<int64_t, float>>& list = candidates_[j];
    list.emplace_back(row, value);
    if (list.size() > 2 * pruned_size_[j] + 16) {
      std::erase_if(list, [&](const auto& e) { return e.second < threshold_[j]; });
      pruned_size_[j] = list.size();
    }
  }

  std::vector<float> max_;
  std::vector<double> threshold_;  // +inf for a zero direction: never a partner
  std::vector<std::vector<std::pair<int64_t, float>>> candidates_;
  std::vector<size_t> pruned_size_;
};

}  // namespace

absl::StatusOr<DecoderComparison> CompareDecoders(const engine::Dictionary& a,
                                                  const engine::Dictionary& b,
                                                  const DecoderMatchOptions& options,
                                                  const ComparisonProgress& progress,
                                                  const std::function<bool()>& cancelled) {
  // Decoder rows have the width of the hook they write: d_in for an SAE,
  // d_out for a transcoder.
  if (a.config.decoder_dim() != b.config.decoder_dim()) {
    const char* wa = a.config.is_transcoder() ? "d_out" : "d_in";
    const char* wb = b.config.is_transcoder() ? "d_out" : "d_in";
    return absl::InvalidArgumentError(absl::StrCat(
        "decoder comparison needs decoder rows of the same width: A has ", wa, " ",
        a.config.decoder_dim(), ", B has ", wb, " ", b.config.decoder_dim(),
        "; use the activation method"));
  }
  if (absl::Status s = CheckDictionary(a, "A"); !s.ok()) return s;
  if (absl::Status s = CheckDictionary(b, "B"); !s.ok()) return s;
  if (options.block_rows < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("block_rows: ", options.block_rows, "; expected >= 1"));
  }
  if (!std::isfinite(options.match_threshold)) {
    return absl::InvalidArgumentError(
        absl::StrCat("match_threshold: ", options.match_threshold, "; expected a finite value"));
  }
  auto is_cancelled = [&] { return cancelled != nullptr && cancelled(); };
  auto report = [&](const char* phase, double fraction) {
    if (progress != nullptr) progress(phase, fraction);
  };

  const auto start = std::chrono::steady_clock::now();
  const Directions da(Borrow(a), DirectionKind::kDecoder);
  const Directions db(Borrow(b), DirectionKind::kDecoder);
  const int64_t na = da.size(), nb = db.size(), dim = da.dim();
  DecoderComparison out;
  out.d_in = dim;
  out.size_a = na;
  out.size_b = nb;
  out.a_to_b.resize(na);
  out.b_to_a.resize(nb);

  std::vector<bool> zero_a(na), zero_b(nb);
  std::vector<float> pen_b(nb);  // -inf on B's zero directions: never a row's best
  for (int64_t i = 0; i < na; ++i) zero_a[i] = da.norm(i) == 0;
  for (int64_t j = 0; j < nb; ++j) {
    zero_b[j] = db.norm(j) == 0;
    pen_b[j] = zero_b[j] ? kNegInf : 0.0f;
  }

  const int64_t block = std::min(options.block_rows, na);
  // The full na x nb matrix (one_to_one) or one block; left uninitialised
  // (every entry is written by the GEMM before it is read).
  const int64_t matrix_rows = options.one_to_one ? na : block;
  std::unique_ptr<float[]> matrix(new (std::nothrow) float[matrix_rows * nb]);
  if (matrix == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("decoder comparison: cannot allocate the ", matrix_rows, " x ", nb,
                     " float32 cosine matrix (", matrix_rows * nb * 4, " bytes)"));
  }
  const std::vector<float> ua = da.UnitRows();
  const std::vector<float> ub = db.UnitRows();

  ColumnMaxima columns(zero_b);
  for (int64_t r0 = 0; r0 < na; r0 += block) {
    if (is_cancelled()) return absl::CancelledError("decoder comparison cancelled");
    const int64_t rows = std::min(block, na - r0);
    float* c = matrix.get() + (options.one_to_one ? r0 * nb : 0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                static_cast<int>(nb), static_cast<int>(dim), 1.0f, ua.data() + r0 * dim,
                static_cast<int>(dim), ub.data(), static_cast<int>(dim), 0.0f, c,
                static_cast<int>(nb));
    // Each row's and each column's result is computed in one chunk, so the
    // split across threads changes nothing.
    engine::ParallelFor(rows, kRowGrain, [&](int64_t begin, int64_t end) {
      std::vector<int64_t> candidates;
      for (int64_t r = begin; r < end; ++r) {
        const int64_t i = r0 + r;
        if (zero_a[i]) continue;
        const float* row = c + r * nb;
        float max = kNegInf;
        for (int64_t j = 0; j < nb; ++j) max = std::max(max, row[j] + pen_b[j]);
        if (max == kNegInf) continue;  // B has only zero directions
        const double threshold = static_cast<double>(max) - kRescoreWindow;
        candidates.clear();
        for (int64_t j = 0; j < nb; ++j) {
          if (row[j] + pen_b[j] >= threshold) candidates.push_back(j);
        }
        out.a_to_b[i] = Rescore(da.UnitDirection(i), db, candidates);
      }
    });
    engine::ParallelFor(nb, kColumnGrain, [&](int64_t j0, int64_t j1) {
      columns.AddRows(r0, rows, c, nb, j0, j1, zero_a);
    });
    report("gemm", static_cast<double>(r0 + rows) / static_cast<double>(na));
  }
  engine::ParallelFor(nb, kRowGrain, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      if (zero_b[j]) continue;
      const std::vector<int64_t> rows = columns.Candidates(j);
      if (!rows.empty()) out.b_to_a[j] = Rescore(db.UnitDirection(j), da, rows);
    }
  });

  const double threshold = options.match_threshold;
  auto summarize = [&](const std::vector<BestMatch>& best, double* mean, double* frac) {
    double sum = 0;
    int64_t matched = 0;
    for (const BestMatch& m : best) {
      sum += m.cosine;
      if (m.partner >= 0 && m.cosine >= threshold) ++matched;
    }
    *mean = sum / static_cast<double>(best.size());
    *frac = static_cast<double>(matched) / static_cast<double>(best.size());
  };
  summarize(out.a_to_b, &out.mmcs_a_to_b, &out.frac_matched_a);
  summarize(out.b_to_a, &out.mmcs_b_to_a, &out.frac_matched_b);
  out.gemm_seconds = Seconds(start);
  if (!options.one_to_one) return out;

  report("assignment", 0);
  const auto assignment_start = std::chrono::steady_clock::now();
  absl::StatusOr<Assignment> assignment = MaxSimilarityAssignment(
      absl::MakeConstSpan(matrix.get(), static_cast<size_t>(na * nb)), na, nb, cancelled);
  if (!assignment.ok()) return assignment.status();
  matrix.reset();
  out.has_assignment = true;
  out.assignment_a_to_b = assignment->row_to_col;
  out.assignment_cosine.assign(na, 0.0);
  auto is_matched = [&](int64_t i, int64_t j) {
    return !zero_a[i] && !zero_b[j] && out.assignment_cosine[i] >= threshold;
  };
  double sum = 0;
  int64_t pairs = 0;
  for (int64_t i = 0; i < na; ++i) {
    const int64_t j = out.assignment_a_to_b[i];
    if (j < 0) {
      out.unmatched_a.push_back(i);
      continue;
    }
    ++pairs;
    if (!zero_a[i]) out.assignment_cosine[i] = db.ExactCosine(da.UnitDirection(i).data(), j);
    sum += out.assignment_cosine[i];
    if (!is_matched(i, j)) out.unmatched_a.push_back(i);
  }
  for (int64_t j = 0; j < nb; ++j) {
    const int64_t i = assignment->col_to_row[j];
    if (i < 0 || !is_matched(i, j)) out.unmatched_b.push_back(j);
  }
  out.assignment_mean = pairs > 0 ? sum / static_cast<double>(pairs) : 0;
  out.assignment_seconds = Seconds(assignment_start);
  report("assignment", 1);
  return out;
}

}  // namespace saedict::compare
