#include "server/path_guard.h"

#include "absl/strings/str_cat.h"

namespace saedict::server {

absl::StatusOr<std::filesystem::path> ResolveUnderRoot(const std::filesystem::path& root,
                                                       absl::string_view requested) {
  namespace fs = std::filesystem;
  if (requested.empty()) return absl::InvalidArgumentError("path: empty; expected a path");
  std::error_code ec;
  const fs::path canonical_root = fs::canonical(root, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("dictionary root '", root.string(), "' is not accessible: ", ec.message()));
  }
  fs::path candidate{std::string(requested)};
  if (candidate.is_relative()) candidate = canonical_root / candidate;
  // weakly_canonical resolves symlinks of the existing prefix and removes "..".
  const fs::path resolved = fs::weakly_canonical(candidate, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("path '", requested, "' cannot be resolved: ", ec.message()));
  }
  auto [root_end, unused] =
      std::mismatch(canonical_root.begin(), canonical_root.end(), resolved.begin(), resolved.end());
  if (root_end != canonical_root.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("path '", requested, "' resolves to '", resolved.string(),
                     "', outside the dictionary root '", canonical_root.string(), "'"));
  }
  if (!fs::exists(resolved, ec)) {
    return absl::NotFoundError(absl::StrCat("path '", requested, "' does not exist under '",
                                            canonical_root.string(), "'"));
  }
  return resolved;
}

}  // namespace saedict::server
