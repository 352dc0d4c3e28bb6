// Activation matching (see activation_matching.h).
#include "compare/activation_matching.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "compare/svcca.h"
#include "util/status_macros.h"

namespace saedict::compare {
namespace {

constexpr int64_t kPollEvery = 4096;  // tokens between cancellation polls / progress reports
// T Q - S^2 at or below this fraction of T Q is rounding: the feature is constant.
constexpr double kNoVariance = 1e-12;
constexpr double kMinusInf = -std::numeric_limits<double>::infinity();

// side: "A" or "B"; size_name: "size_a" or "size_b".
absl::Status CheckRow(const SparseRowView& row, int64_t size, const char* side,
                      const char* size_name, int64_t token) {
  if (row.indices.size() != row.values.size()) {
    return absl::InvalidArgumentError(absl::StrCat("token ", token, ": side ", side, " row has ",
                                                   row.indices.size(), " indices but ",
                                                   row.values.size(), " values"));
  }
  for (size_t k = 0; k < row.indices.size(); ++k) {
    const uint32_t f = row.indices[k];
    if (f >= size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token ", token, ": side ", side, ": feature index ", f, " >= ", size_name, " ", size));
    }
    if (k > 0 && f <= row.indices[k - 1]) {
      return absl::InvalidArgumentError(absl::StrCat("token ", token, ": side ", side,
                                                     ": feature indices not strictly ascending (",
                                                     f, " after ", row.indices[k - 1], ")"));
    }
    if (!std::isfinite(row.values[k])) {
      return absl::InvalidArgumentError(absl::StrCat("token ", token, ": side ", side, ": feature ",
                                                     f, " has value ", row.values[k]));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckArguments(int64_t size_a, int64_t size_b, const ActivationMatchOptions& o) {
  constexpr int64_t kMaxSize = int64_t{1} << 32;
  if (size_a < 1 || size_a > kMaxSize || size_b < 1 || size_b > kMaxSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("activation comparison: sizes must be in [1, 2^32], got size_a = ", size_a,
                     ", size_b = ", size_b));
  }
  if (o.memory_budget_bytes < 8 * size_b) {
    return absl::InvalidArgumentError(absl::StrCat(
        "activation comparison: memory_budget_bytes ", o.memory_budget_bytes,
        " is below one row of the cross-moment block (8 * size_b = ", 8 * size_b, ")"));
  }
  if (!(o.match_threshold >= -1 && o.match_threshold <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "activation comparison: match_threshold must be in [-1, 1], got ", o.match_threshold));
  }
  if (o.svcca_max_pairs < 0 || o.svcca_max_pairs > (int64_t{1} << 16)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "activation comparison: svcca_max_pairs must be in [0, 65536], got ", o.svcca_max_pairs));
  }
  if (!(o.svcca_variance_kept > 0 && o.svcca_variance_kept <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("activation comparison: svcca_variance_kept must be in (0, 1], got ",
                     o.svcca_variance_kept));
  }
  return absl::OkStatus();
}

// Per-feature sums of one side and what follows from them once T is known.
struct Moments {
  explicit Moments(int64_t n) : sum(n, 0.0), sumsq(n, 0.0) {}
  void Add(const SparseRowView& row) {
    for (size_t k = 0; k < row.indices.size(); ++k) {
      const double v = row.values[k];
      sum[row.indices[k]] += v;
      sumsq[row.indices[k]] += v * v;
    }
  }
  void Finish(int64_t tokens) {
    const double t = static_cast<double>(tokens);
    const int64_t n = static_cast<int64_t>(sum.size());
    inv_sd.assign(n, 0.0);
    alive.assign(n, 0);
    for (int64_t i = 0; i < n; ++i) {
      const double tq = t * sumsq[i], var = tq - sum[i] * sum[i];
      if (tq > 0 && var > kNoVariance * tq) {
        inv_sd[i] = 1.0 / std::sqrt(var);
        alive[i] = 1;
        alive_ids.push_back(i);
      }
    }
  }
  std::vector<double> sum, sumsq;
  std::vector<double> inv_sd;  // 1 / sqrt(T Q - S^2); 0 when dead
  std::vector<uint8_t> alive;
  std::vector<int64_t> alive_ids;
};

// A token's entry in a block or matrix: its slot there and its value (a
// float, so that stores into double accumulators cannot alias it).
struct Entry {
  int64_t slot;
  float value;
};

// The dense block of cross moments S_ij for A rows `row_ids` x B columns
// `col_ids` (both ascending), with the lookups for accumulating a token.
class CrossBlock {
 public:
  CrossBlock(int64_t size_a, int64_t size_b) : row_of_(size_a, -1), col_of_(size_b, -1) {}

  void Reset(std::vector<int64_t> row_ids, const std::vector<int64_t>& col_ids) {
    for (int64_t i : row_ids_) row_of_[i] = -1;
    row_ids_ = std::move(row_ids);
    for (size_t r = 0; r < row_ids_.size(); ++r) row_of_[row_ids_[r]] = static_cast<int64_t>(r);
    if (col_ids != col_ids_) {
      for (int64_t j : col_ids_) col_of_[j] = -1;
      col_ids_ = col_ids;
      for (size_t c = 0; c < col_ids_.size(); ++c) col_of_[col_ids_[c]] = static_cast<int64_t>(c);
    }
    s_.assign(row_ids_.size() * col_ids_.size(), 0.0);
  }

  void Add(const SparseRowView& a, const SparseRowView& b) {
    cols_.clear();
    for (size_t k = 0; k < b.indices.size(); ++k) {
      const int64_t c = col_of_[b.indices[k]];
      if (c >= 0) cols_.push_back({c, b.values[k]});
    }
    if (cols_.empty()) return;
    const int64_t ncols = static_cast<int64_t>(col_ids_.size());
    double* const s = s_.data();
    const Entry* const cols = cols_.data();
    const size_t n = cols_.size();
    for (size_t k = 0; k < a.indices.size(); ++k) {
      const int64_t r = row_of_[a.indices[k]];
      if (r < 0) continue;
      double* row = s + r * ncols;
      const double av = a.values[k];
      for (size_t e = 0; e < n; ++e) row[cols[e].slot] += av * cols[e].value;
    }
  }

  const std::vector<int64_t>& row_ids() const { return row_ids_; }
  const std::vector<int64_t>& col_ids() const { return col_ids_; }
  const double* row(int64_t r) const { return s_.data() + r * col_ids_.size(); }

 private:
  std::vector<int64_t> row_of_, col_of_;  // block row / column of each feature, or -1
  std::vector<int64_t> row_ids_, col_ids_;
  std::vector<double> s_;    // row-major rows x cols
  std::vector<Entry> cols_;  // scratch: the token's B entries in the block
};

// Best partners so far; a_to_b is final per scanned row, b_to_a per column
// once every A row has been scanned (rows come in ascending id order, so the
// strict comparisons keep the lower id on ties).
struct Best {
  std::vector<CorrelationMatch> a_to_b, b_to_a;
};

void ScanBlock(const CrossBlock& block, const Moments& ma, const Moments& mb, int64_t tokens,
               Best& best) {
  const double t = static_cast<double>(tokens);
  const std::vector<int64_t>& cols = block.col_ids();
  const int64_t ncols = static_cast<int64_t>(cols.size());
  std::vector<double> cs(ncols), ci(ncols), pen(ncols), cb(ncols);
  std::vector<int64_t> ca(ncols);
  for (int64_t c = 0; c < ncols; ++c) {
    const int64_t j = cols[c];
    cs[c] = mb.sum[j];
    ci[c] = mb.inv_sd[j];
    pen[c] = mb.alive[j] ? 0.0 : kMinusInf;  // dead columns never win
    cb[c] = best.b_to_a[j].partner >= 0 ? best.b_to_a[j].correlation : kMinusInf;
    ca[c] = best.b_to_a[j].partner;
  }
  const std::vector<int64_t>& rows = block.row_ids();
  for (size_t r = 0; r < rows.size(); ++r) {
    const int64_t i = rows[r];
    if (!ma.alive[i]) continue;
    const double si = ma.sum[i], ii = ma.inv_sd[i];
    const double* s = block.row(static_cast<int64_t>(r));
    double row_best = kMinusInf;
    int64_t arg = -1;
    for (int64_t c = 0; c < ncols; ++c) {
      const double v = (t * s[c] - si * cs[c]) * (ii * ci[c]) + pen[c];
      if (v > row_best) {
        row_best = v;
        arg = c;
      }
      if (v > cb[c]) {
        cb[c] = v;
        ca[c] = i;
      }
    }
    if (arg >= 0) best.a_to_b[i] = {cols[arg], row_best};
  }
  for (int64_t c = 0; c < ncols; ++c) {
    if (ca[c] >= 0) best.b_to_a[cols[c]] = {ca[c], cb[c]};
  }
}

// Drives one pass: validates every row pair, polls `cancelled`, counts tokens.
template <typename Body>
absl::StatusOr<int64_t> RunPass(const TokenPairSource& source, int64_t size_a, int64_t size_b,
                                const std::function<bool()>& cancelled,
                                const std::function<void(int64_t)>& tick, Body&& body) {
  if (cancelled && cancelled()) return absl::CancelledError("activation comparison cancelled");
  int64_t token = 0;
  absl::Status own;  // our error, kept in case the source drops what visit returned
  const TokenPairVisitor visit = [&](const SparseRowView& a, const SparseRowView& b) {
    if (!own.ok()) return own;
    if (token > 0 && token % kPollEvery == 0) {
      if (cancelled && cancelled()) {
        own = absl::CancelledError("activation comparison cancelled");
        return own;
      }
      if (tick) tick(token);
    }
    own = CheckRow(a, size_a, "A", "size_a", token);
    if (own.ok()) own = CheckRow(b, size_b, "B", "size_b", token);
    if (!own.ok()) return own;
    body(a, b);
    ++token;
    return absl::OkStatus();
  };
  const absl::Status s = source(visit);
  if (!own.ok()) return own;
  if (!s.ok()) return s;
  return token;
}

double Mean(const std::vector<CorrelationMatch>& matches, const Moments& m, double threshold,
            int64_t* alive, double* frac_matched) {
  double sum = 0;
  int64_t with_partner = 0, matched = 0;
  for (int64_t i : m.alive_ids) {
    if (matches[i].partner < 0) continue;
    sum += matches[i].correlation;
    ++with_partner;
    if (matches[i].correlation >= threshold) ++matched;
  }
  *alive = static_cast<int64_t>(m.alive_ids.size());
  *frac_matched = *alive > 0 ? static_cast<double>(matched) / static_cast<double>(*alive) : 0;
  return with_partner > 0 ? sum / static_cast<double>(with_partner) : 0;
}

// The covariances of the chosen pairs' activations over one more pass, then SVCCA.
absl::Status RunSvcca(const TokenPairSource& source, int64_t size_a, int64_t size_b, int64_t tokens,
                      const Moments& ma, const Moments& mb,
                      const std::vector<std::pair<int64_t, int64_t>>& pairs, double variance_kept,
                      const std::function<bool()>& cancelled,
                      const std::function<void(int64_t)>& tick, ActivationComparison& out) {
  const int64_t m = static_cast<int64_t>(pairs.size());
  std::vector<int64_t> a_slot(size_a, -1), b_slot(size_b, -1), b_ids;  // b: distinct partners
  std::vector<int64_t> pair_b(m);
  for (int64_t p = 0; p < m; ++p) {
    a_slot[pairs[p].first] = p;
    int64_t& s = b_slot[pairs[p].second];
    if (s < 0) {
      s = static_cast<int64_t>(b_ids.size());
      b_ids.push_back(pairs[p].second);
    }
    pair_b[p] = s;
  }
  const int64_t u = static_cast<int64_t>(b_ids.size());
  // Raw co-moments; saa and sbb accumulate their upper triangles only.
  std::vector<double> saa(m * m, 0.0), sbb(u * u, 0.0), sab(m * u, 0.0);
  std::vector<Entry> la, lb;
  const auto by_slot = [](const Entry& x, const Entry& y) { return x.slot < y.slot; };
  const auto gather = [](const SparseRowView& row, const std::vector<int64_t>& slot_of,
                         std::vector<Entry>& out) {
    out.clear();
    for (size_t k = 0; k < row.indices.size(); ++k) {
      if (const int64_t s = slot_of[row.indices[k]]; s >= 0) out.push_back({s, row.values[k]});
    }
  };
  const auto upper = [](const std::vector<Entry>& l, double* g, int64_t n) {
    for (size_t e = 0; e < l.size(); ++e) {
      double* row = g + l[e].slot * n;
      const double x = l[e].value;
      for (size_t f = e; f < l.size(); ++f) row[l[f].slot] += x * l[f].value;
    }
  };
  SAEDICT_ASSIGN_OR_RETURN(const int64_t seen,
                           RunPass(source, size_a, size_b, cancelled, tick,
                                   [&](const SparseRowView& a, const SparseRowView& b) {
                                     gather(a, a_slot, la);
                                     gather(b, b_slot, lb);
                                     std::sort(la.begin(), la.end(), by_slot);
                                     std::sort(lb.begin(), lb.end(), by_slot);
                                     upper(la, saa.data(), m);
                                     upper(lb, sbb.data(), u);
                                     for (const Entry& x : la) {
                                       double* row = sab.data() + x.slot * u;
                                       for (const Entry& y : lb)
                                         row[y.slot] += static_cast<double>(x.value) * y.value;
                                     }
                                   }));
  for (int64_t p = 0; p < m; ++p) {
    for (int64_t q = 0; q < p; ++q) saa[p * m + q] = saa[q * m + p];
  }
  for (int64_t p = 0; p < u; ++p) {
    for (int64_t q = 0; q < p; ++q) sbb[p * u + q] = sbb[q * u + p];
  }
  if (seen != tokens) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the token source yielded ", seen, " tokens on the SVCCA pass, ", tokens, " on the first"));
  }
  const double t = static_cast<double>(tokens);
  std::vector<double> mu_a(m), mu_b(m);
  for (int64_t p = 0; p < m; ++p) {
    mu_a[p] = ma.sum[pairs[p].first] / t;
    mu_b[p] = mb.sum[pairs[p].second] / t;
  }
  std::vector<double> caa(m * m), cbb(m * m), cab(m * m);
  for (int64_t p = 0; p < m; ++p) {
    for (int64_t q = 0; q < m; ++q) {
      caa[p * m + q] = saa[p * m + q] / t - mu_a[p] * mu_a[q];
      cbb[p * m + q] = sbb[pair_b[p] * u + pair_b[q]] / t - mu_b[p] * mu_b[q];
      cab[p * m + q] = sab[p * u + pair_b[q]] / t - mu_a[p] * mu_b[q];
    }
  }
  SAEDICT_ASSIGN_OR_RETURN(SvccaResult r, Svcca(caa, m, cbb, m, cab, variance_kept));
  out.svcca_pairs = m;
  out.svcca_dims_a = r.dims_a;
  out.svcca_dims_b = r.dims_b;
  out.svcca = r.mean;
  out.svcca_correlations = std::move(r.correlations);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ActivationComparison> CompareActivations(const TokenPairSource& source,
                                                        int64_t size_a, int64_t size_b,
                                                        const ActivationMatchOptions& options,
                                                        const ComparisonProgress& progress,
                                                        const std::function<bool()>& cancelled) {
  SAEDICT_RETURN_IF_ERROR(CheckArguments(size_a, size_b, options));
  if (!source) return absl::InvalidArgumentError("activation comparison: no token source");
  const auto report = [&](const char* phase, double fraction) {
    if (progress) progress(phase, std::min(fraction, 1.0));
  };
  ActivationComparison out;
  out.size_a = size_a;
  out.size_b = size_b;
  Moments ma(size_a), mb(size_b);
  std::optional<CrossBlock> block(std::in_place, size_a, size_b);
  const int64_t budget_doubles = options.memory_budget_bytes / 8;

  // Pass 1: moments, tokens and the first block, A rows [0, r0) x all of B.
  report("cross moments", 0);
  {
    const int64_t r0 = std::min(size_a, budget_doubles / size_b);
    std::vector<int64_t> rows(r0), cols(size_b);
    for (int64_t i = 0; i < r0; ++i) rows[i] = i;
    for (int64_t j = 0; j < size_b; ++j) cols[j] = j;
    block->Reset(std::move(rows), cols);
    SAEDICT_ASSIGN_OR_RETURN(out.tokens,
                             RunPass(source, size_a, size_b, cancelled, nullptr,
                                     [&](const SparseRowView& a, const SparseRowView& b) {
                                       ma.Add(a);
                                       mb.Add(b);
                                       block->Add(a, b);
                                     }));
    out.passes = 1;
  }
  if (out.tokens == 0) return absl::FailedPreconditionError("no shared tokens");
  ma.Finish(out.tokens);
  mb.Finish(out.tokens);
  Best best;
  best.a_to_b.assign(size_a, CorrelationMatch{});
  best.b_to_a.assign(size_b, CorrelationMatch{});
  ScanBlock(*block, ma, mb, out.tokens, best);

  // Passes 2..: the alive A features past the first block x the alive B features.
  std::vector<int64_t> rest;
  if (!mb.alive_ids.empty()) {
    const int64_t r0 = static_cast<int64_t>(block->row_ids().size());
    for (int64_t i : ma.alive_ids) {
      if (i >= r0) rest.push_back(i);
    }
  }
  const int64_t r1 =
      mb.alive_ids.empty() ? 1 : budget_doubles / static_cast<int64_t>(mb.alive_ids.size());
  const int64_t rest_passes = (static_cast<int64_t>(rest.size()) + r1 - 1) / r1;
  const double cross_passes = static_cast<double>(1 + rest_passes);
  report("cross moments", 1 / cross_passes);
  for (int64_t p = 0; p < rest_passes; ++p) {
    const auto first = rest.begin() + p * r1;
    const auto last = rest.begin() + std::min<int64_t>((p + 1) * r1, rest.size());
    block->Reset(std::vector<int64_t>(first, last), mb.alive_ids);
    const auto tick = [&](int64_t token) {
      report("cross moments",
             (1 + p + static_cast<double>(token) / static_cast<double>(out.tokens)) / cross_passes);
    };
    SAEDICT_ASSIGN_OR_RETURN(
        const int64_t seen,
        RunPass(source, size_a, size_b, cancelled, tick,
                [&](const SparseRowView& a, const SparseRowView& b) { block->Add(a, b); }));
    ++out.passes;
    if (seen != out.tokens) {
      return absl::FailedPreconditionError(absl::StrCat("the token source yielded ", seen,
                                                        " tokens on pass ", out.passes, ", ",
                                                        out.tokens, " on the first"));
    }
    ScanBlock(*block, ma, mb, out.tokens, best);
    report("cross moments", (2 + p) / cross_passes);
  }
  block.reset();
  for (auto* side : {&best.a_to_b, &best.b_to_a}) {
    for (CorrelationMatch& m : *side) m.correlation = std::clamp(m.correlation, -1.0, 1.0);
  }
  out.a_to_b = std::move(best.a_to_b);
  out.b_to_a = std::move(best.b_to_a);
  out.mean_max_corr_a_to_b =
      Mean(out.a_to_b, ma, options.match_threshold, &out.alive_a, &out.frac_matched_a);
  out.mean_max_corr_b_to_a =
      Mean(out.b_to_a, mb, options.match_threshold, &out.alive_b, &out.frac_matched_b);

  // SVCCA over the best matched pairs.
  std::vector<std::pair<int64_t, int64_t>> pairs;  // (a, partner)
  for (int64_t i : ma.alive_ids) {
    const CorrelationMatch& m = out.a_to_b[i];
    if (m.partner >= 0 && m.correlation >= options.match_threshold) pairs.push_back({i, m.partner});
  }
  std::stable_sort(pairs.begin(), pairs.end(), [&](const auto& x, const auto& y) {
    return out.a_to_b[x.first].correlation > out.a_to_b[y.first].correlation;
  });
  if (static_cast<int64_t>(pairs.size()) > options.svcca_max_pairs) {
    pairs.resize(options.svcca_max_pairs);
  }
  if (!pairs.empty()) {
    report("svcca", 0);
    const auto tick = [&](int64_t token) {
      report("svcca", 0.9 * static_cast<double>(token) / static_cast<double>(out.tokens));
    };
    SAEDICT_RETURN_IF_ERROR(RunSvcca(source, size_a, size_b, out.tokens, ma, mb, pairs,
                                     options.svcca_variance_kept, cancelled, tick, out));
    ++out.passes;
    report("svcca", 1);
  }
  return out;
}

}  // namespace saedict::compare
