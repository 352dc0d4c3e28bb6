// Dictionary: names of the enums, structural validation, weight size.
#include "engine/dictionary.h"

#include <cmath>
#include <cstddef>
#include <limits>

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace saedict::engine {
namespace {

// Largest d_in / d_sae: feature ids travel as uint32 and BLAS takes int sizes.
constexpr int64_t kMaxFeatures = (int64_t{1} << 31) - 1;
// Largest element count of one weight matrix (keeps byte counts in int64).
constexpr int64_t kMaxMatrixElements = int64_t{1} << 40;

absl::Status CheckTensor(const char* name, const std::vector<float>& t, int64_t want,
                         bool required) {
  const int64_t size = static_cast<int64_t>(t.size());
  if (!required) {
    if (size != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor ", name, " must be empty for this architecture, has ", size, " values"));
    }
    return absl::OkStatus();
  }
  if (size != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", name, " has ", size, " values, expected ", want));
  }
  for (int64_t i = 0; i < size; ++i) {
    if (!std::isfinite(t[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor ", name, " has non-finite value ", t[i], " at index ", i));
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* ArchitectureName(Architecture a) {
  switch (a) {
    case Architecture::kStandard:
      return "standard";
    case Architecture::kTopK:
      return "topk";
    case Architecture::kJumpReLU:
      return "jumprelu";
    case Architecture::kGated:
      return "gated";
    case Architecture::kMatchingPursuit:
      return "matching_pursuit";
  }
  return "unknown";
}

const char* NormalizationName(Normalization n) {
  switch (n) {
    case Normalization::kNone:
      return "none";
    case Normalization::kConstantNormRescale:
      return "constant_norm_rescale";
    case Normalization::kLayerNorm:
      return "layer_norm";
  }
  return "unknown";
}

absl::Status Dictionary::Validate() const {
  const DictionaryConfig& c = config;
  for (size_t i = 0; i < c.matryoshka_widths.size(); ++i) {
    const int64_t w = c.matryoshka_widths[i];
    const int64_t previous = i == 0 ? 0 : c.matryoshka_widths[i - 1];
    if (w <= previous || w > c.d_sae) {
      return absl::InvalidArgumentError(absl::StrCat(
          "matryoshka_widths[", i, "] = ", w, " must ascend strictly within 1..d_sae = ", c.d_sae));
    }
  }
  if (!c.matryoshka_widths.empty() && c.matryoshka_widths.back() != c.d_sae) {
    return absl::InvalidArgumentError(absl::StrCat("matryoshka_widths ends at ",
                                                   c.matryoshka_widths.back(),
                                                   "; the last width must be d_sae = ", c.d_sae));
  }
  if (c.d_in <= 0 || c.d_in > kMaxFeatures) {
    return absl::InvalidArgumentError(
        absl::StrCat("d_in must be in [1, ", kMaxFeatures, "], got ", c.d_in));
  }
  if (c.d_sae <= 0 || c.d_sae > kMaxFeatures) {
    return absl::InvalidArgumentError(
        absl::StrCat("d_sae must be in [1, ", kMaxFeatures, "], got ", c.d_sae));
  }
  if (c.d_in > kMaxMatrixElements / c.d_sae) {
    return absl::InvalidArgumentError(
        absl::StrCat("d_in * d_sae is too large: ", c.d_in, " * ", c.d_sae));
  }
  switch (c.architecture) {
    case Architecture::kStandard:
    case Architecture::kTopK:
    case Architecture::kJumpReLU:
    case Architecture::kGated:
    case Architecture::kMatchingPursuit:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown architecture value ", static_cast<int>(c.architecture)));
  }
  switch (c.normalization) {
    case Normalization::kNone:
    case Normalization::kConstantNormRescale:
    case Normalization::kLayerNorm:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown normalization value ", static_cast<int>(c.normalization)));
  }
  const Architecture a = c.architecture;
  const char* arch = ArchitectureName(a);
  if (c.d_out < 0 || c.d_out > kMaxFeatures) {
    return absl::InvalidArgumentError(
        absl::StrCat("d_out must be 0 (an SAE) or in [1, ", kMaxFeatures, "], got ", c.d_out));
  }
  if (c.d_out > kMaxMatrixElements / c.d_sae || c.d_out > kMaxMatrixElements / c.d_in) {
    return absl::InvalidArgumentError(
        absl::StrCat("d_out * d_sae or d_out * d_in is too large: d_out = ", c.d_out));
  }
  if (!c.is_transcoder() && !c.hook_name_out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hook_name_out \"", c.hook_name_out, "\" is set but d_out is 0 (not a transcoder)"));
  }
  if (c.is_transcoder()) {
    if (a == Architecture::kMatchingPursuit) {
      return absl::InvalidArgumentError(
          "a transcoder cannot be matching_pursuit (its encoder is tied to a decoder of "
          "another hook)");
    }
    if (c.apply_b_dec_to_input) {
      return absl::InvalidArgumentError(
          "apply_b_dec_to_input must be false for a transcoder (b_dec lives at the output hook)");
    }
    if (c.normalization != Normalization::kNone) {
      return absl::InvalidArgumentError(absl::StrCat(
          "normalization must be none for a transcoder, got ", NormalizationName(c.normalization)));
    }
  }
  const bool uses_k = a == Architecture::kTopK || a == Architecture::kMatchingPursuit;
  if (uses_k && (c.k < 1 || c.k > c.d_sae)) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be in [1, d_sae=", c.d_sae, "] for ", arch, ", got ", c.k));
  }
  if (!uses_k && (c.k < 0 || c.k > c.d_sae)) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be in [0, d_sae=", c.d_sae, "], got ", c.k));
  }
  if (c.rescale_acts_by_decoder_norm && a != Architecture::kTopK) {
    return absl::InvalidArgumentError(
        absl::StrCat("rescale_acts_by_decoder_norm is only supported for topk, not ", arch));
  }
  if (!std::isfinite(c.mp_residual_threshold) || c.mp_residual_threshold < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mp_residual_threshold must be finite and >= 0, got ", c.mp_residual_threshold));
  }

  const int64_t matrix = c.d_in * c.d_sae;
  const bool gated = a == Architecture::kGated;
  const bool mp = a == Architecture::kMatchingPursuit;
  SAEDICT_RETURN_IF_ERROR(CheckTensor("W_dec", w_dec, c.d_sae * c.decoder_dim(), true));
  SAEDICT_RETURN_IF_ERROR(CheckTensor("b_dec", b_dec, c.decoder_dim(), true));
  if (c.is_transcoder() && !w_skip.empty()) {
    SAEDICT_RETURN_IF_ERROR(CheckTensor("W_skip", w_skip, c.d_out * c.d_in, true));
  } else if (!w_skip.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor W_skip has ", w_skip.size(), " values but d_out is 0: only a transcoder has one"));
  }
  // Matching pursuit is tied: W_enc may be omitted, and when present must be W_dec^T.
  SAEDICT_RETURN_IF_ERROR(CheckTensor("W_enc", w_enc, matrix, !(mp && w_enc.empty())));
  if (mp && !w_enc.empty()) {
    for (int64_t i = 0; i < c.d_sae; ++i) {
      for (int64_t j = 0; j < c.d_in; ++j) {
        if (w_enc[j * c.d_sae + i] != w_dec[i * c.d_in + j]) {
          return absl::InvalidArgumentError(absl::StrCat(
              "tensor W_enc must equal W_dec^T for matching_pursuit; differs at W_enc[", j, ", ", i,
              "]"));
        }
      }
    }
  }
  SAEDICT_RETURN_IF_ERROR(CheckTensor("b_enc", b_enc, c.d_sae, !gated && !mp));
  SAEDICT_RETURN_IF_ERROR(
      CheckTensor("threshold", threshold, c.d_sae, a == Architecture::kJumpReLU));
  SAEDICT_RETURN_IF_ERROR(CheckTensor("b_gate", b_gate, c.d_sae, gated));
  SAEDICT_RETURN_IF_ERROR(CheckTensor("b_mag", b_mag, c.d_sae, gated));
  SAEDICT_RETURN_IF_ERROR(CheckTensor("r_mag", r_mag, c.d_sae, gated));
  if (gated) {
    // exp(r_mag) must stay finite for the magnitude path.
    for (int64_t i = 0; i < c.d_sae; ++i) {
      if (r_mag[i] > 80.0f) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor r_mag value ", r_mag[i], " at index ", i, " overflows exp()"));
      }
    }
  }
  return absl::OkStatus();
}

double Dictionary::DecoderRowSquaredNorm(int64_t feature) const {
  const int64_t dim = config.decoder_dim();
  const float* w = w_dec.data() + feature * dim;
  double sq = 0.0;
  for (int64_t j = 0; j < dim; ++j) sq += static_cast<double>(w[j]) * w[j];
  return sq;
}

int64_t Dictionary::WeightBytes() const {
  const size_t floats = w_enc.size() + b_enc.size() + w_dec.size() + b_dec.size() +
                        threshold.size() + b_gate.size() + b_mag.size() + r_mag.size() +
                        w_skip.size();
  return static_cast<int64_t>(floats * sizeof(float));
}

}  // namespace saedict::engine
