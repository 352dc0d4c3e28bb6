// Evaluation: SAEBench "core" metrics of one dictionary, computed in one
// streaming pass over the rows a caller sends (activations with their codes
// and reconstructions, or a stored corpus's codes alone), plus the weight-
// based metrics from the dictionary itself and the dark-matter share
// ("Decomposing the Dark Matter of Sparse Autoencoders", Engels et al.).
// Every sum is float64; no row is kept except one legacy batch and the
// dark-matter batches (below).
//
// Definitions. n = rows with activations, x_t their inputs, x̂_t the
// reconstructions, e_t = x_t - x̂_t, x̄ = mean_t x_t; T = all rows (both paths).
// A feature is active in a row when its stored value is != 0 (a stored 0
// does not count). SAEBench counts density with > 0; the two agree for every
// non-negative architecture and differ only for matching pursuit, whose
// coefficients may be negative.
//   sparsity
//     l0 = mean over T rows of the number of active features
//     l1 = mean over T rows of Σ |value|   (SAEBench sums values; same for f >= 0)
//   reconstruction_quality (activations only)
//     explained_variance = 1 - Σ_t ||e_t||² / Σ_t ||x_t - x̄||², the denominator
//       from float64 sums as Σ||x||² - n ||x̄||²; absent when it is <= 0
//     explained_variance_legacy = mean_t (1 - ||e_t||² / ||x_t - x̄_b||²), x̄_b the
//       mean of the row's batch of legacy_batch_tokens consecutive rows (the
//       last batch may be shorter); rows with ||x_t - x̄_b|| = 0 are left out
//       (SAEBench would divide by zero); absent when every row is
//     mse = Σ_t ||e_t||² / (n d_in)  (stories260k reference "mse"; SAEBench
//       versions scale their mse differently, e.g. by the batch's token count)
//     mse_sum_over_dims = Σ_t ||e_t||² / n  (the reference's mse_sum_over_dims)
//     cossim = mean_t x_t·x̂_t / (max(||x_t||, 1e-8) max(||x̂_t||, 1e-8))
//   shrinkage (activations only)
//     l2_norm_in = mean ||x_t||, l2_norm_out = mean ||x̂_t||
//     l2_ratio = mean ||x̂_t|| / ||x_t||, with ||x_t|| < 1e-4 replaced by 1 (SAEBench)
//     relative_reconstruction_bias = mean ||x̂_t||² / mean x_t·x̂_t (over all
//       rows at once; SAEBench averages per-batch ratios); absent when the
//       denominator is 0
//   per feature f (all rows)
//     feature_density = rows where f is active / T
//     consistent_activation_heuristic = rows where f is active / prompts where
//       it is active; NaN for a dead feature (SAEBench's 0/0; JSON writes null)
//     encoder_bias = b_enc[f]; gated: b_mag[f] (as SAEBench); 0 when the
//       architecture has no encoder bias (matching pursuit; SAEBench's zeros)
//     encoder_norm = ||W_enc[:, f]|| (W_enc = W_dec^T for a matching pursuit
//       dictionary that stores no W_enc, here and below)
//     encoder_decoder_cosine_sim = cos(W_enc[:, f], W_dec[f]); 0 when either is 0
//     max_decoder_cosine_sim / max_encoder_cosine_sim = the largest cosine of f's
//       decoder row / encoder column with any OTHER feature's (exact: an
//       index::FeatureIndex "Flat" + index::PrecomputeNeighbours top 1); 0 for a
//       zero direction (its cosine with anything is 0); NaN when d_sae == 1
//   misc_metrics
//     freq_over_1_percent / _10_percent = fraction of features with density
//       > 0.01 / > 0.1; normalized_* = Σ density of those / Σ density of all
//       (0 when no feature fired)
//     average_max_{encoder,decoder}_cosine_sim = mean over features of the above
//     frac_alive = fraction of features with density > 0
//   dark matter (activations only): the fraction of the error's variance that
//     is linearly predictable from x. Among the first dark_matter_max_tokens
//     activation rows, every 5th (rows 4, 9, 14, ...) is held out for testing
//     and the rest train a ridge regression e ≈ [x, 1] W:
//       W = (X^T X + λ D)^-1 X^T E over training rows, X = [x, 1],
//       D = identity on the d_in x columns and 0 on the intercept, λ =
//       dark_matter_ridge × the mean of X^T X's diagonal over the x columns
//       (dark_matter_ridge when that is 0). Test rows are never kept: their
//     moments X^T X, X^T E, tr(E^T E) are, so the held-out error
//       Σ||e - ŷ||² = tr(E^T E) - 2 tr(W^T X^T E) + tr(W^T X^T X W)
//     is exact algebra. dark_matter_share = 1 - that / Σ_test ||e - ē_test||².
//     Absent without activations, with fewer than 2 training or 1 test rows,
//     or when the test error has no variance.
//
// Prompts (for the consistent-activation heuristic). Without any EndPrompt()
// or AddDocumentCodes() call, every context_size consecutive rows form a
// prompt (SAEBench's fixed contexts; the last may be shorter). Once either is
// called, the caller's boundaries define the prompts for the whole
// evaluation: a prompt ends at EndPrompt(), and each AddDocumentCodes() call
// is one prompt of its own, whatever its length. Empty prompts do not count.
//
// Errors (a call that fails changes nothing): INVALID_ARGUMENT for bad
// options or dictionary (every call then returns it), codes that fail
// SparseCodes::Validate, num_features != d_sae, x or x̂ not num_rows * d_in
// values, a non-finite x or x̂ value (naming row and column);
// FAILED_PRECONDITION for a call after Finish, or Finish with no rows;
// CANCELLED when cancelled() says so during Finish.
//
// Thread safety: not synchronised; one thread at a time (the result is a
// plain value). Finish runs the cosine GEMMs on the engine's thread pool.
#ifndef SAEDICT_COMPARE_EVALUATION_H_
#define SAEDICT_COMPARE_EVALUATION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/dictionary.h"
#include "util/sparse_codes.h"

namespace saedict::compare {

struct EvaluationOptions {
  // Rows per prompt when the caller gives no boundaries (SAEBench's
  // context_size). <= 0: no automatic split (one prompt until a boundary).
  int64_t context_size = 128;
  // explained_variance_legacy centres each row on the mean of its batch of
  // this many consecutive activation rows (SAEBench computes it per batch).
  // >= 1; the batch (legacy_batch_tokens x d_in floats) is buffered.
  int64_t legacy_batch_tokens = 4096;
  // Activation rows used for the dark-matter fit and test (every 5th held
  // out). 0 disables it. Memory: 4 (d_in + 1)² doubles of moments plus two
  // batches of 512 x (2 d_in + 1) doubles (d_in 2304: 170 MB + 38 MB). Cost:
  // about 3 d_in² flops per row (dsyrk + dgemm), the activation pass's
  // largest by far: OpenBLAS must run its real kernels (see evaluation.cc).
  int64_t dark_matter_max_tokens = 131072;
  // Ridge λ relative to the mean diagonal of X^T X (x columns). > 0, finite.
  double dark_matter_ridge = 1e-3;
  // Keep ||x - x̂|| of every activation row in EvaluationResult.
  bool per_token_error_norms = false;
};

// Every optional is absent when its inputs were not given, never zero-filled.
struct EvaluationResult {
  EvaluationOptions options;             // what the evaluation ran with
  int64_t tokens = 0;                    // all rows (activations + corpus)
  int64_t prompts = 0;                   // see "Prompts" above
  bool prompts_from_boundaries = false;  // true: caller's boundaries; false: context_size
  int64_t tokens_with_activations = 0;   // rows sent with x and x̂

  // sparsity
  double l0 = 0;
  double l1 = 0;
  // reconstruction_quality
  std::optional<double> explained_variance;
  std::optional<double> explained_variance_legacy;
  std::optional<double> mse;
  std::optional<double> mse_sum_over_dims;
  std::optional<double> cossim;
  // shrinkage
  std::optional<double> l2_norm_in;
  std::optional<double> l2_norm_out;
  std::optional<double> l2_ratio;
  std::optional<double> relative_reconstruction_bias;
  // misc_metrics
  double freq_over_1_percent = 0;
  double freq_over_10_percent = 0;
  double normalized_freq_over_1_percent = 0;
  double normalized_freq_over_10_percent = 0;
  double average_max_encoder_cosine_sim = 0;  // NaN when d_sae == 1
  double average_max_decoder_cosine_sim = 0;  // NaN when d_sae == 1
  double frac_alive = 0;
  // beyond SAEBench
  std::optional<double> dark_matter_share;
  int64_t dark_matter_train_tokens = 0;
  int64_t dark_matter_test_tokens = 0;
  // ||x_t - x̂_t|| per activation row, in order (options.per_token_error_norms).
  std::vector<float> per_token_error_norms;

  struct Feature {
    int64_t index = 0;
    double feature_density = 0;
    double consistent_activation_heuristic = 0;  // NaN when dead
    double encoder_bias = 0;
    double encoder_norm = 0;
    double encoder_decoder_cosine_sim = 0;
    double max_decoder_cosine_sim = 0;  // NaN when d_sae == 1
    double max_encoder_cosine_sim = 0;  // NaN when d_sae == 1
  };
  std::vector<Feature> features;  // d_sae, by index
};

class Evaluation {
 public:
  // A null or invalid dictionary or bad options make every later call
  // return INVALID_ARGUMENT saying why.
  Evaluation(std::shared_ptr<const engine::Dictionary> dictionary, EvaluationOptions options = {});
  ~Evaluation();
  Evaluation(const Evaluation&) = delete;
  Evaluation& operator=(const Evaluation&) = delete;

  // Sent activations: x [codes.num_rows, d_in] row-major, their codes
  // (num_features == d_sae) and reconstructions x_hat of the same shape, as
  // engine::Encoder::Encode (return_reconstruction) produces them: the
  // caller encodes. Rows continue the current prompt.
  absl::Status AddActivations(absl::Span<const float> x, const SparseCodes& codes,
                              absl::Span<const float> x_hat);

  // A stored corpus: the codes of one whole document, which is one prompt.
  // No activations, so these rows count for sparsity and density only.
  absl::Status AddDocumentCodes(const SparseCodes& codes);

  // Ends the current prompt (a document boundary); a no-op when it is empty.
  void EndPrompt();

  // Computes every metric (the weight-based ones from the dictionary). Once
  // only, whatever its outcome: later calls, and Add* calls after it, are
  // FAILED_PRECONDITION.
  // cancelled() is polled between steps and between blocks of the cosine
  // search: CANCELLED when it returns true.
  absl::StatusOr<EvaluationResult> Finish(const std::function<bool()>& cancelled = nullptr);

  int64_t tokens() const;  // rows added so far

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace saedict::compare

#endif  // SAEDICT_COMPARE_EVALUATION_H_
