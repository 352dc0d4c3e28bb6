// SVCCA (Raghu et al. 2017) from covariance matrices: the dense float64
// linear algebra behind CompareActivations' space-level score, kept apart so
// it can be tested on its own.
//
// Given the covariance C_aa (n_a x n_a) of one set of variables, C_bb
// (n_b x n_b) of another, and their cross-covariance C_ab (n_a x n_b), all
// over the same samples:
//   1. SVD step: eigen-decompose each side's covariance (C = V Λ V^T) and
//      keep its top eigen-directions, the fewest whose eigenvalues sum to at
//      least variance_kept of the side's total variance; directions with an
//      eigenvalue below 1e-10 of the largest are numerically zero and never
//      kept (they would blow up the whitening). dims_a / dims_b say how many.
//   2. CCA step: whiten each side in the kept directions,
//      W = V_k Λ_k^-1/2, so the whitened variables have unit covariance;
//      their cross-covariance is M = W_a^T C_ab W_b (dims_a x dims_b) and the
//      canonical correlations are the singular values of M, obtained as the
//      square roots of the eigenvalues of the smaller of M M^T and M^T M,
//      clamped to [0, 1].
// The score is the mean of the min(dims_a, dims_b) canonical correlations.
// It is invariant to any invertible linear map of either side that the
// variance truncation does not cut (a rotation, rescaling or mixing of the
// kept space gives the same correlations).
//
// Thread safety: a pure function (OpenBLAS may use its own threads).
#ifndef SAEDICT_COMPARE_SVCCA_H_
#define SAEDICT_COMPARE_SVCCA_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace saedict::compare {

struct SvccaResult {
  int64_t dims_a = 0;  // SVD directions kept on side A
  int64_t dims_b = 0;
  std::vector<double> correlations;  // canonical correlations, descending, min(dims_a, dims_b)
  double mean = 0;                   // mean of `correlations`: the SVCCA similarity
};

// SVCCA of two sides from their (co)variances; matrices are row-major,
// symmetric ones with both triangles filled. Any consistent normalisation
// (1/T, 1/(T-1)) gives the same result.
// Errors: INVALID_ARGUMENT when a size is not positive, a matrix has the
// wrong number of entries, an entry is not finite, or variance_kept is not
// in (0, 1]; FAILED_PRECONDITION when a side has no variance (all
// eigenvalues <= 0); INTERNAL when LAPACK does not converge.
absl::StatusOr<SvccaResult> Svcca(const std::vector<double>& c_aa, int64_t n_a,
                                  const std::vector<double>& c_bb, int64_t n_b,
                                  const std::vector<double>& c_ab, double variance_kept);

}  // namespace saedict::compare

#endif  // SAEDICT_COMPARE_SVCCA_H_
