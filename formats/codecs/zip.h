// Minimal zip archive reader and writer, enough for NumPy .npz files.
// Reader: finds the end-of-central-directory record (zip64 records are
// followed when present), lists entries from the central directory and
// extracts stored or deflated (zlib) entries with their CRC-32 checked.
// Every offset and size from the file is bounds-checked; multi-disk archives,
// encryption and other compression methods are rejected. Declared sizes beyond
// what deflate can produce from the compressed bytes are rejected up front, so
// a small file cannot make the reader allocate without bound.
// Writer: stored (uncompressed) entries with CRC-32, no zip64 (each entry and
// the archive must stay under 4 GiB, at most 65535 entries).
//
// Thread safety: a ZipReader is immutable after Parse; const methods may be
// called concurrently. Free functions have no shared state.
#ifndef SAEDICT_FORMATS_CODECS_ZIP_H_
#define SAEDICT_FORMATS_CODECS_ZIP_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "formats/codecs/file_io.h"

namespace saedict::formats {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflate
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
};

class ZipReader {
 public:
  // Parses the central directory of `bytes` (the whole archive). `label`
  // (normally the path) names the file in errors, which are INVALID_ARGUMENT.
  static absl::StatusOr<ZipReader> Parse(std::string bytes, std::string label);
  // files.ReadFile + Parse; NOT_FOUND when the file is missing,
  // PERMISSION_DENIED when `files` confines reads and the path leads out.
  static absl::StatusOr<ZipReader> Open(const std::filesystem::path& path,
                                        const FileRoot& files = FileRoot::Unrestricted());

  const std::string& label() const { return label_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }  // directory order
  const ZipEntry* Find(absl::string_view name) const;                // nullptr when absent

  // The entry's uncompressed bytes; INVALID_ARGUMENT naming the archive and
  // entry on a bad local header, truncation, bad deflate data or CRC mismatch.
  absl::StatusOr<std::string> Extract(const ZipEntry& entry) const;

 private:
  ZipReader() = default;
  std::string bytes_;
  std::string label_;
  std::vector<ZipEntry> entries_;
};

// A zip archive of stored entries, in the order given. INVALID_ARGUMENT on a
// duplicate or empty name, or sizes beyond the non-zip64 limits.
absl::StatusOr<std::string> BuildStoredZip(
    const std::vector<std::pair<std::string, absl::string_view>>& entries);

}  // namespace saedict::formats

#endif  // SAEDICT_FORMATS_CODECS_ZIP_H_
