// Evaluation (see evaluation.h). One pass over the rows: per-row sums in
// float64, per-feature counts for two prompt hypotheses (context_size chunks
// and the caller's boundaries; Finish picks the one that applies), one
// buffered legacy batch, and the dark-matter moment matrices, accumulated
// from buffered batches with dsyrk / dgemm. Finish adds the weight-based
// metrics and solves the ridge regression.
//
// Speed: the moments cost ~3 d_in² flops per dark-matter row (d_in 2304,
// 131072 rows: ~1e12). Measured on this project's 2-core VM (Xeon with
// AVX-512 whose CPUID model OpenBLAS 0.3.21 does not know, so DYNAMIC_ARCH
// falls back to its "Prescott" SSE3 kernels): ~6 GFLOPS, 190-210 s; with
// OPENBLAS_CORETYPE=SkylakeX in the environment ~35-40 GFLOPS, ~46 s.
#include "compare/evaluation.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "compare/lapack.h"
#include "index/feature_index.h"
#include "index/neighbours.h"
#include "util/status_macros.h"

namespace saedict::compare {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kDarkMatterBatchRows = 512;  // rows per dsyrk / dgemm
constexpr int64_t kHeldOutEvery = 5;           // row i is a test row when i % 5 == 4

absl::Status CheckOptions(const EvaluationOptions& o) {
  if (o.legacy_batch_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "evaluation options: legacy_batch_tokens must be >= 1, got ", o.legacy_batch_tokens));
  }
  if (o.dark_matter_max_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "evaluation options: dark_matter_max_tokens must be >= 0, got ", o.dark_matter_max_tokens));
  }
  if (!(o.dark_matter_ridge > 0) || !std::isfinite(o.dark_matter_ridge)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "evaluation options: dark_matter_ridge must be finite and > 0, got ", o.dark_matter_ridge));
  }
  return absl::OkStatus();
}

absl::Status CheckFinite(absl::Span<const float> v, int64_t d, const char* what) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": row ", i / d, " column ", i % d,
                                                     " is ", v[i], " (values must be finite)"));
    }
  }
  return absl::OkStatus();
}

// Prompt bookkeeping for one way of cutting rows into prompts: the number of
// prompts and, per feature, in how many of them it was active.
class PromptCounter {
 public:
  PromptCounter(int64_t d_sae, int64_t max_rows)
      : max_rows_(max_rows), last_(d_sae, -1), fired_(d_sae, 0) {}
  void BeginRow() {
    if (!open_) {
      ++id_;
      ++prompts_;
      open_ = true;
      rows_ = 0;
    }
  }
  void Active(uint32_t f) {
    if (last_[f] != id_) {
      last_[f] = id_;
      ++fired_[f];
    }
  }
  void EndRow() {
    if (max_rows_ > 0 && ++rows_ == max_rows_) open_ = false;
  }
  void EndPrompt() { open_ = false; }
  int64_t prompts() const { return prompts_; }
  const std::vector<int64_t>& fired() const { return fired_; }

 private:
  int64_t max_rows_;  // <= 0: no limit
  int64_t id_ = -1, prompts_ = 0, rows_ = 0;
  bool open_ = false;
  std::vector<int64_t> last_;   // the last prompt id the feature fired in
  std::vector<int64_t> fired_;  // prompts the feature fired in
};

// The ridge regression's moments over one set of rows (train or test), fed
// from a buffer of kDarkMatterBatchRows rows: X = [x, 1] (d + 1 columns), E.
struct Moments {
  int64_t rows = 0;
  std::vector<double> xtx;  // (d+1)^2 row-major; upper triangle only (dsyrk)
  std::vector<double> xte;  // (d+1) x d; its last row is Σ e
  double ete = 0;           // tr(E^T E)
  std::vector<double> bx, be;
  int64_t buffered = 0;

  void Add(int64_t d, const float* x, const float* x_hat) {
    const int64_t n = d + 1;
    if (xtx.empty()) {
      xtx.assign(n * n, 0.0);
      xte.assign(n * d, 0.0);
      bx.resize(kDarkMatterBatchRows * n);
      be.resize(kDarkMatterBatchRows * d);
    }
    double* rx = bx.data() + buffered * n;
    double* re = be.data() + buffered * d;
    for (int64_t j = 0; j < d; ++j) {
      rx[j] = x[j];
      re[j] = static_cast<double>(x[j]) - static_cast<double>(x_hat[j]);
      ete += re[j] * re[j];
    }
    rx[d] = 1.0;
    ++rows;
    if (++buffered == kDarkMatterBatchRows) Flush(d);
  }

  void Flush(int64_t d) {
    if (buffered == 0) return;
    const int n = static_cast<int>(d + 1), di = static_cast<int>(d), k = static_cast<int>(buffered);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, n, k, 1.0, bx.data(), n, 1.0, xtx.data(), n);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, di, k, 1.0, bx.data(), n, be.data(), di,
                1.0, xte.data(), di);
    buffered = 0;
  }
};

// Dark matter: the held-out share of the error variance that [x, 1] W predicts.
absl::StatusOr<std::optional<double>> DarkMatterShare(int64_t d, double ridge, Moments& train,
                                                      Moments& test) {
  if (train.rows < 2 || test.rows < 1) return std::optional<double>();
  train.Flush(d);
  test.Flush(d);
  const int64_t n = d + 1;
  std::vector<double> a = train.xtx;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < i; ++j) a[i * n + j] = a[j * n + i];
  }
  double mean_diag = 0;
  for (int64_t j = 0; j < d; ++j) mean_diag += a[j * n + j];
  mean_diag /= static_cast<double>(d);
  const double lambda = mean_diag > 0 ? ridge * mean_diag : ridge;
  for (int64_t j = 0; j < d; ++j) a[j * n + j] += lambda;
  absl::StatusOr<std::vector<double>> w = CholeskySolve(std::move(a), n, train.xte, d);
  if (!w.ok()) {
    return absl::Status(w.status().code(),
                        absl::StrCat("dark matter ridge fit: ", w.status().message()));
  }
  // Held-out error, algebraically: tr(E^T E) - 2 tr(W^T X^T E) + tr(W^T X^T X W).
  std::vector<double> xtx_w(n * d);
  cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, static_cast<int>(n), static_cast<int>(d), 1.0,
              test.xtx.data(), static_cast<int>(n), w->data(), static_cast<int>(d), 0.0,
              xtx_w.data(), static_cast<int>(d));
  double cross = 0, quad = 0;
  for (int64_t i = 0; i < n * d; ++i) {
    cross += (*w)[i] * test.xte[i];
    quad += (*w)[i] * xtx_w[i];
  }
  const double error = test.ete - 2 * cross + quad;
  double sum_e2 = 0;  // ||Σ e||² over the test rows (the last row of X^T E)
  for (int64_t j = 0; j < d; ++j) sum_e2 += test.xte[d * d + j] * test.xte[d * d + j];
  const double variance = test.ete - sum_e2 / static_cast<double>(test.rows);
  if (!(variance > 0)) return std::optional<double>();
  return std::optional<double>(1.0 - error / variance);
}

// encoder_bias, encoder_norm and encoder_decoder_cosine_sim of every feature.
void WeightMetrics(const engine::Dictionary& dict, std::vector<EvaluationResult::Feature>& out) {
  const int64_t d_in = dict.config.d_in, d_sae = dict.config.d_sae;
  const std::vector<float>* bias = nullptr;
  if (dict.config.architecture == engine::Architecture::kGated) {
    bias = &dict.b_mag;
  } else if (!dict.b_enc.empty()) {
    bias = &dict.b_enc;
  }
  constexpr int64_t kBlock = 64;  // features whose decoder rows stay in cache
  std::vector<double> enc2(kBlock), dec2(kBlock), dot(kBlock);
  for (int64_t f0 = 0; f0 < d_sae; f0 += kBlock) {
    const int64_t nb = std::min(kBlock, d_sae - f0);
    std::fill(enc2.begin(), enc2.end(), 0.0);
    std::fill(dec2.begin(), dec2.end(), 0.0);
    std::fill(dot.begin(), dot.end(), 0.0);
    // Matching pursuit may omit W_enc, which is then W_dec^T.
    const bool tied = dict.w_enc.empty();
    for (int64_t j = 0; j < d_in; ++j) {
      const float* enc_row = tied ? nullptr : dict.w_enc.data() + j * d_sae + f0;
      for (int64_t b = 0; b < nb; ++b) {
        const double w = dict.w_dec[(f0 + b) * d_in + j], e = tied ? w : enc_row[b];
        enc2[b] += e * e;
        dec2[b] += w * w;
        dot[b] += e * w;
      }
    }
    for (int64_t b = 0; b < nb; ++b) {
      EvaluationResult::Feature& f = out[f0 + b];
      f.encoder_bias = bias ? (*bias)[f0 + b] : 0.0;
      f.encoder_norm = std::sqrt(enc2[b]);
      const double denominator = std::sqrt(enc2[b]) * std::sqrt(dec2[b]);
      f.encoder_decoder_cosine_sim = denominator > 0 ? dot[b] / denominator : 0.0;
    }
  }
}

// Each feature's largest cosine with another feature's direction of `kind`;
// the mean of those is returned.
absl::StatusOr<double> MaxCosines(const std::shared_ptr<const engine::Dictionary>& dict,
                                  index::DirectionKind kind, const std::function<bool()>& cancelled,
                                  std::vector<EvaluationResult::Feature>& out) {
  const int64_t d_sae = dict->config.d_sae;
  double EvaluationResult::Feature::*field =
      kind == index::DirectionKind::kDecoder ? &EvaluationResult::Feature::max_decoder_cosine_sim
                                             : &EvaluationResult::Feature::max_encoder_cosine_sim;
  if (d_sae < 2) {
    for (auto& f : out) f.*field = kNaN;
    return kNaN;
  }
  index::IndexConfig config;
  config.factory = "Flat";  // exact
  SAEDICT_ASSIGN_OR_RETURN(std::unique_ptr<index::FeatureIndex> idx,
                           index::FeatureIndex::Build(dict, kind, config));
  index::NeighbourOptions options;
  options.top_n = 1;
  double sum = 0;
  SAEDICT_RETURN_IF_ERROR(index::PrecomputeNeighbours(
      *idx, options,
      [&](int64_t first, std::vector<std::vector<index::Hit>> lists) -> absl::Status {
        for (size_t r = 0; r < lists.size(); ++r) {
          // No neighbour: a zero direction, whose cosine with anything is 0.
          const double c = lists[r].empty() ? 0.0 : lists[r][0].cosine;
          out[first + r].*field = c;
          sum += c;
        }
        return absl::OkStatus();
      },
      cancelled));
  return sum / static_cast<double>(d_sae);
}

}  // namespace

class Evaluation::Impl {
 public:
  Impl(std::shared_ptr<const engine::Dictionary> dictionary, EvaluationOptions options)
      : dict_(std::move(dictionary)), options_(options) {
    if (dict_ == nullptr) {
      status_ = absl::InvalidArgumentError("evaluation: no dictionary");
      return;
    }
    if (absl::Status s = dict_->Validate(); !s.ok()) {
      status_ = absl::InvalidArgumentError(absl::StrCat("evaluation: dictionary: ", s.message()));
      return;
    }
    status_ = CheckOptions(options_);
    if (!status_.ok()) return;
    d_in_ = dict_->config.d_in;
    d_sae_ = dict_->config.d_sae;
    active_rows_.assign(d_sae_, 0);
    by_context_.emplace(d_sae_, options_.context_size);
    by_boundary_.emplace(d_sae_, 0);
    sum_x_.assign(d_in_, 0.0);
  }

  absl::Status AddActivations(absl::Span<const float> x, const SparseCodes& codes,
                              absl::Span<const float> x_hat) {
    SAEDICT_RETURN_IF_ERROR(CheckCodes(codes));
    const int64_t values = codes.num_rows * d_in_;
    if (static_cast<int64_t>(x.size()) != values) {
      return absl::InvalidArgumentError(absl::StrCat("x: ", x.size(), " values for ",
                                                     codes.num_rows, " rows of d_in ", d_in_,
                                                     " (expected ", values, ")"));
    }
    if (static_cast<int64_t>(x_hat.size()) != values) {
      return absl::InvalidArgumentError(absl::StrCat("x_hat: ", x_hat.size(), " values for ",
                                                     codes.num_rows, " rows of d_in ", d_in_,
                                                     " (expected ", values, ")"));
    }
    SAEDICT_RETURN_IF_ERROR(CheckFinite(x, d_in_, "x"));
    SAEDICT_RETURN_IF_ERROR(CheckFinite(x_hat, d_in_, "x_hat"));
    AddCodes(codes);
    for (int64_t r = 0; r < codes.num_rows; ++r) {
      AddRow(x.data() + r * d_in_, x_hat.data() + r * d_in_);
    }
    return absl::OkStatus();
  }

  absl::Status AddDocumentCodes(const SparseCodes& codes) {
    SAEDICT_RETURN_IF_ERROR(CheckCodes(codes));
    EndPrompt();
    AddCodes(codes);
    EndPrompt();
    return absl::OkStatus();
  }

  void EndPrompt() {
    if (!status_.ok() || finished_) return;
    boundaries_given_ = true;
    by_boundary_->EndPrompt();
  }

  absl::StatusOr<EvaluationResult> Finish(const std::function<bool()>& cancelled) {
    SAEDICT_RETURN_IF_ERROR(CheckState());
    if (tokens_ == 0) {
      return absl::FailedPreconditionError("evaluation: no rows were added");
    }
    finished_ = true;
    auto is_cancelled = [&]() { return cancelled && cancelled(); };
    EvaluationResult r;
    r.options = options_;
    r.tokens = tokens_;
    r.tokens_with_activations = n_;
    r.prompts_from_boundaries = boundaries_given_;
    const PromptCounter& prompts = boundaries_given_ ? *by_boundary_ : *by_context_;
    r.prompts = prompts.prompts();
    const double t = static_cast<double>(tokens_);
    r.l0 = static_cast<double>(l0_sum_) / t;
    r.l1 = l1_sum_ / t;

    if (n_ > 0) Reconstruction(r);

    // Densities and the misc metrics derived from them.
    r.features.resize(d_sae_);
    double total = 0, over1 = 0, over10 = 0;
    int64_t n_over1 = 0, n_over10 = 0, alive = 0;
    for (int64_t f = 0; f < d_sae_; ++f) {
      EvaluationResult::Feature& feature = r.features[f];
      feature.index = f;
      const double density = static_cast<double>(active_rows_[f]) / t;
      feature.feature_density = density;
      const int64_t fired = prompts.fired()[f];
      feature.consistent_activation_heuristic =
          fired > 0 ? static_cast<double>(active_rows_[f]) / static_cast<double>(fired) : kNaN;
      total += density;
      if (density > 0) ++alive;
      if (density > 0.01) {
        ++n_over1;
        over1 += density;
      }
      if (density > 0.1) {
        ++n_over10;
        over10 += density;
      }
    }
    const double features = static_cast<double>(d_sae_);
    r.freq_over_1_percent = static_cast<double>(n_over1) / features;
    r.freq_over_10_percent = static_cast<double>(n_over10) / features;
    r.normalized_freq_over_1_percent = total > 0 ? over1 / total : 0.0;
    r.normalized_freq_over_10_percent = total > 0 ? over10 / total : 0.0;
    r.frac_alive = static_cast<double>(alive) / features;

    WeightMetrics(*dict_, r.features);
    if (is_cancelled()) return absl::CancelledError("evaluation cancelled");
    SAEDICT_ASSIGN_OR_RETURN(
        r.average_max_decoder_cosine_sim,
        MaxCosines(dict_, index::DirectionKind::kDecoder, cancelled, r.features));
    if (is_cancelled()) return absl::CancelledError("evaluation cancelled");
    if (dict_->w_enc.empty()) {  // tied matching pursuit: the encoder is W_dec^T
      r.average_max_encoder_cosine_sim = r.average_max_decoder_cosine_sim;
      for (auto& f : r.features) f.max_encoder_cosine_sim = f.max_decoder_cosine_sim;
    } else {
      SAEDICT_ASSIGN_OR_RETURN(
          r.average_max_encoder_cosine_sim,
          MaxCosines(dict_, index::DirectionKind::kEncoder, cancelled, r.features));
    }
    if (is_cancelled()) return absl::CancelledError("evaluation cancelled");

    r.dark_matter_train_tokens = train_.rows;
    r.dark_matter_test_tokens = test_.rows;
    SAEDICT_ASSIGN_OR_RETURN(r.dark_matter_share,
                             DarkMatterShare(d_in_, options_.dark_matter_ridge, train_, test_));
    r.per_token_error_norms = std::move(error_norms_);
    return r;
  }

  int64_t tokens() const { return tokens_; }

 private:
  absl::Status CheckState() const {
    if (!status_.ok()) return status_;
    if (finished_) return absl::FailedPreconditionError("evaluation: already finished");
    return absl::OkStatus();
  }

  absl::Status CheckCodes(const SparseCodes& codes) const {
    SAEDICT_RETURN_IF_ERROR(CheckState());
    if (codes.num_features != d_sae_) {
      return absl::InvalidArgumentError(absl::StrCat("codes: num_features ", codes.num_features,
                                                     ", but the dictionary has d_sae ", d_sae_));
    }
    return codes.Validate();
  }

  // Sparsity, densities and prompt counts of validated codes.
  void AddCodes(const SparseCodes& codes) {
    for (int64_t r = 0; r < codes.num_rows; ++r) {
      by_context_->BeginRow();
      by_boundary_->BeginRow();
      for (uint64_t i = codes.row_offsets[r]; i < codes.row_offsets[r + 1]; ++i) {
        const float v = codes.values[i];
        if (v == 0) continue;
        const uint32_t f = codes.indices[i];
        ++l0_sum_;
        l1_sum_ += std::abs(static_cast<double>(v));
        ++active_rows_[f];
        by_context_->Active(f);
        by_boundary_->Active(f);
      }
      by_context_->EndRow();
      by_boundary_->EndRow();
    }
    tokens_ += codes.num_rows;
  }

  void AddRow(const float* x, const float* x_hat) {
    double xx = 0, hh = 0, xh = 0, ee = 0;
    for (int64_t j = 0; j < d_in_; ++j) {
      const double a = x[j], b = x_hat[j], e = a - b;
      xx += a * a;
      hh += b * b;
      xh += a * b;
      ee += e * e;
      sum_x_[j] += a;
    }
    const double norm_x = std::sqrt(xx), norm_h = std::sqrt(hh);
    sum_x2_ += xx;
    sse_ += ee;
    sum_h2_ += hh;
    sum_xh_ += xh;
    sum_norm_in_ += norm_x;
    sum_norm_out_ += norm_h;
    sum_ratio_ += norm_h / (norm_x < 1e-4 ? 1.0 : norm_x);
    sum_cos_ += xh / (std::max(norm_x, 1e-8) * std::max(norm_h, 1e-8));
    if (options_.per_token_error_norms) error_norms_.push_back(static_cast<float>(std::sqrt(ee)));

    // The legacy explained variance's batch.
    if (legacy_x_.empty()) {
      legacy_x_.reserve(std::min<int64_t>(options_.legacy_batch_tokens, 4096) * d_in_);
    }
    legacy_x_.insert(legacy_x_.end(), x, x + d_in_);
    legacy_err_.push_back(ee);
    if (static_cast<int64_t>(legacy_err_.size()) == options_.legacy_batch_tokens) FlushLegacy();

    if (n_ < options_.dark_matter_max_tokens) {
      (n_ % kHeldOutEvery == kHeldOutEvery - 1 ? test_ : train_).Add(d_in_, x, x_hat);
    }
    ++n_;
  }

  void FlushLegacy() {
    const int64_t rows = static_cast<int64_t>(legacy_err_.size());
    if (rows == 0) return;
    std::vector<double> mean(d_in_, 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < d_in_; ++j) mean[j] += legacy_x_[r * d_in_ + j];
    }
    for (double& m : mean) m /= static_cast<double>(rows);
    for (int64_t r = 0; r < rows; ++r) {
      double tv = 0;
      for (int64_t j = 0; j < d_in_; ++j) {
        const double c = legacy_x_[r * d_in_ + j] - mean[j];
        tv += c * c;
      }
      if (tv > 0) {
        legacy_sum_ += 1.0 - legacy_err_[r] / tv;
        ++legacy_rows_;
      }
    }
    legacy_x_.clear();
    legacy_err_.clear();
  }

  void Reconstruction(EvaluationResult& r) {
    const double n = static_cast<double>(n_);
    double mean2 = 0;  // ||x̄||²
    for (int64_t j = 0; j < d_in_; ++j) mean2 += (sum_x_[j] / n) * (sum_x_[j] / n);
    const double total_variance = sum_x2_ - n * mean2;
    if (total_variance > 0) r.explained_variance = 1.0 - sse_ / total_variance;
    FlushLegacy();
    if (legacy_rows_ > 0) {
      r.explained_variance_legacy = legacy_sum_ / static_cast<double>(legacy_rows_);
    }
    r.mse = sse_ / (n * static_cast<double>(d_in_));
    r.mse_sum_over_dims = sse_ / n;
    r.cossim = sum_cos_ / n;
    r.l2_norm_in = sum_norm_in_ / n;
    r.l2_norm_out = sum_norm_out_ / n;
    r.l2_ratio = sum_ratio_ / n;
    if (sum_xh_ != 0) r.relative_reconstruction_bias = sum_h2_ / sum_xh_;
  }

  std::shared_ptr<const engine::Dictionary> dict_;
  EvaluationOptions options_;
  absl::Status status_;
  bool finished_ = false;
  int64_t d_in_ = 0, d_sae_ = 0;

  // All rows.
  int64_t tokens_ = 0;
  int64_t l0_sum_ = 0;
  double l1_sum_ = 0;
  std::vector<int64_t> active_rows_;          // per feature
  std::optional<PromptCounter> by_context_;   // context_size chunks
  std::optional<PromptCounter> by_boundary_;  // the caller's boundaries
  bool boundaries_given_ = false;

  // Activation rows.
  int64_t n_ = 0;
  std::vector<double> sum_x_;
  double sum_x2_ = 0, sse_ = 0, sum_h2_ = 0, sum_xh_ = 0;
  double sum_norm_in_ = 0, sum_norm_out_ = 0, sum_ratio_ = 0, sum_cos_ = 0;
  std::vector<float> error_norms_;
  std::vector<float> legacy_x_;     // the open legacy batch, rows x d_in
  std::vector<double> legacy_err_;  // its ||e||²
  double legacy_sum_ = 0;
  int64_t legacy_rows_ = 0;
  Moments train_, test_;
};

Evaluation::Evaluation(std::shared_ptr<const engine::Dictionary> dictionary,
                       EvaluationOptions options)
    : impl_(std::make_unique<Impl>(std::move(dictionary), options)) {}

Evaluation::~Evaluation() = default;

absl::Status Evaluation::AddActivations(absl::Span<const float> x, const SparseCodes& codes,
                                        absl::Span<const float> x_hat) {
  return impl_->AddActivations(x, codes, x_hat);
}

absl::Status Evaluation::AddDocumentCodes(const SparseCodes& codes) {
  return impl_->AddDocumentCodes(codes);
}

void Evaluation::EndPrompt() { impl_->EndPrompt(); }

absl::StatusOr<EvaluationResult> Evaluation::Finish(const std::function<bool()>& cancelled) {
  return impl_->Finish(cancelled);
}

int64_t Evaluation::tokens() const { return impl_->tokens(); }

}  // namespace saedict::compare
