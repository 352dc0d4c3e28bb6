// Dictionary loading from the on-disk SAE formats of DESIGN.md §2 (SAELens,
// EleutherAI sparsify, Gemma Scope), and the canonical copy saedict keeps in
// its data directory. Files are untrusted: every failure is INVALID_ARGUMENT
// (or NOT_FOUND for a missing file) with a message naming the file, the
// tensor or cfg key, and the value found. A load on a request's behalf names
// a root (LoadOptions::root): every file the loader opens must then resolve
// inside it, or the load fails with PERMISSION_DENIED.
//
// Thread safety: free functions with no shared state.
#ifndef SAEDICT_FORMATS_DICTIONARY_LOADER_H_
#define SAEDICT_FORMATS_DICTIONARY_LOADER_H_

#include <filesystem>

#include "absl/status/statusor.h"
#include "engine/dictionary.h"

namespace saedict::formats {

enum class SourceFormat { kAuto, kSaeLens, kSparsify, kGemmaScope, kGemmaScope2 };
enum class DType { kF32, kF16, kBF16 };

const char* SourceFormatName(SourceFormat f);  // "auto", "saelens", "sparsify", "gemma_scope", "gemma_scope_2"

struct LoadedDictionary {
  engine::Dictionary dictionary;              // canonical F32; Validate() already passed
  SourceFormat format = SourceFormat::kAuto;  // the format actually detected
  DType source_dtype = DType::kF32;           // dtype of the weight tensors on disk
};

struct LoadOptions {
  // The format to read; kAuto detects it (see LoadDictionary).
  SourceFormat format = SourceFormat::kAuto;
  // Empty: files are opened wherever their paths lead. Otherwise a directory:
  // `path`, each file the format reads (cfg.json, the safetensors file,
  // activation_scaler.json, params.npz, ...) and each candidate probed while
  // detecting the format must resolve inside it, symbolic links followed at
  // every level (formats::FileRoot). A link that stays inside is fine; one
  // that leads out is PERMISSION_DENIED "<file> resolves to '<target>',
  // outside the root '<root>'", also when the target does not exist. A root
  // that does not exist or is not a directory: NOT_FOUND / FAILED_PRECONDITION.
  std::filesystem::path root;
};

// `path` is a folder (SAELens: cfg.json + sae_weights.safetensors; sparsify:
// cfg.json + sae.safetensors) or a Gemma Scope params.npz file (or a folder
// holding params.npz). kAuto detects the format from the files present, in
// that order; a path naming a file inside a SAELens / sparsify folder (e.g.
// its cfg.json) loads that folder, and any *.npz file loads as Gemma Scope.
// NOT_FOUND when the path, or the file the format needs, does not exist.
//
// What each format yields (details in the per-format .cc files):
// - SAELens 6.x and older cfg spellings (hook_point / top-level model_name /
//   activation_fn "topk" + activation_fn_kwargs); architectures standard,
//   topk, jumprelu, gated, matching_pursuit, and the training form of
//   (matryoshka_)batchtopk as jumprelu. expected_average_only_in is folded
//   into the weights (factor from activation_scaler.json; none or null there
//   means SAELens already folded it) and loads as Normalization::kNone.
// - sparsify: topk, apply_b_dec_to_input true (false for transcoders).
// - Gemma Scope: jumprelu, apply_b_dec_to_input false.
// sparsify and Gemma Scope files carry no model or hook name: those stay
// empty for the caller to fill in.
absl::StatusOr<LoadedDictionary> LoadDictionary(const std::filesystem::path& path,
                                                const LoadOptions& options);
// LoadDictionary(path, {.format = format}): no root.
absl::StatusOr<LoadedDictionary> LoadDictionary(const std::filesystem::path& path,
                                                SourceFormat format = SourceFormat::kAuto);

// The canonical copy: one safetensors file with F32 tensors and the config in
// __metadata__. Written atomically (temp file + rename). ReadCanonical
// validates like any untrusted file.
absl::Status WriteCanonical(const engine::Dictionary& dictionary,
                            const std::filesystem::path& file);
absl::StatusOr<engine::Dictionary> ReadCanonical(const std::filesystem::path& file);

}  // namespace saedict::formats

#endif  // SAEDICT_FORMATS_DICTIONARY_LOADER_H_
