// LoadDictionary: format detection and dispatch to the per-format loaders
// (saelens_loader.cc, sparsify_loader.cc, gemma_scope_loader.cc). The
// canonical file lives in canonical.cc.
#include "formats/dictionary_loader.h"

#include <system_error>

#include "absl/strings/str_cat.h"
#include "formats/loader_internal.h"

namespace saedict::formats {
namespace {

namespace fs = std::filesystem;

bool IsFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

}  // namespace

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
  }
  return "?";
}

absl::StatusOr<LoadedDictionary> LoadDictionary(const fs::path& path, SourceFormat format) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) {
    return absl::NotFoundError(absl::StrCat(path.string(), ": no such file or directory"));
  }
  // A file: a Gemma Scope .npz, or one file of a folder-based format.
  fs::path dir = path;
  if (fs::is_regular_file(status)) {
    if (format == SourceFormat::kGemmaScope || path.extension() == ".npz") {
      return internal::LoadGemmaScope(path);
    }
    dir = path.parent_path();
  }
  if (format == SourceFormat::kAuto) {
    const bool cfg = IsFile(dir / "cfg.json");
    if (cfg && IsFile(dir / "sae_weights.safetensors")) {
      format = SourceFormat::kSaeLens;
    } else if (cfg && IsFile(dir / "sae.safetensors")) {
      format = SourceFormat::kSparsify;
    } else if (IsFile(dir / "params.npz")) {
      format = SourceFormat::kGemmaScope;
    } else {
      return absl::NotFoundError(
          absl::StrCat(dir.string(),
                       ": no SAE found: expected cfg.json + sae_weights.safetensors (SAELens), "
                       "cfg.json + sae.safetensors (sparsify) or params.npz (Gemma Scope)"));
    }
  }
  switch (format) {
    case SourceFormat::kSaeLens:
      return internal::LoadSaeLens(dir);
    case SourceFormat::kSparsify:
      return internal::LoadSparsify(dir);
    case SourceFormat::kGemmaScope:
      return internal::LoadGemmaScope(dir / "params.npz");
    case SourceFormat::kAuto:
      break;
  }
  return absl::InvalidArgumentError("unknown source format");
}

}  // namespace saedict::formats
