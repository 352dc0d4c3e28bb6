// SVCCA from covariances (see svcca.h).
#include "compare/svcca.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "compare/lapack.h"
#include "util/status_macros.h"

namespace saedict::compare {
namespace {

// Eigenvalues below this fraction of the largest are numerically zero.
constexpr double kNullEigenvalue = 1e-10;

// The whitening map of one side: W = V_k Λ_k^-1/2 (n x k, row-major).
struct Whitening {
  int64_t k = 0;
  std::vector<double> w;
};

absl::StatusOr<Whitening> Whiten(const std::vector<double>& c, int64_t n, double variance_kept,
                                 const char* side) {
  SAEDICT_ASSIGN_OR_RETURN(SymmetricEigen eig, EigenSymmetric(c, n));
  const double largest = eig.values.back();
  double total = 0;
  for (double v : eig.values) total += std::max(v, 0.0);
  if (!(largest > 0) || !(total > 0)) {
    return absl::FailedPreconditionError(
        absl::StrCat("SVCCA: side ", side, " has no variance (largest eigenvalue ", largest, ")"));
  }
  std::vector<int64_t> kept;  // eigen-indices, largest first
  double sum = 0;
  for (int64_t e = n - 1; e >= 0; --e) {
    const double v = eig.values[e];
    if (v <= kNullEigenvalue * largest) break;
    kept.push_back(e);
    sum += v;
    if (sum >= variance_kept * total) break;
  }
  Whitening out;
  out.k = static_cast<int64_t>(kept.size());
  out.w.resize(n * out.k);
  for (int64_t c_out = 0; c_out < out.k; ++c_out) {
    const int64_t e = kept[c_out];
    const double scale = 1.0 / std::sqrt(eig.values[e]);
    for (int64_t r = 0; r < n; ++r) out.w[r * out.k + c_out] = eig.vectors[r * n + e] * scale;
  }
  return out;
}

// Row-major C (m x n) = op(A) op(B).
std::vector<double> Multiply(const std::vector<double>& a, bool transpose_a,
                             const std::vector<double>& b, bool transpose_b, int64_t m, int64_t n,
                             int64_t k) {
  std::vector<double> c(m * n);
  const int lda = static_cast<int>(transpose_a ? m : k),
            ldb = static_cast<int>(transpose_b ? k : n);
  cblas_dgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
              transpose_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0, a.data(), lda, b.data(), ldb, 0.0, c.data(),
              static_cast<int>(n));
  return c;
}

}  // namespace

absl::StatusOr<SvccaResult> Svcca(const std::vector<double>& c_aa, int64_t n_a,
                                  const std::vector<double>& c_bb, int64_t n_b,
                                  const std::vector<double>& c_ab, double variance_kept) {
  if (n_a <= 0 || n_b <= 0 || n_a > (1 << 20) || n_b > (1 << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SVCCA: sizes must be in [1, 2^20], got n_a = ", n_a, ", n_b = ", n_b));
  }
  if (!(variance_kept > 0 && variance_kept <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SVCCA: variance_kept must be in (0, 1], got ", variance_kept));
  }
  if (static_cast<int64_t>(c_ab.size()) != n_a * n_b) {
    return absl::InvalidArgumentError(absl::StrCat("SVCCA: cross-covariance has ", c_ab.size(),
                                                   " entries, expected ", n_a, " x ", n_b));
  }
  for (size_t i = 0; i < c_ab.size(); ++i) {
    if (!std::isfinite(c_ab[i])) {
      return absl::InvalidArgumentError(absl::StrCat("SVCCA: cross-covariance entry (", i / n_b,
                                                     ", ", i % n_b, ") is ", c_ab[i]));
    }
  }
  SAEDICT_ASSIGN_OR_RETURN(Whitening wa, Whiten(c_aa, n_a, variance_kept, "A"));
  SAEDICT_ASSIGN_OR_RETURN(Whitening wb, Whiten(c_bb, n_b, variance_kept, "B"));
  // M = W_a^T C_ab W_b (k_a x k_b).
  const std::vector<double> cw = Multiply(c_ab, false, wb.w, false, n_a, wb.k, n_b);
  const std::vector<double> m = Multiply(wa.w, true, cw, false, wa.k, wb.k, n_a);
  // Singular values of M from the smaller Gram matrix.
  const bool rows = wa.k <= wb.k;
  const int64_t g_n = rows ? wa.k : wb.k;
  std::vector<double> g = rows ? Multiply(m, false, m, true, wa.k, wa.k, wb.k)
                               : Multiply(m, true, m, false, wb.k, wb.k, wa.k);
  for (int64_t i = 0; i < g_n; ++i) {
    for (int64_t j = i + 1; j < g_n; ++j) {
      const double v = 0.5 * (g[i * g_n + j] + g[j * g_n + i]);
      g[i * g_n + j] = g[j * g_n + i] = v;
    }
  }
  SAEDICT_ASSIGN_OR_RETURN(SymmetricEigen eig, EigenSymmetric(std::move(g), g_n));
  SvccaResult out;
  out.dims_a = wa.k;
  out.dims_b = wb.k;
  out.correlations.reserve(g_n);
  for (int64_t e = g_n - 1; e >= 0; --e) {
    out.correlations.push_back(std::clamp(std::sqrt(std::max(eig.values[e], 0.0)), 0.0, 1.0));
  }
  double sum = 0;
  for (double c : out.correlations) sum += c;
  out.mean = sum / static_cast<double>(g_n);
  return out;
}

}  // namespace saedict::compare
