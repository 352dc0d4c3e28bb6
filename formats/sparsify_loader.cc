// EleutherAI sparsify folder loader: cfg.json + sae.safetensors.
// cfg: activation "topk" (absent in older versions: topk), k, num_latents
// (0 or absent: expansion_factor × d_in), d_in (absent: from b_dec),
// transcode (then b_dec is not subtracted from the input), skip_connection
// (unsupported: an extra W_skip term). Tensors: encoder.weight [M, d_in]
// (= W_encᵀ, transposed here), encoder.bias [M], W_dec [M, d_in], b_dec [d_in].
// sparsify encodes topk(relu(pre)), which keeps the same nonzero values as
// relu(topk(pre)), so the dictionary is an ordinary TopK one. sparsify files
// name neither model nor hook: model_name and hook_name are left empty.
#include "absl/strings/str_cat.h"
#include "formats/codecs/file_io.h"
#include "formats/codecs/json.h"
#include "formats/loader_internal.h"
#include "util/status_macros.h"

namespace saedict::formats::internal {
namespace {
constexpr int64_t kMaxDim = int64_t{1} << 31;
}  // namespace

absl::StatusOr<LoadedDictionary> LoadSparsify(const std::filesystem::path& dir,
                                              const FileRoot& files) {
  const std::filesystem::path cfg_path = dir / "cfg.json";
  const std::string label = cfg_path.string();
  SAEDICT_ASSIGN_OR_RETURN(std::string cfg_text, files.ReadFile(cfg_path));
  SAEDICT_ASSIGN_OR_RETURN(SafetensorsFile st,
                           SafetensorsFile::Read(dir / "sae.safetensors", files));
  SAEDICT_ASSIGN_OR_RETURN(google::protobuf::Struct cfg, ParseJsonObject(cfg_text, label, true));
  SAEDICT_ASSIGN_OR_RETURN(std::optional<std::string> activation,
                           GetJsonString(cfg, "activation", label));
  if (activation && *activation != "topk") {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": unsupported activation ", JsonQuote(*activation)));
  }
  SAEDICT_ASSIGN_OR_RETURN(std::optional<bool> skip, GetJsonBool(cfg, "skip_connection", label));
  if (skip.value_or(false)) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": skip_connection true (a W_skip term) is not supported"));
  }
  SAEDICT_ASSIGN_OR_RETURN(std::optional<bool> transcode, GetJsonBool(cfg, "transcode", label));
  SAEDICT_ASSIGN_OR_RETURN(std::optional<int64_t> k, GetJsonInt(cfg, "k", label, 1, kMaxDim));
  if (!k) return absl::InvalidArgumentError(absl::StrCat(label, ": missing key 'k'"));
  SAEDICT_ASSIGN_OR_RETURN(std::optional<int64_t> d_in, GetJsonInt(cfg, "d_in", label, 1, kMaxDim));
  SAEDICT_ASSIGN_OR_RETURN(std::optional<int64_t> num_latents,
                           GetJsonInt(cfg, "num_latents", label, 0, kMaxDim));
  SAEDICT_ASSIGN_OR_RETURN(std::optional<int64_t> expansion,
                           GetJsonInt(cfg, "expansion_factor", label, 0, kMaxDim));
  if (!d_in) {
    const SafetensorInfo* b_dec = st.Find("b_dec");
    if (b_dec == nullptr || b_dec->shape.size() != 1 || b_dec->shape[0] < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": no key 'd_in' and no 1-D tensor 'b_dec' in ", st.label()));
    }
    d_in = b_dec->shape[0];
  }
  int64_t d_sae = num_latents.value_or(0);
  if (d_sae == 0) d_sae = expansion.value_or(0) * *d_in;
  if (d_sae <= 0 || d_sae > kMaxDim) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": num_latents ", num_latents.value_or(0),
                                                   " and expansion_factor ", expansion.value_or(0),
                                                   " give no latent count"));
  }

  LoadedDictionary out;
  out.format = SourceFormat::kSparsify;
  engine::Dictionary& d = out.dictionary;
  engine::DictionaryConfig& c = d.config;
  c.d_in = *d_in;
  c.d_sae = d_sae;
  c.architecture = engine::Architecture::kTopK;
  if (*k > d_sae) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": key 'k' = ", *k, " exceeds the ", d_sae, " latents"));
  }
  c.k = static_cast<int32_t>(*k);
  c.apply_b_dec_to_input = !transcode.value_or(false);
  SAEDICT_ASSIGN_OR_RETURN(std::vector<float> enc_t,
                           ReadTensor(st, "encoder.weight", {d_sae, *d_in}));
  out.source_dtype = SourceDType(st.Find("encoder.weight")->dtype);
  d.w_enc = Transpose(enc_t, d_sae, *d_in);
  enc_t = {};
  SAEDICT_ASSIGN_OR_RETURN(d.b_enc, ReadTensor(st, "encoder.bias", {d_sae}));
  SAEDICT_ASSIGN_OR_RETURN(d.w_dec, ReadTensor(st, "W_dec", {d_sae, *d_in}));
  SAEDICT_ASSIGN_OR_RETURN(d.b_dec, ReadTensor(st, "b_dec", {*d_in}));
  SAEDICT_RETURN_IF_ERROR(ValidateLoaded(d, st.label()));
  return out;
}

}  // namespace saedict::formats::internal
