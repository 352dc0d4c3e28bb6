// SHA-256 of a file's bytes (OpenSSL), as 64 lowercase hex digits. Used to
// tell a damaged index file from the one the manifest describes.
// Thread safety: pure function.
#ifndef SAEDICT_INDEX_FILE_SHA256_H_
#define SAEDICT_INDEX_FILE_SHA256_H_

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"

namespace saedict::index {

// NOT_FOUND / UNAVAILABLE when the file cannot be read.
absl::StatusOr<std::string> FileSha256(const std::filesystem::path& path);

}  // namespace saedict::index

#endif  // SAEDICT_INDEX_FILE_SHA256_H_
