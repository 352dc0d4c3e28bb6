// Resolves a client-supplied path against --dictionary_root and refuses any
// path that escapes it (.., absolute paths elsewhere, symlinks out).
// Thread safety: pure function (reads the file system).
#ifndef SAEDICT_SERVER_PATH_GUARD_H_
#define SAEDICT_SERVER_PATH_GUARD_H_

#include <filesystem>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace saedict::server {

// Returns the canonical path of `requested` (relative to root, or absolute
// inside it). INVALID_ARGUMENT when empty, PERMISSION_DENIED when it resolves
// outside root, NOT_FOUND when it does not exist.
absl::StatusOr<std::filesystem::path> ResolveUnderRoot(const std::filesystem::path& root,
                                                       absl::string_view requested);

}  // namespace saedict::server

#endif  // SAEDICT_SERVER_PATH_GUARD_H_
