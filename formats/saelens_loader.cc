// SAELens folder loader: cfg.json + sae_weights.safetensors, current (6.x)
// and older (pre-6.0) config spellings, all architectures of DESIGN.md §2.
//
// Config spellings accepted:
//   architecture: standard | topk | jumprelu | gated | matching_pursuit (mp)
//                 | batchtopk | matryoshka_batchtopk (training form, loaded as
//                 jumprelu); missing -> standard.
//                 Transcoders (sae_lens/saes/transcoder.py): transcoder (ReLU),
//                 skip_transcoder, jumprelu_transcoder, jumprelu_skip_transcoder;
//                 they need d_out, read hook_name_out (metadata or top level),
//                 W_dec [d_sae, d_out], b_dec [d_out] and, with skip,
//                 W_skip [d_out, d_in]; apply_b_dec_to_input must be false and
//                 normalize_activations none.
//   activation_fn / activation_fn_str "topk" (+ activation_fn_kwargs {k}) with
//   architecture standard: pre-6.0 TopK.
//   hook name: metadata.hook_name, else hook_name, else hook_point (pre-6.0);
//   model name: metadata.model_name, else model_name.
//   normalize_activations: none (or null/false) | constant_norm_rescale |
//   layer_norm | expected_average_only_in (or true, an early spelling).
#include <cmath>

#include "absl/strings/str_cat.h"
#include "formats/codecs/file_io.h"
#include "formats/codecs/json.h"
#include "formats/loader_internal.h"
#include "util/status_macros.h"

namespace saedict::formats::internal {
namespace {

using engine::Architecture;
using engine::Normalization;
using google::protobuf::Struct;
using google::protobuf::Value;

constexpr int64_t kMaxDim = int64_t{1} << 31;

struct ParsedCfg {
  engine::DictionaryConfig config;
  bool batchtopk_training_form = false;
  bool expected_average_only_in = false;
  bool finetuning_scaling_factor = false;
  bool skip_transcoder = false;  // W_skip expected
};

absl::Status Unsupported(absl::string_view label, absl::string_view key, absl::string_view value) {
  return absl::InvalidArgumentError(
      absl::StrCat(label, ": unsupported ", key, " ", JsonQuote(value)));
}

// The first string found under `keys` in metadata{}, then at top level.
absl::StatusOr<std::string> NameFromCfg(const Struct& cfg, absl::string_view label,
                                        std::initializer_list<absl::string_view> keys) {
  const Value* meta = FindJsonField(cfg, "metadata");
  for (const Struct* obj :
       {meta != nullptr && meta->has_struct_value() ? &meta->struct_value() : nullptr, &cfg}) {
    if (obj == nullptr) continue;
    for (absl::string_view key : keys) {
      SAEDICT_ASSIGN_OR_RETURN(std::optional<std::string> v, GetJsonString(*obj, key, label));
      if (v) return *v;
    }
  }
  return std::string();
}

absl::StatusOr<ParsedCfg> ParseCfg(const Struct& cfg, absl::string_view label) {
  ParsedCfg out;
  engine::DictionaryConfig& c = out.config;
  SAEDICT_ASSIGN_OR_RETURN(std::optional<int64_t> d_in, GetJsonInt(cfg, "d_in", label, 1, kMaxDim));
  SAEDICT_ASSIGN_OR_RETURN(std::optional<int64_t> d_sae,
                           GetJsonInt(cfg, "d_sae", label, 1, kMaxDim));
  if (d_in && !d_sae) {  // early configs may give only the expansion factor
    SAEDICT_ASSIGN_OR_RETURN(std::optional<int64_t> expansion,
                             GetJsonInt(cfg, "expansion_factor", label, 1, kMaxDim));
    if (expansion && *expansion * *d_in <= kMaxDim) d_sae = *expansion * *d_in;
  }
  if (!d_in || !d_sae) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": missing key '", d_in ? "d_sae" : "d_in", "'"));
  }
  c.d_in = *d_in;
  c.d_sae = *d_sae;
  SAEDICT_ASSIGN_OR_RETURN(c.model_name, NameFromCfg(cfg, label, {"model_name"}));
  SAEDICT_ASSIGN_OR_RETURN(c.hook_name, NameFromCfg(cfg, label, {"hook_name", "hook_point"}));

  SAEDICT_ASSIGN_OR_RETURN(std::optional<std::string> arch,
                           GetJsonString(cfg, "architecture", label));
  SAEDICT_ASSIGN_OR_RETURN(std::optional<std::string> act,
                           GetJsonString(cfg, "activation_fn", label));
  if (!act) {
    SAEDICT_ASSIGN_OR_RETURN(act, GetJsonString(cfg, "activation_fn_str", label));
  }
  const std::string a = arch.value_or("standard");
  if (a == "standard") {
    if (act && *act == "topk") {
      c.architecture = Architecture::kTopK;
    } else if (act && *act != "relu") {
      return Unsupported(label, "activation_fn", *act);
    }
  } else if (a == "topk") {
    c.architecture = Architecture::kTopK;
  } else if (a == "jumprelu") {
    c.architecture = Architecture::kJumpReLU;
  } else if (a == "gated") {
    c.architecture = Architecture::kGated;
  } else if (a == "matching_pursuit" || a == "mp") {
    c.architecture = Architecture::kMatchingPursuit;
  } else if (a == "batchtopk" || a == "matryoshka_batchtopk") {
    c.architecture = Architecture::kJumpReLU;
    out.batchtopk_training_form = true;
  } else if (a == "transcoder" || a == "skip_transcoder" || a == "jumprelu_transcoder" ||
             a == "jumprelu_skip_transcoder") {
    c.architecture = a.starts_with("jumprelu") ? Architecture::kJumpReLU : Architecture::kStandard;
    out.skip_transcoder = a.ends_with("skip_transcoder");
    SAEDICT_ASSIGN_OR_RETURN(std::optional<int64_t> d_out,
                             GetJsonInt(cfg, "d_out", label, 1, kMaxDim));
    if (!d_out) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": architecture ", JsonQuote(a), " without key 'd_out'"));
    }
    c.d_out = *d_out;
    SAEDICT_ASSIGN_OR_RETURN(c.hook_name_out, NameFromCfg(cfg, label, {"hook_name_out"}));
  } else {
    return Unsupported(label, "architecture", a);
  }

  SAEDICT_ASSIGN_OR_RETURN(std::optional<bool> apply_b_dec,
                           GetJsonBool(cfg, "apply_b_dec_to_input", label));
  if (c.is_transcoder() && apply_b_dec.value_or(false)) {
    return absl::InvalidArgumentError(absl::StrCat(
        label, ": apply_b_dec_to_input true is not supported for a transcoder (b_dec has the "
               "output hook's width; SAELens refuses it too)"));
  }
  c.apply_b_dec_to_input = apply_b_dec.value_or(!c.is_transcoder());
  SAEDICT_ASSIGN_OR_RETURN(std::optional<bool> rescale,
                           GetJsonBool(cfg, "rescale_acts_by_decoder_norm", label));
  c.rescale_acts_by_decoder_norm = rescale.value_or(false);
  if (const google::protobuf::Value* widths = FindJsonField(cfg, "matryoshka_widths")) {
    if (!widths->has_list_value()) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": key 'matryoshka_widths' is ",
                                                     DescribeJson(*widths), ", not a list"));
    }
    for (int i = 0; i < widths->list_value().values_size(); ++i) {
      SAEDICT_ASSIGN_OR_RETURN(
          int64_t w, JsonToInt(widths->list_value().values(i),
                               absl::StrCat(label, ": matryoshka_widths[", i, "]"), 1, c.d_sae));
      c.matryoshka_widths.push_back(w);
    }
  }
  SAEDICT_ASSIGN_OR_RETURN(std::optional<bool> finetune,
                           GetJsonBool(cfg, "finetuning_scaling_factor", label));
  out.finetuning_scaling_factor = finetune.value_or(false);

  const Value* norm = FindJsonField(cfg, "normalize_activations");
  if (norm != nullptr && norm->has_bool_value()) {
    out.expected_average_only_in = norm->bool_value();
  } else if (norm != nullptr) {
    SAEDICT_ASSIGN_OR_RETURN(std::optional<std::string> n,
                             GetJsonString(cfg, "normalize_activations", label));
    if (*n == "constant_norm_rescale") {
      c.normalization = Normalization::kConstantNormRescale;
    } else if (*n == "layer_norm") {
      c.normalization = Normalization::kLayerNorm;
    } else if (*n == "expected_average_only_in") {
      out.expected_average_only_in = true;
    } else if (*n != "none") {
      return Unsupported(label, "normalize_activations", *n);
    }
  }

  if (c.is_transcoder() &&
      (out.expected_average_only_in || c.normalization != Normalization::kNone)) {
    return absl::InvalidArgumentError(absl::StrCat(
        label, ": normalize_activations must be none for a transcoder (its output is at "
               "another hook, where the input's normalization cannot be undone)"));
  }

  // k: topk needs it; matching pursuit caps its steps with it. Others ignore
  // it (BatchTopK's k may even be fractional).
  std::optional<int64_t> k;
  const bool uses_k =
      c.architecture == Architecture::kTopK || c.architecture == Architecture::kMatchingPursuit;
  if (uses_k) {
    SAEDICT_ASSIGN_OR_RETURN(k, GetJsonInt(cfg, "k", label, 1, c.d_sae));
  }
  const Value* kwargs = FindJsonField(cfg, "activation_fn_kwargs");
  if (uses_k && !k && kwargs != nullptr && kwargs->has_struct_value()) {
    SAEDICT_ASSIGN_OR_RETURN(
        k, GetJsonInt(kwargs->struct_value(), "k", absl::StrCat(label, ": activation_fn_kwargs"), 1,
                      c.d_sae));
  }
  if (c.architecture == Architecture::kTopK) {
    if (!k) return absl::InvalidArgumentError(absl::StrCat(label, ": topk SAE without key 'k'"));
    c.k = static_cast<int32_t>(*k);
  } else if (c.architecture == Architecture::kMatchingPursuit) {
    // SAELens's matching pursuit has no step cap (it stops when the support
    // stops changing or the residual is small); without a "k" we cap the
    // greedy steps at min(d_in, d_sae).
    c.k = static_cast<int32_t>(k.value_or(std::min(c.d_in, c.d_sae)));
    SAEDICT_ASSIGN_OR_RETURN(std::optional<double> t,
                             GetJsonNumber(cfg, "mp_residual_threshold", label));
    if (!t) {
      SAEDICT_ASSIGN_OR_RETURN(t, GetJsonNumber(cfg, "residual_threshold", label));
    }
    // 1e-2 is SAELens's MatchingPursuitSAEConfig default.
    c.mp_residual_threshold = static_cast<float>(t.value_or(1e-2));
    if (!(c.mp_residual_threshold >= 0) || !std::isfinite(c.mp_residual_threshold)) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": residual threshold ", *t, " must be finite and >= 0"));
    }
  }
  return out;
}

// The scaling factor SAELens saved beside the weights, if any.
absl::StatusOr<std::optional<double>> ReadScalingFactor(const std::filesystem::path& dir,
                                                        const FileRoot& files) {
  const std::filesystem::path file = dir / "activation_scaler.json";
  SAEDICT_ASSIGN_OR_RETURN(bool exists, files.Exists(file));
  if (!exists) return std::optional<double>();
  SAEDICT_ASSIGN_OR_RETURN(std::string text, files.ReadFile(file));
  SAEDICT_ASSIGN_OR_RETURN(Struct obj, ParseJsonObject(text, file.string(), true));
  SAEDICT_ASSIGN_OR_RETURN(std::optional<double> s,
                           GetJsonNumber(obj, "scaling_factor", file.string()));
  if (s && !(*s > 0 && std::isfinite(*s))) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.string(), ": scaling_factor ", *s, " must be finite and > 0"));
  }
  return s;
}

// Decoder-norm folding (SAELens fold_W_dec_norm) for the training form of
// BatchTopK with rescale_acts_by_decoder_norm.
void FoldDecoderNorms(engine::Dictionary* d) {
  const int64_t n_in = d->config.d_in, n_sae = d->config.d_sae;
  for (int64_t i = 0; i < n_sae; ++i) {
    double sq = 0;
    for (int64_t j = 0; j < n_in; ++j)
      sq += double{d->w_dec[i * n_in + j]} * d->w_dec[i * n_in + j];
    const float norm = std::max(static_cast<float>(std::sqrt(sq)), 1e-8f);
    for (int64_t j = 0; j < n_in; ++j) {
      d->w_dec[i * n_in + j] /= norm;
      d->w_enc[j * n_sae + i] *= norm;
    }
    d->b_enc[i] *= norm;
  }
  d->config.rescale_acts_by_decoder_norm = false;
}

}  // namespace

absl::StatusOr<LoadedDictionary> LoadSaeLens(const std::filesystem::path& dir,
                                             const FileRoot& files) {
  const std::filesystem::path cfg_path = dir / "cfg.json";
  SAEDICT_ASSIGN_OR_RETURN(std::string cfg_text, files.ReadFile(cfg_path));
  SAEDICT_ASSIGN_OR_RETURN(SafetensorsFile st,
                           SafetensorsFile::Read(dir / "sae_weights.safetensors", files));
  SAEDICT_ASSIGN_OR_RETURN(Struct cfg_json, ParseJsonObject(cfg_text, cfg_path.string(), true));
  SAEDICT_ASSIGN_OR_RETURN(ParsedCfg cfg, ParseCfg(cfg_json, cfg_path.string()));

  LoadedDictionary out;
  out.format = SourceFormat::kSaeLens;
  engine::Dictionary& d = out.dictionary;
  d.config = cfg.config;
  const int64_t n_in = d.config.d_in, n_sae = d.config.d_sae;
  const int64_t n_out = d.config.decoder_dim();  // d_out for transcoders
  const Architecture arch = d.config.architecture;

  SAEDICT_ASSIGN_OR_RETURN(d.w_dec, ReadTensor(st, "W_dec", {n_sae, n_out}));
  out.source_dtype = SourceDType(st.Find("W_dec")->dtype);
  SAEDICT_ASSIGN_OR_RETURN(d.b_dec, ReadTensor(st, "b_dec", {n_out}));
  if (cfg.skip_transcoder) {
    SAEDICT_ASSIGN_OR_RETURN(d.w_skip, ReadTensor(st, "W_skip", {d.config.d_out, n_in}));
  } else if (st.Find("W_skip") != nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(st.label(), ": tensor 'W_skip' present, but the cfg's architecture has no "
                                 "skip connection (use skip_transcoder or "
                                 "jumprelu_skip_transcoder)"));
  }
  if (arch == Architecture::kMatchingPursuit) {
    d.w_enc = Transpose(d.w_dec, n_sae, n_in);  // tied; a stored W_enc is ignored
  } else {
    SAEDICT_ASSIGN_OR_RETURN(d.w_enc, ReadTensor(st, "W_enc", {n_in, n_sae}));
  }
  if (arch == Architecture::kGated) {
    SAEDICT_ASSIGN_OR_RETURN(d.b_gate, ReadTensor(st, "b_gate", {n_sae}));
    SAEDICT_ASSIGN_OR_RETURN(d.b_mag, ReadTensor(st, "b_mag", {n_sae}));
    SAEDICT_ASSIGN_OR_RETURN(d.r_mag, ReadTensor(st, "r_mag", {n_sae}));
  } else if (arch != Architecture::kMatchingPursuit) {
    SAEDICT_ASSIGN_OR_RETURN(d.b_enc, ReadTensor(st, "b_enc", {n_sae}));
  }
  if (arch == Architecture::kJumpReLU) {
    SAEDICT_ASSIGN_OR_RETURN(std::optional<std::vector<float>> threshold,
                             ReadOptionalTensor(st, "threshold", {n_sae}));
    if (!threshold) {  // JumpReLU training form keeps log_threshold
      SAEDICT_ASSIGN_OR_RETURN(threshold, ReadOptionalTensor(st, "log_threshold", {n_sae}));
      if (threshold) {
        for (float& t : *threshold) t = std::exp(t);
      }
    }
    if (!threshold && cfg.batchtopk_training_form) {  // BatchTopK's global threshold
      SAEDICT_ASSIGN_OR_RETURN(std::optional<std::vector<float>> global,
                               ReadOptionalTensor(st, "topk_threshold", {}));
      if (global) threshold = std::vector<float>(n_sae, (*global)[0]);
    }
    if (!threshold) {
      return absl::InvalidArgumentError(absl::StrCat(st.label(), ": missing tensor 'threshold'"));
    }
    d.threshold = std::move(*threshold);
    if (cfg.batchtopk_training_form && d.config.rescale_acts_by_decoder_norm) {
      FoldDecoderNorms(&d);
    }
    d.config.k = 0;
  }
  if (arch != Architecture::kTopK) d.config.rescale_acts_by_decoder_norm = false;  // topk only
  if (cfg.finetuning_scaling_factor) {  // SAELens <= 5: f * scaling_factor before W_dec
    SAEDICT_ASSIGN_OR_RETURN(std::vector<float> scale, ReadTensor(st, "scaling_factor", {n_sae}));
    for (int64_t i = 0; i < n_sae; ++i) {
      for (int64_t j = 0; j < n_out; ++j) d.w_dec[i * n_out + j] *= scale[i];
    }
  }
  if (cfg.expected_average_only_in) {
    // SAELens (6.x) folds the estimated factor into the weights before saving
    // the final model and writes activation_scaler.json with a null factor;
    // intermediate checkpoints keep the factor there, unfolded. No file or a
    // null factor therefore means "already folded".
    SAEDICT_ASSIGN_OR_RETURN(std::optional<double> s, ReadScalingFactor(dir, files));
    if (s) FoldActivationScale(&d, *s);
  }
  SAEDICT_RETURN_IF_ERROR(ValidateLoaded(d, st.label()));
  return out;
}

}  // namespace saedict::formats::internal
