// The canonical dictionary file saedict keeps in its data directory: one
// safetensors file, F32 tensors named as in SAELens (W_enc, b_enc, W_dec,
// b_dec, threshold, b_gate, b_mag, r_mag; W_enc omitted for matching pursuit,
// whose encoder is W_decᵀ), the config as strings in __metadata__ under the
// DictionaryConfig field names plus "saedict_format": "canonical-v1".
// Transcoders add "d_out" and "hook_name_out" to the metadata, W_dec and b_dec
// take the width d_out, and a skip transcoder adds W_skip [d_out, d_in]; an
// SAE's file has none of them (files written before transcoders still read).
// The enum spellings here are part of the file format and never change.
#include <cmath>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "formats/codecs/float_convert.h"
#include "formats/codecs/safetensors.h"
#include "formats/dictionary_loader.h"
#include "formats/loader_internal.h"
#include "util/status_macros.h"

namespace saedict::formats {
namespace {

using engine::Architecture;
using engine::Normalization;

constexpr const char* kFormatKey = "saedict_format";
constexpr const char* kFormatValue = "canonical-v1";

constexpr std::pair<Architecture, const char*> kArchNames[] = {
    {Architecture::kStandard, "standard"},
    {Architecture::kTopK, "topk"},
    {Architecture::kJumpReLU, "jumprelu"},
    {Architecture::kGated, "gated"},
    {Architecture::kMatchingPursuit, "matching_pursuit"},
};
constexpr std::pair<Normalization, const char*> kNormNames[] = {
    {Normalization::kNone, "none"},
    {Normalization::kConstantNormRescale, "constant_norm_rescale"},
    {Normalization::kLayerNorm, "layer_norm"},
};

template <typename E, size_t N>
const char* NameOf(const std::pair<E, const char*> (&table)[N], E e) {
  for (const auto& [value, name] : table) {
    if (value == e) return name;
  }
  return "?";
}

// Typed access to __metadata__ with messages naming the file, key and value.
class Meta {
 public:
  Meta(const SafetensorsFile& st) : st_(st) {}
  absl::StatusOr<std::string> Str(const std::string& key) const {
    auto it = st_.metadata().find(key);
    if (it == st_.metadata().end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(st_.label(), ": __metadata__ lacks key '", key, "'"));
    }
    return it->second;
  }
  absl::Status Bad(const std::string& key, absl::string_view value, absl::string_view want) const {
    return absl::InvalidArgumentError(absl::StrCat(st_.label(), ": __metadata__ key '", key,
                                                   "' = \"", value, "\" is not ", want));
  }
  template <typename T>
  absl::StatusOr<T> Int(const std::string& key) const {
    SAEDICT_ASSIGN_OR_RETURN(std::string v, Str(key));
    T out;
    if (!absl::SimpleAtoi(v, &out)) return Bad(key, v, "an integer");
    return out;
  }
  absl::StatusOr<bool> Bool(const std::string& key) const {
    SAEDICT_ASSIGN_OR_RETURN(std::string v, Str(key));
    if (v != "true" && v != "false") return Bad(key, v, "true or false");
    return v == "true";
  }
  template <typename E, size_t N>
  absl::StatusOr<E> Enum(const std::string& key,
                         const std::pair<E, const char*> (&table)[N]) const {
    SAEDICT_ASSIGN_OR_RETURN(std::string v, Str(key));
    for (const auto& [value, name] : table) {
      if (v == name) return value;
    }
    return Bad(key, v, "a known value");
  }

 private:
  const SafetensorsFile& st_;
};

}  // namespace

absl::Status WriteCanonical(const engine::Dictionary& d, const std::filesystem::path& file) {
  SAEDICT_RETURN_IF_ERROR(d.Validate());
  const engine::DictionaryConfig& c = d.config;
  std::map<std::string, std::string> meta = {
      {kFormatKey, kFormatValue},
      {"model_name", c.model_name},
      {"hook_name", c.hook_name},
      {"d_in", absl::StrCat(c.d_in)},
      {"d_sae", absl::StrCat(c.d_sae)},
      {"architecture", NameOf(kArchNames, c.architecture)},
      {"apply_b_dec_to_input", c.apply_b_dec_to_input ? "true" : "false"},
      {"normalization", NameOf(kNormNames, c.normalization)},
      {"k", absl::StrCat(c.k)},
      {"rescale_acts_by_decoder_norm", c.rescale_acts_by_decoder_norm ? "true" : "false"},
      {"mp_residual_threshold", absl::StrFormat("%.9g", c.mp_residual_threshold)},
  };
  if (!c.matryoshka_widths.empty()) {
    meta["matryoshka_widths"] = absl::StrJoin(c.matryoshka_widths, ",");
  }
  if (c.is_transcoder()) {
    meta["d_out"] = absl::StrCat(c.d_out);
    meta["hook_name_out"] = c.hook_name_out;
  }
  const bool tied = c.architecture == Architecture::kMatchingPursuit;
  std::vector<SafetensorToWrite> tensors;
  auto add = [&tensors](const char* name, const std::vector<float>& v, std::vector<int64_t> shape) {
    if (v.empty()) return;
    tensors.push_back(
        {name, StDType::kF32, std::move(shape),
         absl::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float))});
  };
  if (!tied) add("W_enc", d.w_enc, {c.d_in, c.d_sae});
  add("b_enc", d.b_enc, {c.d_sae});
  add("W_dec", d.w_dec, {c.d_sae, c.decoder_dim()});
  add("b_dec", d.b_dec, {c.decoder_dim()});
  add("W_skip", d.w_skip, {c.d_out, c.d_in});
  add("threshold", d.threshold, {c.d_sae});
  add("b_gate", d.b_gate, {c.d_sae});
  add("b_mag", d.b_mag, {c.d_sae});
  add("r_mag", d.r_mag, {c.d_sae});
  return WriteSafetensorsFile(file, tensors, meta);
}

absl::StatusOr<engine::Dictionary> ReadCanonical(const std::filesystem::path& file) {
  SAEDICT_ASSIGN_OR_RETURN(SafetensorsFile st, SafetensorsFile::Read(file));
  const Meta meta(st);
  SAEDICT_ASSIGN_OR_RETURN(std::string format, meta.Str(kFormatKey));
  if (format != kFormatValue) return meta.Bad(kFormatKey, format, kFormatValue);
  engine::Dictionary d;
  engine::DictionaryConfig& c = d.config;
  SAEDICT_ASSIGN_OR_RETURN(c.model_name, meta.Str("model_name"));
  SAEDICT_ASSIGN_OR_RETURN(c.hook_name, meta.Str("hook_name"));
  SAEDICT_ASSIGN_OR_RETURN(c.d_in, meta.Int<int64_t>("d_in"));
  SAEDICT_ASSIGN_OR_RETURN(c.d_sae, meta.Int<int64_t>("d_sae"));
  if (c.d_in < 1 || c.d_sae < 1 || c.d_in > (int64_t{1} << 31) || c.d_sae > (int64_t{1} << 31)) {
    return meta.Bad("d_in", absl::StrCat(c.d_in, "/", c.d_sae), "a valid d_in/d_sae pair");
  }
  SAEDICT_ASSIGN_OR_RETURN(c.architecture, meta.Enum("architecture", kArchNames));
  SAEDICT_ASSIGN_OR_RETURN(c.apply_b_dec_to_input, meta.Bool("apply_b_dec_to_input"));
  SAEDICT_ASSIGN_OR_RETURN(c.normalization, meta.Enum("normalization", kNormNames));
  SAEDICT_ASSIGN_OR_RETURN(c.k, meta.Int<int32_t>("k"));
  SAEDICT_ASSIGN_OR_RETURN(c.rescale_acts_by_decoder_norm,
                           meta.Bool("rescale_acts_by_decoder_norm"));
  SAEDICT_ASSIGN_OR_RETURN(std::string mp, meta.Str("mp_residual_threshold"));
  if (!absl::SimpleAtof(mp, &c.mp_residual_threshold)) {
    return meta.Bad("mp_residual_threshold", mp, "a number");
  }
  if (auto it = st.metadata().find("matryoshka_widths"); it != st.metadata().end()) {
    for (absl::string_view part : absl::StrSplit(it->second, ',')) {
      int64_t w = 0;
      if (!absl::SimpleAtoi(part, &w)) {
        return meta.Bad("matryoshka_widths", it->second, "comma-separated integers");
      }
      c.matryoshka_widths.push_back(w);
    }
  }

  if (st.metadata().contains("d_out")) {
    SAEDICT_ASSIGN_OR_RETURN(c.d_out, meta.Int<int64_t>("d_out"));
    if (c.d_out < 1 || c.d_out > (int64_t{1} << 31)) {
      return meta.Bad("d_out", absl::StrCat(c.d_out), "a width in [1, 2^31]");
    }
    SAEDICT_ASSIGN_OR_RETURN(c.hook_name_out, meta.Str("hook_name_out"));
  }

  using internal::ReadTensor;
  const int64_t n_in = c.d_in, n_sae = c.d_sae, n_out = c.decoder_dim();
  SAEDICT_ASSIGN_OR_RETURN(d.w_dec, ReadTensor(st, "W_dec", {n_sae, n_out}));
  SAEDICT_ASSIGN_OR_RETURN(d.b_dec, ReadTensor(st, "b_dec", {n_out}));
  if (c.is_transcoder()) {
    SAEDICT_ASSIGN_OR_RETURN(std::optional<std::vector<float>> w_skip,
                             internal::ReadOptionalTensor(st, "W_skip", {c.d_out, n_in}));
    if (w_skip) d.w_skip = std::move(*w_skip);
  } else if (st.Find("W_skip") != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        st.label(), ": tensor 'W_skip' without __metadata__ key 'd_out' (only a transcoder has one)"));
  }
  const Architecture a = c.architecture;
  if (a == Architecture::kMatchingPursuit) {
    d.w_enc = internal::Transpose(d.w_dec, n_sae, n_in);
  } else {
    SAEDICT_ASSIGN_OR_RETURN(d.w_enc, ReadTensor(st, "W_enc", {n_in, n_sae}));
  }
  if (a == Architecture::kGated) {
    SAEDICT_ASSIGN_OR_RETURN(d.b_gate, ReadTensor(st, "b_gate", {n_sae}));
    SAEDICT_ASSIGN_OR_RETURN(d.b_mag, ReadTensor(st, "b_mag", {n_sae}));
    SAEDICT_ASSIGN_OR_RETURN(d.r_mag, ReadTensor(st, "r_mag", {n_sae}));
  } else if (a != Architecture::kMatchingPursuit) {
    SAEDICT_ASSIGN_OR_RETURN(d.b_enc, ReadTensor(st, "b_enc", {n_sae}));
  }
  if (a == Architecture::kJumpReLU) {
    SAEDICT_ASSIGN_OR_RETURN(d.threshold, ReadTensor(st, "threshold", {n_sae}));
  }
  SAEDICT_RETURN_IF_ERROR(internal::ValidateLoaded(d, st.label()));
  return d;
}

}  // namespace saedict::formats
