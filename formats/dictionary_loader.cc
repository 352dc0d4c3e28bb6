// LoadDictionary: format detection and dispatch to the per-format loaders
// (saelens_loader.cc, sparsify_loader.cc, gemma_scope_loader.cc,
// gemma_scope2_loader.cc). The
// canonical file lives in canonical.cc.
#include "formats/dictionary_loader.h"

#include "absl/strings/str_cat.h"
#include "formats/codecs/file_io.h"
#include "formats/loader_internal.h"
#include "util/status_macros.h"

namespace saedict::formats {

namespace fs = std::filesystem;

const char* SourceFormatName(SourceFormat f) {
  switch (f) {
    case SourceFormat::kAuto:
      return "auto";
    case SourceFormat::kSaeLens:
      return "saelens";
    case SourceFormat::kSparsify:
      return "sparsify";
    case SourceFormat::kGemmaScope:
      return "gemma_scope";
    case SourceFormat::kGemmaScope2:
      return "gemma_scope_2";
  }
  return "?";
}

absl::StatusOr<LoadedDictionary> LoadDictionary(const fs::path& path, SourceFormat format) {
  LoadOptions options;
  options.format = format;
  return LoadDictionary(path, options);
}

absl::StatusOr<LoadedDictionary> LoadDictionary(const fs::path& path, const LoadOptions& options) {
  FileRoot files = FileRoot::Unrestricted();
  if (!options.root.empty()) {
    SAEDICT_ASSIGN_OR_RETURN(files, FileRoot::Create(options.root));
  }
  SourceFormat format = options.format;
  // The path itself (a symlinked folder or file leading out is refused here).
  SAEDICT_ASSIGN_OR_RETURN(const bool is_file, files.IsRegularFile(path));
  // A file: a Gemma Scope .npz, or one file of a folder-based format.
  fs::path dir = path;
  if (is_file) {
    if (format == SourceFormat::kGemmaScope || path.extension() == ".npz") {
      return internal::LoadGemmaScope(path, files);
    }
    dir = path.parent_path();
  } else {
    SAEDICT_ASSIGN_OR_RETURN(const bool exists, files.Exists(path));
    if (!exists) {
      return absl::NotFoundError(absl::StrCat(path.string(), ": no such file or directory"));
    }
  }
  if (format == SourceFormat::kAuto) {
    // Probed in this order, each only when needed.
    SAEDICT_ASSIGN_OR_RETURN(const bool cfg, files.IsRegularFile(dir / "cfg.json"));
    bool found = false;
    if (cfg) {
      SAEDICT_ASSIGN_OR_RETURN(found, files.IsRegularFile(dir / "sae_weights.safetensors"));
      if (found) format = SourceFormat::kSaeLens;
    }
    if (cfg && !found) {
      SAEDICT_ASSIGN_OR_RETURN(found, files.IsRegularFile(dir / "sae.safetensors"));
      if (found) format = SourceFormat::kSparsify;
    }
    if (!found) {
      SAEDICT_ASSIGN_OR_RETURN(found, files.IsRegularFile(dir / "params.npz"));
      if (found) format = SourceFormat::kGemmaScope;
    }
    if (!found) {
      SAEDICT_ASSIGN_OR_RETURN(found, files.IsRegularFile(dir / "params.safetensors"));
      if (found) format = SourceFormat::kGemmaScope2;
    }
    if (!found) {
      return absl::NotFoundError(
          absl::StrCat(dir.string(),
                       ": no SAE found: expected cfg.json + sae_weights.safetensors (SAELens), "
                       "cfg.json + sae.safetensors (sparsify), params.npz (Gemma Scope) or "
                       "params.safetensors (Gemma Scope 2)"));
    }
  }
  switch (format) {
    case SourceFormat::kSaeLens:
      return internal::LoadSaeLens(dir, files);
    case SourceFormat::kSparsify:
      return internal::LoadSparsify(dir, files);
    case SourceFormat::kGemmaScope:
      return internal::LoadGemmaScope(dir / "params.npz", files);
    case SourceFormat::kGemmaScope2:
      return internal::LoadGemmaScope2(dir, files);
    case SourceFormat::kAuto:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("format: unknown source format ", static_cast<int>(format)));
}

}  // namespace saedict::formats
