// DecoderSvcca (see decoder_svcca.h): pick the pairs, centre the paired
// decoder rows, form the (cross-)covariances in float64, call Svcca.
#include "compare/decoder_svcca.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace saedict::compare {
namespace {

// Rows `features` of W_dec [*, d], centred over the rows, float64.
std::vector<double> CentredRows(const engine::Dictionary& dict,
                                const std::vector<int64_t>& features) {
  const int64_t d = dict.config.decoder_dim(), n = static_cast<int64_t>(features.size());
  std::vector<double> out(n * d), mean(d, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      out[i * d + j] = dict.w_dec[features[i] * d + j];
      mean[j] += out[i * d + j];
    }
  }
  for (double& m : mean) m /= n;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) out[i * d + j] -= mean[j];
  }
  return out;
}

// x^T y / n for x [n, p], y [n, q]: [p, q].
std::vector<double> Covariance(const std::vector<double>& x, int64_t p,
                               const std::vector<double>& y, int64_t q, int64_t n) {
  std::vector<double> out(p * q, 0.0);
  for (int64_t s = 0; s < n; ++s) {
    for (int64_t i = 0; i < p; ++i) {
      const double xi = x[s * p + i];
      if (xi == 0) continue;
      for (int64_t j = 0; j < q; ++j) out[i * q + j] += xi * y[s * q + j];
    }
  }
  for (double& v : out) v /= n;
  return out;
}

}  // namespace

absl::StatusOr<DecoderSvccaResult> DecoderSvcca(const engine::Dictionary& a,
                                                const engine::Dictionary& b,
                                                const std::vector<CorrelationMatch>& a_to_b,
                                                double min_correlation, double variance_kept) {
  // For each B feature, the A feature correlating best with it (ties: lower id).
  std::map<int64_t, std::pair<double, int64_t>> best_for_b;
  for (size_t i = 0; i < a_to_b.size(); ++i) {
    const CorrelationMatch& m = a_to_b[i];
    if (m.partner < 0 || !(m.correlation >= min_correlation)) continue;
    auto [it, inserted] = best_for_b.emplace(m.partner, std::make_pair(m.correlation, int64_t(i)));
    if (!inserted && m.correlation > it->second.first) it->second = {m.correlation, int64_t(i)};
  }
  std::vector<int64_t> fa, fb;
  for (const auto& [j, best] : best_for_b) {
    fa.push_back(best.second);
    fb.push_back(j);
  }
  const int64_t n = static_cast<int64_t>(fa.size());
  if (n < 2) {
    return absl::FailedPreconditionError(absl::StrCat(
        "decoder SVCCA needs at least 2 paired features with correlation >= ", min_correlation,
        "; ", n, " found"));
  }
  const int64_t da = a.config.decoder_dim(), db = b.config.decoder_dim();
  const std::vector<double> xa = CentredRows(a, fa), xb = CentredRows(b, fb);
  DecoderSvccaResult out;
  out.pairs = n;
  SAEDICT_ASSIGN_OR_RETURN(
      out.svcca, Svcca(Covariance(xa, da, xa, da, n), da, Covariance(xb, db, xb, db, n), db,
                       Covariance(xa, da, xb, db, n), variance_kept));
  return out;
}

}  // namespace saedict::compare
