#include "service/path_guard.h"

#include "absl/strings/str_cat.h"
#include "formats/codecs/file_io.h"

namespace saedict::service {

absl::StatusOr<std::filesystem::path> ResolveUnderRoot(const std::filesystem::path& root,
                                                       absl::string_view requested) {
  if (requested.empty()) return absl::InvalidArgumentError("path: empty; expected a path");
  absl::StatusOr<formats::FileRoot> files = formats::FileRoot::Create(root);
  if (!files.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dictionary root '", root.string(), "' is not accessible: ", files.status().message()));
  }
  std::filesystem::path candidate{std::string(requested)};
  if (candidate.is_relative()) candidate = files->root() / candidate;
  absl::StatusOr<std::filesystem::path> resolved = files->Resolve(candidate);
  if (!resolved.ok()) {
    return absl::Status(resolved.status().code(),
                        absl::StrCat("path '", requested, "': ", resolved.status().message()));
  }
  return resolved;
}

}  // namespace saedict::service
