// Activation matching: compares two SAE dictionaries A (d_a features) and B
// (d_b features) — possibly of different models, layers or d_in — by how
// their features fire on one shared corpus, not by their decoders. For each
// token the caller supplies A's and B's sparse codes; this pairs every
// feature with its best-correlated feature on the other side and scores the
// matched sets with SVCCA (Raghu et al. 2017, as used by Lan et al. 2024).
//
// Correlation: Pearson over ALL T tokens, inactive = 0, from float64
// moments computed without densifying the corpus:
//   corr(i, j) = (T S_ij - S_i S_j) / sqrt((T Q_i - S_i^2)(T Q_j - S_j^2))
// with S_i, Q_i the sum and sum of squares of feature i and S_ij the sum of
// a_i b_j over the tokens where both fire. S_ij lives in a dense float64
// block of A-rows x B-columns sized to memory_budget_bytes; one corpus pass
// fills one block. Pairs never co-active sit in the block with S_ij = 0, so
// the same formula scores them exactly (-S_i S_j / ...); scanning the block
// costs the same order as clearing it, which each pass does anyway.
//
// Passes over the source (ActivationComparison::passes):
//   pass 1      — moments of both sides, the token count and the block of A
//                 rows [0, r0) x all d_b columns, r0 = budget / (8 d_b);
//   passes 2..  — the alive A features with id >= r0, r1 at a time against
//                 the alive B features only, r1 = budget / (8 alive_b): so
//                 ceil(#{alive i >= r0} / r1) more passes (dead features,
//                 common in SAEs, cost no block memory here);
//   last pass   — the SVCCA co-moments (only when some pair is matched).
// So a comparison whose d_a x d_b block fits the budget takes 2 passes; with
// d_a = d_b = 16384, nothing dead and the default 256 MiB, 1 + 7 + 1 = 9.
// The source's cost per pass usually dominates; a larger budget means fewer.
//
// Definitions: a feature is alive when its activation varies over the
// corpus (it fires on some token and is not the same value on every token),
// i.e. its correlation is defined. Its partner is the alive feature of the
// other side with the highest correlation, ties to the lower id; dead
// features, and all features when the other side has none alive, get
// partner -1 and correlation 0. "Matched": alive, with correlation >=
// match_threshold. SVCCA runs over the pairs (a, a_to_b[a].partner) of
// matched A features, highest correlation first (ties: lower a), at most
// svcca_max_pairs of them, on the T x m activations of the m chosen A
// features against those of their partners (a B feature chosen by several A
// features appears once per pair; the variance truncation absorbs the
// duplicate). It measures whether the matched features span the same space
// up to a linear map, which survives a many-to-one or mixed matching that
// the per-feature correlations would call partial.
//
// Memory: the block (at most memory_budget_bytes, freed before SVCCA),
// O(d_a + d_b) per-feature arrays, and for SVCCA about 10 m^2 doubles
// (80 MiB at m = 1024).
//
// Thread safety: CompareActivations is a pure function of its arguments; it
// calls source, progress and cancelled on the calling thread only.
#ifndef SAEDICT_COMPARE_ACTIVATION_MATCHING_H_
#define SAEDICT_COMPARE_ACTIVATION_MATCHING_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "compare/progress.h"

namespace saedict::compare {

// One token's sparse code on one side: feature ids strictly ascending, each
// < that side's size, with finite values (any sign; inactive = 0).
struct SparseRowView {
  absl::Span<const uint32_t> indices;
  absl::Span<const float> values;  // same length as indices
};

// Receives one token's codes on both sides.
using TokenPairVisitor =
    std::function<absl::Status(const SparseRowView& a, const SparseRowView& b)>;
// Calls visit(a_row, b_row) for every token of the shared corpus, in a fixed
// order, and returns visit's first error (stopping there) or its own. It is
// called once per pass and must yield the same tokens every time.
using TokenPairSource = std::function<absl::Status(const TokenPairVisitor& visit)>;

struct ActivationMatchOptions {
  // Bytes for the dense cross-moment block; a smaller budget means more
  // passes (see the header comment). At least 8 * size_b (one A row).
  int64_t memory_budget_bytes = int64_t{256} << 20;
  // A feature is matched when its best correlation is >= this, in [-1, 1].
  double match_threshold = 0.7;
  // SVCCA over at most this many matched pairs (highest correlation first);
  // its cost grows as m^3 (m = 1024: about a second). 0 skips SVCCA.
  int64_t svcca_max_pairs = 1024;
  // Fraction of each side's variance its kept SVD directions explain, (0, 1].
  double svcca_variance_kept = 0.99;
};

struct CorrelationMatch {
  int64_t partner = -1;  // -1: this feature is dead, or the other side has no alive feature
  double correlation = 0;
};

struct ActivationComparison {
  int64_t tokens = 0;  // tokens in the corpus (each pass reads all of them)
  int64_t passes = 0;  // passes over the source
  int64_t size_a = 0, size_b = 0;
  std::vector<CorrelationMatch> a_to_b;  // size_a entries
  std::vector<CorrelationMatch> b_to_a;  // size_b entries
  // Mean best correlation over the alive features that have a partner.
  double mean_max_corr_a_to_b = 0, mean_max_corr_b_to_a = 0;
  int64_t alive_a = 0, alive_b = 0;
  // Matched features / alive features (0 when none is alive).
  double frac_matched_a = 0, frac_matched_b = 0;
  // SVCCA over the chosen matched pairs (all zero when there are none).
  int64_t svcca_pairs = 0, svcca_dims_a = 0, svcca_dims_b = 0;
  double svcca = 0;                        // mean canonical correlation
  std::vector<double> svcca_correlations;  // descending
};

// Compares A (size_a features) and B (size_b features) over `source`.
// `progress` (may be null) gets phases "cross moments" and "svcca";
// `cancelled` (may be null) is polled every few thousand tokens.
// Errors:
//   INVALID_ARGUMENT   — a size outside [1, 2^32], an option out of range,
//                        or a malformed row ("token T: side A: ..." naming
//                        the index, value or count at fault);
//   FAILED_PRECONDITION — "no shared tokens", or the source yielded a
//                        different number of tokens on a later pass;
//   CANCELLED          — `cancelled` returned true;
//   any error the source returns, unchanged.
absl::StatusOr<ActivationComparison> CompareActivations(
    const TokenPairSource& source, int64_t size_a, int64_t size_b,
    const ActivationMatchOptions& options, const ComparisonProgress& progress = nullptr,
    const std::function<bool()>& cancelled = nullptr);

}  // namespace saedict::compare

#endif  // SAEDICT_COMPARE_ACTIVATION_MATCHING_H_
