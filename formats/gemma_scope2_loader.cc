// Gemma Scope 2 loader: a folder with params.safetensors holding lowercase
// w_enc [d_in, d_sae], w_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in] and
// threshold [d_sae] — the layout SAELens's gemma_3 loader reads (Gemma
// Scope 2 on Hugging Face: google/gemma-scope-2-*). JumpReLU, b_dec not
// subtracted from the input (apply_b_dec_to_input false), no normalization.
// hook_name follows SAELens's rule on the folder name (with its parent, as
// in the repository's resid_post/layer_12_width_16k_l0_medium): "layer_N"
// with "resid_post" / "attn_out" / "mlp_out" gives blocks.N.hook_resid_post /
// hook_attn_out / hook_mlp_out; otherwise (a renamed or uploaded folder) it
// stays empty, as does model_name (the file names no model).
// Transcoders, as SAELens's loader reads them (jumprelu_skip_transcoder):
// "transcoder" in the folder name, an "affine_skip_connection" tensor
// [d_in, d_out] (W_skip = its transpose; absent: no skip term, as SAELens's
// zero W_skip), or a w_dec [d_sae, d_out] with d_out != d_in. d_out is
// w_dec's second dimension; a "layer_N" transcoder folder reads
// blocks.N.ln2.hook_normalized and writes blocks.N.hook_mlp_out. Cross-layer
// transcoders ("clt": one w_dec per later layer) are refused.
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "formats/loader_internal.h"
#include "util/status_macros.h"

namespace saedict::formats::internal {
namespace {

// N of "layer_N" in the folder name, or "" when it has none.
std::string LayerFromFolderName(const std::string& name) {
  std::smatch m;
  static const std::regex kLayer("layer_(\\d+)");
  return std::regex_search(name, m, kLayer) ? m[1].str() : "";
}

std::string HookFromFolderName(const std::string& name) {
  const std::string layer = LayerFromFolderName(name);
  if (layer.empty()) return "";
  if (absl::StrContains(name, "resid_post")) return absl::StrCat("blocks.", layer, ".hook_resid_post");
  if (absl::StrContains(name, "attn_out")) return absl::StrCat("blocks.", layer, ".hook_attn_out");
  if (absl::StrContains(name, "mlp_out")) return absl::StrCat("blocks.", layer, ".hook_mlp_out");
  return "";
}

}  // namespace

absl::StatusOr<LoadedDictionary> LoadGemmaScope2(const std::filesystem::path& dir,
                                                 const FileRoot& files) {
  const std::filesystem::path path = dir / "params.safetensors";
  SAEDICT_ASSIGN_OR_RETURN(SafetensorsFile st, SafetensorsFile::Read(path, files));
  const std::string label = path.string();
  // SAELens reads the repository's "<site>/layer_N_width_..." folder names:
  // the folder and its parent.
  const std::string folder =
      (dir.parent_path().filename() / dir.filename()).string();
  if (absl::StrContains(folder, "clt")) {
    return absl::InvalidArgumentError(absl::StrCat(
        label, ": a Gemma Scope 2 cross-layer transcoder (\"clt\" in the folder name, one "
               "decoder per later layer); only SAEs and single-layer transcoders are supported"));
  }
  const SafetensorInfo* w_enc = st.Find("w_enc");
  if (w_enc == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": missing tensor 'w_enc'"));
  }
  if (w_enc->shape.size() != 2 || w_enc->shape[0] < 1 || w_enc->shape[1] < 1) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": tensor 'w_enc' has shape ",
                                                   ShapeToString(w_enc->shape),
                                                   ", expected [d_in,d_sae]"));
  }
  LoadedDictionary out;
  out.format = SourceFormat::kGemmaScope2;
  out.source_dtype = SourceDType(w_enc->dtype);
  engine::Dictionary& d = out.dictionary;
  engine::DictionaryConfig& c = d.config;
  c.d_in = w_enc->shape[0];
  c.d_sae = w_enc->shape[1];
  c.architecture = engine::Architecture::kJumpReLU;
  c.apply_b_dec_to_input = false;
  const SafetensorInfo* w_dec = st.Find("w_dec");
  const SafetensorInfo* skip = st.Find("affine_skip_connection");
  const bool transcoder = absl::StrContains(folder, "transcoder") || skip != nullptr ||
                          (w_dec != nullptr && w_dec->shape.size() == 2 &&
                           w_dec->shape[0] == c.d_sae && w_dec->shape[1] != c.d_in);
  if (transcoder) {
    if (w_dec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": missing tensor 'w_dec'"));
    }
    if (w_dec->shape.size() != 2 || w_dec->shape[1] < 1) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": tensor 'w_dec' has shape ",
                                                     ShapeToString(w_dec->shape),
                                                     ", expected [d_sae,d_out]"));
    }
    c.d_out = w_dec->shape[1];
    const std::string layer = LayerFromFolderName(folder);
    if (absl::StrContains(folder, "transcoder") && !layer.empty()) {
      c.hook_name = absl::StrCat("blocks.", layer, ".ln2.hook_normalized");
      c.hook_name_out = absl::StrCat("blocks.", layer, ".hook_mlp_out");
    }
  } else {
    c.hook_name = HookFromFolderName(folder);
  }
  const int64_t d_out = c.decoder_dim();
  SAEDICT_ASSIGN_OR_RETURN(d.w_enc, ReadTensor(st, "w_enc", {c.d_in, c.d_sae}));
  SAEDICT_ASSIGN_OR_RETURN(d.w_dec, ReadTensor(st, "w_dec", {c.d_sae, d_out}));
  SAEDICT_ASSIGN_OR_RETURN(d.b_enc, ReadTensor(st, "b_enc", {c.d_sae}));
  SAEDICT_ASSIGN_OR_RETURN(d.b_dec, ReadTensor(st, "b_dec", {d_out}));
  SAEDICT_ASSIGN_OR_RETURN(d.threshold, ReadTensor(st, "threshold", {c.d_sae}));
  if (skip != nullptr) {
    SAEDICT_ASSIGN_OR_RETURN(std::vector<float> w_skip_t,
                             ReadTensor(st, "affine_skip_connection", {c.d_in, d_out}));
    d.w_skip = Transpose(w_skip_t, c.d_in, d_out);  // -> [d_out, d_in]
  }
  SAEDICT_RETURN_IF_ERROR(ValidateLoaded(d, label));
  return out;
}

}  // namespace saedict::formats::internal
