// Dictionary loading from the on-disk SAE formats of DESIGN.md §2 (SAELens,
// EleutherAI sparsify, Gemma Scope), and the canonical copy saedict keeps in
// its data directory. Files are untrusted: every failure is INVALID_ARGUMENT
// (or NOT_FOUND for a missing file) with a message naming the file, the
// tensor or cfg key, and the value found.
//
// Thread safety: free functions with no shared state.
#ifndef SAEDICT_FORMATS_DICTIONARY_LOADER_H_
#define SAEDICT_FORMATS_DICTIONARY_LOADER_H_

#include <filesystem>

#include "absl/status/statusor.h"
#include "engine/dictionary.h"

namespace saedict::formats {

enum class SourceFormat { kAuto, kSaeLens, kSparsify, kGemmaScope };
enum class DType { kF32, kF16, kBF16 };

const char* SourceFormatName(SourceFormat f);  // "auto", "saelens", "sparsify", "gemma_scope"

struct LoadedDictionary {
  engine::Dictionary dictionary;  // canonical F32; Validate() already passed
  SourceFormat format = SourceFormat::kAuto;  // the format actually detected
  DType source_dtype = DType::kF32;           // dtype of the weight tensors on disk
};

// `path` is a folder (SAELens: cfg.json + sae_weights.safetensors; sparsify:
// cfg.json + sae.safetensors) or a Gemma Scope params.npz file (or a folder
// holding params.npz). kAuto detects the format from the files present.
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
