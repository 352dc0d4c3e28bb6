// Resolves a client-supplied path against --dictionary_root and refuses any
// path that escapes it (.., absolute paths elsewhere, symlinks out). The
// containment rule is formats::FileRoot's, the one the loaders apply to each
// file they open (formats::LoadOptions::root), so the path a request names
// and the files read for it are judged alike.
// Thread safety: pure function (reads the file system).
#ifndef SAEDICT_SERVICE_PATH_GUARD_H_
#define SAEDICT_SERVICE_PATH_GUARD_H_

#include <filesystem>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace saedict::service {

// Returns the canonical path of `requested` (relative to root, or absolute
// inside it). INVALID_ARGUMENT when empty or unresolvable (a symlink loop),
// PERMISSION_DENIED when it resolves outside root (whether or not it
// exists), NOT_FOUND when it does not exist, FAILED_PRECONDITION when the
// root is not an accessible directory. Messages name `requested`.
absl::StatusOr<std::filesystem::path> ResolveUnderRoot(const std::filesystem::path& root,
                                                       absl::string_view requested);

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_PATH_GUARD_H_
