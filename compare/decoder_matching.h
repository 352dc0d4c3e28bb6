// Decoder-cosine comparison of two dictionaries over the same d_in: for
// each feature of A its best partner in B by the cosine of their decoder
// rows (and each of B's in A), the mean max cosine (MMCS) both ways, the
// fraction with a partner at or above a threshold, and optionally the exact
// one-to-one assignment maximising the total cosine (linear_assignment.h),
// with the features that assignment leaves without a good partner.
//
// Method: unit decoder rows (index::Directions, kDecoder); the cosine
// matrix A x B^T by cblas_sgemm in blocks of options.block_rows rows of A.
// Best partners come from the float32 matrix, then every candidate within
// 1e-4 of the row's (column's) float32 maximum is rescored in float64
// (Directions::ExactCosine with the float64 unit direction) and the best by
// float64 wins, ties by the lower id; so partners and cosines do not depend
// on the BLAS kernel's rounding. The assignment is the exact optimum of
// the float32 matrix's total (float32 cosines err by ~1e-6 at d_in in the
// thousands, so assignments whose float64 totals differ by less than that
// may come back either way); assignment_cosine holds the float64 cosine of
// each assigned pair.
//
// Zero directions: a feature whose decoder row is zero has no direction; its
// best partner is -1 with cosine 0, and it is never anyone's best partner.
// It is excluded from nothing: it counts as 0 in the MMCS means and as
// unmatched in the fractions (also at a threshold <= 0); the assignment
// treats its cosines as 0 like any others, and a pair with a zero direction
// on either side has assignment_cosine 0 and is always in unmatched_a /
// unmatched_b.
//
// Memory: one float32 unit copy of each side (size x d_in floats) and, with
// one_to_one, the full float32 matrix, size_a x size_b x 4 bytes (1 GiB at
// 16384 x 16384; twice that while the assignment runs when size_a > size_b,
// which solves on a transposed copy); without one_to_one only one block
// (block_rows x size_b floats) and each column's running maximum.
//
// Thread safety: a pure function of the two dictionaries. OpenBLAS uses its
// own threads; the best-partner passes run on engine::ParallelFor's pool,
// each row's and column's result computed in one chunk (the split changes
// nothing); the assignment runs on the caller's thread. progress and
// cancelled are called on the caller's thread.
#ifndef SAEDICT_COMPARE_DECODER_MATCHING_H_
#define SAEDICT_COMPARE_DECODER_MATCHING_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/dictionary.h"

namespace saedict::compare {

struct DecoderMatchOptions {
  double match_threshold = 0.7;  // "matched" = best cosine >= this
  bool one_to_one = true;        // also compute the exact assignment (keeps the full matrix)
  int64_t block_rows = 1024;     // rows of A per GEMM block (>= 1)
};

// partner -1: the feature's decoder direction is zero (or the other side
// has only zero directions); cosine is then 0.
struct BestMatch {
  int64_t partner = -1;
  double cosine = 0;
};

struct DecoderComparison {
  int64_t d_in = 0, size_a = 0, size_b = 0;
  std::vector<BestMatch> a_to_b;  // per feature of A: its best decoder-cosine partner in B
  std::vector<BestMatch> b_to_a;  // per feature of B
  double mmcs_a_to_b = 0, mmcs_b_to_a = 0;        // mean of best cosines
  double frac_matched_a = 0, frac_matched_b = 0;  // fraction with a partner at cosine >= threshold
  bool has_assignment = false;
  std::vector<int64_t> assignment_a_to_b;  // -1 unassigned (size_a > size_b)
  std::vector<double> assignment_cosine;   // float64 cosine of each assigned pair (0 if unassigned)
  double assignment_mean = 0;              // mean cosine over assigned pairs ("hungarian_mean")
  // Unassigned, or assigned with cosine < threshold or to / as a zero
  // direction; ascending (empty without the assignment).
  std::vector<int64_t> unmatched_a, unmatched_b;
  // Wall time: unit rows, GEMM and best partners; the assignment and its
  // float64 pair cosines (0 without the assignment).
  double gemm_seconds = 0, assignment_seconds = 0;
};

// progress(phase, fraction) with phase "gemm" (fraction of A's rows done,
// after each block) then "assignment" (0 at the start, 1 at the end).
using ComparisonProgress = std::function<void(const char* phase, double fraction)>;

// Errors: INVALID_ARGUMENT when the two d_in differ ("decoder comparison
// needs the same d_in: A has 64, B has 128; use the activation method"),
// when either dictionary has no features or a W_dec of the wrong size, or
// when block_rows < 1 or match_threshold is not finite; CANCELLED when
// cancelled() says true (polled between GEMM blocks and inside the
// assignment).
absl::StatusOr<DecoderComparison> CompareDecoders(const engine::Dictionary& a,
                                                  const engine::Dictionary& b,
                                                  const DecoderMatchOptions& options,
                                                  const ComparisonProgress& progress = nullptr,
                                                  const std::function<bool()>& cancelled = nullptr);

}  // namespace saedict::compare

#endif  // SAEDICT_COMPARE_DECODER_MATCHING_H_
