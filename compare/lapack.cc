// LAPACK wrappers (see lapack.h). LAPACK is column-major: a symmetric matrix
// is its own transpose, and for the solve the right-hand side is transposed
// in and out.
#include "compare/lapack.h"

#include <cmath>

#include "absl/strings/str_cat.h"

extern "C" {
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
             double* work, const int* lwork, int* iwork, const int* liwork, int* info);
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dpotrs_(const char* uplo, const int* n, const int* nrhs, const double* a, const int* lda,
             double* b, const int* ldb, int* info);
}

namespace saedict::compare {
namespace {

absl::Status CheckSquare(const std::vector<double>& a, int64_t n, const char* what) {
  if (n <= 0 || n > (1 << 30) || static_cast<int64_t>(a.size()) != n * n) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", a.size(), " entries for an n x n matrix with n = ", n));
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": entry (", i / n, ", ", i % n, ") is ", a[i]));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SymmetricEigen> EigenSymmetric(std::vector<double> a, int64_t n) {
  if (absl::Status s = CheckSquare(a, n, "eigen-decomposition"); !s.ok()) return s;
  const int ni = static_cast<int>(n);
  SymmetricEigen out;
  out.values.resize(n);
  int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  dsyevd_("V", "U", &ni, a.data(), &ni, out.values.data(), &work_query, &lwork, &iwork_query,
          &liwork, &info);
  if (info != 0) return absl::InternalError(absl::StrCat("dsyevd workspace query: info ", info));
  lwork = static_cast<int>(work_query);
  liwork = iwork_query;
  std::vector<double> work(lwork);
  std::vector<int> iwork(liwork);
  dsyevd_("V", "U", &ni, a.data(), &ni, out.values.data(), work.data(), &lwork, iwork.data(),
          &liwork, &info);
  if (info != 0) {
    return absl::InternalError(absl::StrCat("dsyevd did not converge (info ", info, ")"));
  }
  // Column-major result: eigenvector j is a[j * n .. j * n + n). Row-major
  // with vectors as columns is its transpose.
  out.vectors.resize(n * n);
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < n; ++i) out.vectors[i * n + j] = a[j * n + i];
  }
  return out;
}

absl::StatusOr<std::vector<double>> CholeskySolve(std::vector<double> a, int64_t n,
                                                  std::vector<double> b, int64_t m) {
  if (absl::Status s = CheckSquare(a, n, "Cholesky solve"); !s.ok()) return s;
  if (m <= 0 || static_cast<int64_t>(b.size()) != n * m) {
    return absl::InvalidArgumentError(absl::StrCat("Cholesky solve: right-hand side has ", b.size(),
                                                   " entries, expected ", n, " x ", m));
  }
  const int ni = static_cast<int>(n), mi = static_cast<int>(m);
  int info = 0;
  dpotrf_("U", &ni, a.data(), &ni, &info);
  if (info > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Cholesky solve: the matrix is not positive definite (leading minor ", info, ")"));
  }
  if (info < 0) return absl::InternalError(absl::StrCat("dpotrf: argument ", -info));
  std::vector<double> bt(n * m);  // column-major B
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) bt[j * n + i] = b[i * m + j];
  }
  dpotrs_("U", &ni, &mi, a.data(), &ni, bt.data(), &ni, &info);
  if (info != 0) return absl::InternalError(absl::StrCat("dpotrs: info ", info));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) b[i * m + j] = bt[j * n + i];
  }
  return b;
}

}  // namespace saedict::compare
