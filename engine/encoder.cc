// Encoder: creation and the encode path (see encoder.h, DESIGN.md §2).
//
// Rows are processed in tiles of EncoderOptions::tile_rows: normalize and
// centre the tile, one GEMM into a [tile, d_sae] buffer (F32: InvariantGemm,
// the fixed-order FMA kernel, so a row's codes do not depend on its batch;
// BF16: oneDNN), then the activation and top-k pass per row while that buffer is still warm
// in cache (rows split across cores with ParallelFor). Output is CSR with
// ascending feature ids per row.
//
// Gated SAEs run one GEMM, not two: x'(W_enc ⊙ exp(r_mag)) equals
// (x' W_enc) ⊙ exp(r_mag) up to float rounding, so the magnitude path reuses
// the gate's product scaled per feature (activation.cc).
#include "engine/encoder.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/activation.h"
#include "engine/content_hash.h"
#include "engine/encoder_impl.h"
#include "engine/invariant_gemm.h"
#include "engine/parallel.h"
#include "util/status_macros.h"

namespace saedict::engine {

Encoder::Impl::Impl(std::shared_ptr<const Dictionary> dictionary, const EncoderOptions& options)
    : dictionary_(std::move(dictionary)), options_(options) {
  const DictionaryConfig& c = config();
  const Dictionary& d = dict();
  if (c.apply_b_dec_to_input) b_dec_in_ = d.b_dec.data();
  add_b_dec_on_decode_ = c.architecture != Architecture::kMatchingPursuit || c.apply_b_dec_to_input;
  if (c.architecture == Architecture::kTopK && c.rescale_acts_by_decoder_norm) {
    feature_scale_.resize(c.d_sae);
    decode_factor_.resize(c.d_sae);
    for (int64_t i = 0; i < c.d_sae; ++i) {
      const double norm = std::sqrt(d.DecoderRowSquaredNorm(i));
      feature_scale_[i] = static_cast<float>(norm);
      decode_factor_[i] = norm > 0.0 ? static_cast<float>(1.0 / norm) : 0.0f;
    }
  } else if (c.architecture == Architecture::kGated) {
    feature_scale_.resize(c.d_sae);
    for (int64_t i = 0; i < c.d_sae; ++i) feature_scale_[i] = std::exp(d.r_mag[i]);
  } else if (c.architecture == Architecture::kMatchingPursuit) {
    decoder_norm_sq_.resize(c.d_sae);
    for (int64_t i = 0; i < c.d_sae; ++i)
      decoder_norm_sq_[i] = static_cast<float>(d.DecoderRowSquaredNorm(i));
  }
  // |pre_j| <= max|x'| * sum_p |W_pj| + |b_j|: the largest column sum bounds
  // every pre-activation (and, times max(1, scale_j), its topk-rescaled or
  // gated-magnitude form), so inputs below kOverflowLimit / it cannot overflow.
  // Summed in the weights' storage order (one pass over memory).
  std::vector<double> column_abs_sum(c.d_sae, 0.0);
  if (c.architecture == Architecture::kMatchingPursuit) {
    for (int64_t i = 0; i < c.d_sae; ++i) {
      const float* w = d.w_dec.data() + i * c.d_in;
      for (int64_t j = 0; j < c.d_in; ++j) column_abs_sum[i] += std::abs(w[j]);
    }
  } else {
    for (int64_t j = 0; j < c.d_in; ++j) {
      const float* w = d.w_enc.data() + j * c.d_sae;
      for (int64_t i = 0; i < c.d_sae; ++i) column_abs_sum[i] += std::abs(w[i]);
    }
  }
  if (!feature_scale_.empty()) {
    for (int64_t i = 0; i < c.d_sae; ++i) {
      column_abs_sum[i] *= std::max(1.0, static_cast<double>(feature_scale_[i]));
    }
  }
  max_column_abs_sum_ = *std::max_element(column_abs_sum.begin(), column_abs_sum.end());
  // Matching pursuit scores against the tied weights: a · W_dec^T.
  gemm_ = c.architecture == Architecture::kMatchingPursuit
              ? InvariantGemm::Create(d.w_dec.data(), c.d_in, c.d_sae, InvariantGemm::Layout::kNByK,
                                      options.kernel)
              : InvariantGemm::Create(d.w_enc.data(), c.d_in, c.d_sae, InvariantGemm::Layout::kKByN,
                                      options.kernel);
  // Without the FAST_EXACT screen (no AMX here, or turned off) kFastExact
  // runs the F32 path.
  if (options.fast_exact && c.architecture != Architecture::kMatchingPursuit &&
      FastExactScreen::Available()) {
    auto screen =
        FastExactScreen::Create(d.w_enc.data(), c.d_in, c.d_sae, options.fast_exact_options);
    if (screen.ok()) fast_exact_ = std::move(screen).value();
  }
}

ComputeMode Encoder::Impl::EffectiveMode(ComputeMode requested) const {
  if (requested == ComputeMode::kFastExact && fast_exact_ == nullptr) return ComputeMode::kF32;
  return requested;
}

Encoder::Impl::~Impl() = default;

absl::StatusOr<std::unique_ptr<Encoder>> Encoder::Create(
    std::shared_ptr<const Dictionary> dictionary, const EncoderOptions& options) {
  if (dictionary == nullptr) return absl::InvalidArgumentError("dictionary is null");
  SAEDICT_RETURN_IF_ERROR(dictionary->Validate());
  if (options.tile_rows <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tile_rows must be > 0, got ", options.tile_rows));
  }
  if (options.default_compute_mode == ComputeMode::kBF16 && !Bf16Available()) {
    return absl::UnimplementedError(
        "default compute mode BF16 is not available: needs a build with oneDNN and a CPU with "
        "avx512_bf16 or AMX");
  }
  auto impl = std::make_unique<Impl>(dictionary, options);
  return std::unique_ptr<Encoder>(new Encoder(std::move(impl), std::move(dictionary)));
}

Encoder::Encoder(std::unique_ptr<Impl> impl, std::shared_ptr<const Dictionary> dictionary)
    : impl_(std::move(impl)),
      dictionary_(std::move(dictionary)),
      content_sha256_(DictionaryContentSha256(*dictionary_)) {}

Encoder::~Encoder() = default;

bool Encoder::Bf16Available() { return Bf16Matmul::Available(); }

bool Encoder::fast_exact_ready() const { return impl_->fast_exact() != nullptr; }

bool Encoder::FastExactAvailable() { return FastExactScreen::Available(); }

bool Encoder::FastExactFastest() { return FastExactAvailable() && ScreenGemmFasterThanF32(); }

ComputeMode Encoder::fastest_exact_mode() const {
  return fast_exact_ready() && impl_->fast_exact()->faster_than_f32() ? ComputeMode::kFastExact
                                                                      : ComputeMode::kF32;
}

ComputeMode Encoder::default_compute_mode() const {
  return impl_->options().default_compute_mode.value_or(fastest_exact_mode());
}

std::string_view Encoder::fast_exact_screen() const {
  return fast_exact_ready() ? impl_->fast_exact()->gemm_name() : std::string_view();
}

int64_t Encoder::fast_exact_bytes() const {
  return fast_exact_ready() ? impl_->fast_exact()->bytes() : 0;
}

std::string_view Encoder::f32_kernel_name() const { return impl_->gemm().kernel_name(); }

absl::StatusOr<EncodeResult> Encoder::Encode(absl::Span<const float> x, int64_t n,
                                             const EncodeOptions& options) const {
  SAEDICT_RETURN_IF_ERROR(impl_->ValidateInput(x, n, options));
  EncodeResult result;
  std::vector<RowNorm> norms;
  result.compute_mode = impl_->EffectiveMode(options.compute_mode);
  SAEDICT_RETURN_IF_ERROR(
      impl_->EncodeCodes(x, n, options, &result.codes, &norms, &result.fast_exact));
  SAEDICT_RETURN_IF_ERROR(impl_->FinishEncode(x, n, options, norms, &result));
  return result;
}

absl::Status Encoder::ValidateEncodeInput(absl::Span<const float> x, int64_t n,
                                          const EncodeOptions& options) const {
  return impl_->ValidateValues(x, n, options);
}

absl::Status Encoder::PreprocessRows(absl::Span<const float> x, int64_t begin, int64_t end,
                                     float* out) const {
  const int64_t d_in = dictionary_->config.d_in;
  const int64_t rows = static_cast<int64_t>(x.size()) / d_in;
  if (begin < 0 || begin > end || end > rows) {
    return absl::InvalidArgumentError(absl::StrCat("PreprocessRows: rows [", begin, ", ", end,
                                                   ") out of range [0, ", rows, "]"));
  }
  std::vector<RowNorm> norms(static_cast<size_t>(end - begin));
  return impl_->PreprocessTile(x.data(), begin, end - begin, out, norms.data());
}

absl::Status Encoder::FinishEncode(absl::Span<const float> x, int64_t n,
                                   const EncodeOptions& options, EncodeResult* result) const {
  SAEDICT_RETURN_IF_ERROR(impl_->CheckEncodedShape(x, n, result->codes));
  std::vector<RowNorm> norms(static_cast<size_t>(n));
  if (options.return_reconstruction || options.return_row_error) norms = impl_->RowNorms(x, n);
  return impl_->FinishEncode(x, n, options, norms, result);
}

absl::Status Encoder::Impl::CheckEncodedShape(absl::Span<const float> x, int64_t n,
                                              const SparseCodes& codes) const {
  const DictionaryConfig& c = config();
  if (n < 0 || n > std::numeric_limits<int64_t>::max() / c.d_in ||
      static_cast<int64_t>(x.size()) != n * c.d_in) {
    return absl::InvalidArgumentError(absl::StrCat("activations: ", x.size(), " values for ", n,
                                                   " rows of d_in=", c.d_in));
  }
  if (codes.num_rows != n || codes.num_features != c.d_sae ||
      codes.row_offsets.size() != static_cast<size_t>(n + 1)) {
    return absl::InvalidArgumentError(absl::StrCat("codes: [", codes.num_rows, ", ",
                                                   codes.num_features, "] for activations of ", n,
                                                   " rows and d_sae=", c.d_sae));
  }
  return absl::OkStatus();
}

std::vector<RowNorm> Encoder::Impl::RowNorms(absl::Span<const float> x, int64_t n) const {
  const DictionaryConfig& c = config();
  std::vector<RowNorm> norms(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    norms[r] = ComputeRowNorm(c.normalization, x.data() + r * c.d_in, c.d_in);
  }
  return norms;
}

absl::Status Encoder::Impl::FinishEncode(absl::Span<const float> x, int64_t n,
                                         const EncodeOptions& options,
                                         absl::Span<const RowNorm> norms,
                                         EncodeResult* result) const {
  SAEDICT_RETURN_IF_ERROR(CheckFiniteCodes(result->codes));
  if (!options.return_reconstruction && !options.return_row_error) return absl::OkStatus();

  const int64_t d_in = config().d_in;
  const int64_t d_out = config().decoder_dim();  // != d_in for transcoders
  const SparseCodes& codes = result->codes;
  if (options.return_reconstruction) result->reconstruction.resize(static_cast<size_t>(n * d_out));
  if (options.return_row_error) result->row_squared_error.resize(n);
  const int64_t nnz_per_row = std::max<int64_t>(1, codes.nnz() / std::max<int64_t>(n, 1));
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / (d_out * nnz_per_row));
  ParallelFor(n, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> row_buffer;
    if (!options.return_reconstruction) row_buffer.resize(d_out);
    for (int64_t r = begin; r < end; ++r) {
      float* out = options.return_reconstruction ? result->reconstruction.data() + r * d_out
                                                 : row_buffer.data();
      const uint64_t first = codes.row_offsets[r];
      const float* xr = x.data() + r * d_in;
      ReconstructRow(codes.indices.data() + first, codes.values.data() + first,
                     static_cast<int64_t>(codes.row_offsets[r + 1] - first), norms[r], xr, out);
      if (options.return_row_error) {  // SAEs only (ValidateInput), so d_out == d_in
        double sq = 0.0;
        for (int64_t j = 0; j < d_in; ++j) {
          const double diff = static_cast<double>(xr[j]) - out[j];
          sq += diff * diff;
        }
        result->row_squared_error[r] = static_cast<float>(sq);
      }
    }
  });
  for (int64_t r = 0; r < n; ++r) {
    const bool bad_error =
        options.return_row_error && !std::isfinite(result->row_squared_error[r]);
    bool bad_reconstruction = false;
    if (options.return_reconstruction) {
      const float* row = result->reconstruction.data() + r * d_out;
      for (int64_t j = 0; j < d_out; ++j) bad_reconstruction |= !std::isfinite(row[j]);
    }
    if (bad_error || bad_reconstruction) {
      return absl::InvalidArgumentError(absl::StrCat(
          "x[row ", r, "]: the ", bad_reconstruction ? "reconstruction" : "squared error",
          " overflows float32; the row's values are too large for this dictionary"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckFiniteCodes(const SparseCodes& codes) {
  for (int64_t r = 0; r < codes.num_rows; ++r) {
    for (uint64_t e = codes.row_offsets[r]; e < codes.row_offsets[r + 1]; ++e) {
      if (!std::isfinite(codes.values[e])) {
        return absl::InvalidArgumentError(absl::StrCat(
            "x[row ", r, "]: feature ", codes.indices[e], "'s activation is ", codes.values[e],
            ": the row's values are too large for float32 arithmetic with this dictionary"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Encoder::Impl::ValidateInput(absl::Span<const float> x, int64_t n,
                                          const EncodeOptions& options) const {
  SAEDICT_RETURN_IF_ERROR(ValidateValues(x, n, options));
  if (options.compute_mode == ComputeMode::kBF16) SAEDICT_RETURN_IF_ERROR(GetBf16().status());
  return absl::OkStatus();
}

absl::Status Encoder::Impl::ValidateValues(absl::Span<const float> x, int64_t n,
                                           const EncodeOptions& options) const {
  const DictionaryConfig& c = config();
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat("n must be >= 0, got ", n));
  const int64_t size = static_cast<int64_t>(x.size());
  if (n > std::numeric_limits<int64_t>::max() / c.d_in || n * c.d_in != size) {
    return absl::InvalidArgumentError(
        absl::StrCat("x has ", size, " values, expected n * d_in = ", n, " * ", c.d_in));
  }
  if (options.return_row_error && c.is_transcoder()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "return_row_error: this dictionary is a transcoder: it decodes to another hook (",
        c.hook_name_out.empty() ? "d_out " + std::to_string(c.d_out) : c.hook_name_out,
        ") than it reads, so its error needs that hook's activations, which saedict never sees; "
        "ask for the reconstruction and compare it yourself"));
  }
  if (options.top_k < 0 || options.top_k > c.d_sae) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be in [0, d_sae=", c.d_sae, "], got ", options.top_k));
  }
  if (options.compute_mode != ComputeMode::kF32 && options.compute_mode != ComputeMode::kBF16 &&
      options.compute_mode != ComputeMode::kFastExact) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown compute_mode ", static_cast<int>(options.compute_mode)));
  }
  for (int64_t r = 0; r < n; ++r) {
    const float* row = x.data() + r * c.d_in;
    uint32_t bad = 0;  // an all-ones exponent marks NaN or Inf
    for (int64_t j = 0; j < c.d_in; ++j) {
      bad |= static_cast<uint32_t>((std::bit_cast<uint32_t>(row[j]) & 0x7f800000u) == 0x7f800000u);
    }
    if (bad == 0) continue;
    for (int64_t j = 0; j < c.d_in; ++j) {
      if (!std::isfinite(row[j])) {
        return absl::InvalidArgumentError(
            absl::StrCat("x[row ", r, ", column ", j, "] is not finite (", row[j], ")"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<const Bf16Matmul*> Encoder::Impl::GetBf16() const {
  if (!Bf16Matmul::Available()) {
    return absl::UnimplementedError(
        "compute_mode BF16 is not available: needs a build with oneDNN and a CPU with "
        "avx512_bf16 or AMX; use F32");
  }
  absl::call_once(bf16_once_, [this] {
    const DictionaryConfig& c = config();
    const Dictionary& d = dict();
    std::vector<float> transposed;  // matching pursuit without a stored W_enc
    const float* b = d.w_enc.data();
    if (d.w_enc.empty()) {
      transposed.resize(static_cast<size_t>(c.d_in * c.d_sae));
      for (int64_t i = 0; i < c.d_sae; ++i) {
        for (int64_t j = 0; j < c.d_in; ++j) {
          transposed[j * c.d_sae + i] = d.w_dec[i * c.d_in + j];
        }
      }
      b = transposed.data();
    }
    auto created = Bf16Matmul::Create(b, c.d_in, c.d_sae);
    if (created.ok()) {
      bf16_ = std::move(created).value();
    } else {
      bf16_status_ = created.status();
    }
  });
  if (!bf16_status_.ok()) return bf16_status_;
  return bf16_.get();
}

absl::Status Encoder::Impl::EncoderGemm(const float* a, int64_t m, ComputeMode mode,
                                        float* c) const {
  const DictionaryConfig& cfg = config();
  if (mode == ComputeMode::kBF16) {
    SAEDICT_ASSIGN_OR_RETURN(const Bf16Matmul* bf16, GetBf16());
    return bf16->Run(a, m, c);
  }
  gemm_->Multiply(a, m, cfg.d_in, c, cfg.d_sae);
  return absl::OkStatus();
}

absl::Status Encoder::Impl::PreprocessTile(const float* x, int64_t r0, int64_t m, float* a,
                                           RowNorm* norms) const {
  const DictionaryConfig& c = config();
  // Rows per parallel chunk: about 64K elements of work each.
  const int64_t in_grain = std::max<int64_t>(1, (int64_t{1} << 16) / c.d_in);
  // Rows whose preprocessed values could overflow float32 in the GEMM.
  const double max_input = kOverflowLimit / std::max(max_column_abs_sum_, 1.0);
  const int64_t none = r0 + m;
  std::atomic<int64_t> first_too_large{none};
  ParallelFor(m, in_grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* row = x + (r0 + i) * c.d_in;
      RowNorm& norm = norms[i];
      norm = ComputeRowNorm(c.normalization, row, c.d_in);
      float* out = a + i * c.d_in;
      PreprocessRow(norm, row, b_dec_in_, c.d_in, out);
      float max_abs = 0.0f;
      for (int64_t j = 0; j < c.d_in; ++j) max_abs = std::max(max_abs, std::abs(out[j]));
      if (!(max_abs <= max_input)) {
        int64_t seen = first_too_large.load();
        while (r0 + i < seen && !first_too_large.compare_exchange_weak(seen, r0 + i)) {
        }
      }
    }
  });
  if (const int64_t bad = first_too_large.load(); bad < none) {
    return absl::InvalidArgumentError(
        absl::StrCat("x[row ", bad,
                     "] has values too large for float32 arithmetic with this dictionary: "
                     "after preprocessing its largest |value| exceeds ",
                     max_input, ", where pre-activations could overflow"));
  }
  return absl::OkStatus();
}

absl::Status Encoder::Impl::EncodeCodes(absl::Span<const float> x, int64_t n,
                                        const EncodeOptions& options, SparseCodes* codes,
                                        std::vector<RowNorm>* norms,
                                        FastExactStats* stats) const {
  const DictionaryConfig& c = config();
  const Dictionary& d = dict();
  const bool k_architecture =
      c.architecture == Architecture::kTopK || c.architecture == Architecture::kMatchingPursuit;
  const int32_t k = k_architecture && options.top_k == 0 ? c.k : options.top_k;

  codes->num_rows = n;
  codes->num_features = c.d_sae;
  codes->row_offsets.assign(1, 0);
  codes->row_offsets.reserve(n + 1);
  codes->indices.clear();
  codes->values.clear();
  if (k > 0) {
    codes->indices.reserve(static_cast<size_t>(n) * k);
    codes->values.reserve(static_cast<size_t>(n) * k);
  }
  norms->resize(n);
  if (n == 0) return absl::OkStatus();

  ActivationParams params;
  params.architecture = c.architecture;
  params.d_sae = c.d_sae;
  params.b_enc = d.b_enc.empty() ? nullptr : d.b_enc.data();
  params.threshold = d.threshold.empty() ? nullptr : d.threshold.data();
  params.scale = feature_scale_.empty() ? nullptr : feature_scale_.data();
  params.b_gate = d.b_gate.empty() ? nullptr : d.b_gate.data();
  params.b_mag = d.b_mag.empty() ? nullptr : d.b_mag.data();
  params.k = k;

  const ComputeMode mode = EffectiveMode(options.compute_mode);
  const bool screened = mode == ComputeMode::kFastExact;
  ScreenedRows screened_rows;
  // The screen reads the F32 weights once per tile for its exact blocks, so
  // it takes larger tiles; its bf16 GEMM still runs in tile_rows sub-tiles.
  const int64_t tile = std::min(
      screened ? std::max(options_.tile_rows, kFastExactTileRows) : options_.tile_rows, n);
  std::vector<float> a(static_cast<size_t>(tile * c.d_in));
  std::vector<float> pre(static_cast<size_t>(std::min(options_.tile_rows, tile) * c.d_sae));
  std::vector<std::vector<uint32_t>> row_indices(tile);
  std::vector<std::vector<float>> row_values(tile);
  const int64_t act_grain = std::max<int64_t>(1, (int64_t{1} << 16) / c.d_sae);
  for (int64_t r0 = 0; r0 < n; r0 += tile) {
    const int64_t m = std::min(tile, n - r0);
    SAEDICT_RETURN_IF_ERROR(PreprocessTile(x.data(), r0, m, a.data(), norms->data() + r0));
    if (c.architecture == Architecture::kMatchingPursuit) {
      SAEDICT_RETURN_IF_ERROR(MatchingPursuitTile(a.data(), m, k, mode, pre.data(), codes));
      continue;
    }
    if (screened) {
      SAEDICT_RETURN_IF_ERROR(fast_exact_->Run(a.data(), m, params, *gemm_, pre.data(),
                                               options_.tile_rows, &screened_rows, stats));
    } else {
      const ComputeMode gemm_mode =
          mode == ComputeMode::kBF16 ? ComputeMode::kBF16 : ComputeMode::kF32;
      SAEDICT_RETURN_IF_ERROR(EncoderGemm(a.data(), m, gemm_mode, pre.data()));
    }
    ParallelFor(m, act_grain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        row_indices[i].clear();
        row_values[i].clear();
        if (!screened) {
          ActivateRow(params, pre.data() + i * c.d_sae, &row_indices[i], &row_values[i]);
        } else if (const int64_t dense = screened_rows.dense_index[i]; dense >= 0) {
          ActivateRow(params, screened_rows.dense.data() + dense * c.d_sae, &row_indices[i],
                      &row_values[i]);
        } else {
          const std::vector<uint32_t>& features = screened_rows.features[i];
          ActivateListed(params, features.data(), screened_rows.values[i].data(),
                         static_cast<int64_t>(features.size()), &row_indices[i],
                         &row_values[i]);
        }
      }
    });
    for (int64_t i = 0; i < m; ++i) {
      codes->indices.insert(codes->indices.end(), row_indices[i].begin(), row_indices[i].end());
      codes->values.insert(codes->values.end(), row_values[i].begin(), row_values[i].end());
      codes->row_offsets.push_back(codes->indices.size());
    }
  }
  return absl::OkStatus();
}

}  // namespace saedict::engine
