// Gemma Scope loader: params.npz with W_enc [d_in, d_sae], W_dec [d_sae, d_in],
// b_enc [d_sae], b_dec [d_in], threshold [d_sae]. JumpReLU; Gemma Scope does
// not subtract b_dec from the input (its b_enc already accounts for it), so
// apply_b_dec_to_input is false. The archive names neither model nor hook:
// model_name and hook_name are left empty.
#include "absl/strings/str_cat.h"
#include "formats/codecs/npz.h"
#include "formats/loader_internal.h"
#include "util/status_macros.h"

namespace saedict::formats::internal {

absl::StatusOr<LoadedDictionary> LoadGemmaScope(const std::filesystem::path& npz,
                                                const FileRoot& files) {
  SAEDICT_ASSIGN_OR_RETURN(ZipReader zip, ZipReader::Open(npz, files));
  const std::string& label = zip.label();
  // Read one array at a time so that only one extra copy is alive.
  SAEDICT_ASSIGN_OR_RETURN(NpyArray w_enc, ReadNpzArray(zip, "W_enc"));
  if (w_enc.shape.size() != 2 || w_enc.shape[0] < 1 || w_enc.shape[1] < 1) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": array 'W_enc' has shape ",
                                                   ShapeToString(w_enc.shape),
                                                   ", expected [d_in,d_sae]"));
  }
  LoadedDictionary out;
  out.format = SourceFormat::kGemmaScope;
  out.source_dtype = w_enc.dtype == NpyDType::kF16 ? DType::kF16 : DType::kF32;
  engine::Dictionary& d = out.dictionary;
  engine::DictionaryConfig& c = d.config;
  c.d_in = w_enc.shape[0];
  c.d_sae = w_enc.shape[1];
  c.architecture = engine::Architecture::kJumpReLU;
  c.apply_b_dec_to_input = false;
  SAEDICT_ASSIGN_OR_RETURN(d.w_enc, NpyTensor(w_enc, label, "W_enc", {c.d_in, c.d_sae}));
  w_enc = {};
  struct Wanted {
    const char* name;
    std::vector<int64_t> shape;
    std::vector<float>* dest;
  };
  for (const Wanted& want :
       {Wanted{"W_dec", {c.d_sae, c.d_in}, &d.w_dec}, Wanted{"b_enc", {c.d_sae}, &d.b_enc},
        Wanted{"b_dec", {c.d_in}, &d.b_dec}, Wanted{"threshold", {c.d_sae}, &d.threshold}}) {
    SAEDICT_ASSIGN_OR_RETURN(NpyArray array, ReadNpzArray(zip, want.name));
    SAEDICT_ASSIGN_OR_RETURN(*want.dest, NpyTensor(array, label, want.name, want.shape));
  }
  SAEDICT_RETURN_IF_ERROR(ValidateLoaded(d, label));
  return out;
}

}  // namespace saedict::formats::internal
