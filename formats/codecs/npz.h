// NumPy .npz archives: a zip of .npy files, as np.savez (stored) and
// np.savez_compressed (deflate) write them. Array names are the entry names
// without the ".npy" suffix; entries not ending in ".npy" are ignored.
// Reading goes through ZipReader and ParseNpy, so every check of those
// applies; writing stores entries uncompressed (no zip64: under 4 GiB).
//
// Thread safety: free functions with no shared state.
#ifndef SAEDICT_FORMATS_CODECS_NPZ_H_
#define SAEDICT_FORMATS_CODECS_NPZ_H_

#include <filesystem>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "formats/codecs/npy.h"
#include "formats/codecs/zip.h"

namespace saedict::formats {

// One array of an opened archive, by name without ".npy". INVALID_ARGUMENT
// naming the archive and array when it is missing or malformed.
absl::StatusOr<NpyArray> ReadNpzArray(const ZipReader& zip, absl::string_view name);

// Every array of the archive, by name.
absl::StatusOr<std::map<std::string, NpyArray>> ParseNpz(std::string bytes, std::string label);
// Like ParseNpz, reading the file through ZipReader::Open (one entry in
// memory at a time, not the whole archive); NOT_FOUND when it is missing.
absl::StatusOr<std::map<std::string, NpyArray>> ReadNpzFile(const std::filesystem::path& path);

// The archive bytes ("<name>.npy" entries, stored) and an atomic file write.
absl::StatusOr<std::string> SerializeNpz(const std::map<std::string, NpyArray>& arrays);
absl::Status WriteNpzFile(const std::filesystem::path& path,
                          const std::map<std::string, NpyArray>& arrays);

}  // namespace saedict::formats

#endif  // SAEDICT_FORMATS_CODECS_NPZ_H_
