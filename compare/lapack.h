// The two dense float64 LAPACK routines compare/ needs, from the LAPACK that
// Debian's OpenBLAS carries (dsyevd, dpotrf/dpotrs), behind absl::Status.
// Matrices are row-major n x n std::vector<double>; symmetric inputs are
// used as given (both triangles equal).
//
// Thread safety: pure functions (OpenBLAS may use its own threads).
#ifndef SAEDICT_COMPARE_LAPACK_H_
#define SAEDICT_COMPARE_LAPACK_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace saedict::compare {

struct SymmetricEigen {
  std::vector<double> values;   // ascending, n
  std::vector<double> vectors;  // row-major n x n; column j is the vector of values[j]
};

// Eigen-decomposition of the symmetric n x n matrix `a`. INVALID_ARGUMENT
// when a.size() != n * n or an entry is not finite; INTERNAL when LAPACK
// does not converge.
absl::StatusOr<SymmetricEigen> EigenSymmetric(std::vector<double> a, int64_t n);

// Solves A X = B for X with A symmetric positive definite (n x n) and B
// n x m (row-major), by Cholesky. FAILED_PRECONDITION when A is not
// positive definite (say which leading minor).
absl::StatusOr<std::vector<double>> CholeskySolve(std::vector<double> a, int64_t n,
                                                  std::vector<double> b, int64_t m);

}  // namespace saedict::compare

#endif  // SAEDICT_COMPARE_LAPACK_H_
