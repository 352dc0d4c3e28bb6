// Whole-file reads and atomic whole-file writes for the format readers and
// writers in formats/. POSIX underneath; errors carry the path and errno text.
//
// Thread safety: free functions with no shared state. Concurrent writers to
// the same path each publish a complete file; the last rename wins.
#ifndef SAEDICT_FORMATS_CODECS_FILE_IO_H_
#define SAEDICT_FORMATS_CODECS_FILE_IO_H_

#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace saedict::formats {

// The file's bytes. NOT_FOUND when it does not exist, INVALID_ARGUMENT when
// it is not a regular file, otherwise the errno-derived code.
absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path);

// Writes `contents` to a temporary file beside `path`, fsyncs it, renames it
// over `path` and fsyncs the directory: readers see the old file or the new
// one, never a partial one. The temporary file is removed on failure.
absl::Status WriteFileAtomically(const std::filesystem::path& path, absl::string_view contents);

}  // namespace saedict::formats

#endif  // SAEDICT_FORMATS_CODECS_FILE_IO_H_
