// Gunzip (see gzip.h).
#include "formats/codecs/gzip.h"

#include <zlib.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace saedict::formats {

bool LooksGzipped(absl::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

absl::StatusOr<std::string> Gunzip(absl::string_view compressed, size_t max_bytes,
                                   absl::string_view label) {
  std::string out;
  size_t consumed = 0;
  while (consumed < compressed.size()) {
    z_stream zs{};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
      return absl::InternalError(absl::StrCat(label, ": zlib inflateInit2 failed"));
    }
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data() + consumed));
    zs.avail_in = static_cast<uInt>(std::min<size_t>(compressed.size() - consumed, 1u << 30));
    int rc = Z_OK;
    char buffer[1 << 16];
    while (rc != Z_STREAM_END) {
      zs.next_out = reinterpret_cast<Bytef*>(buffer);
      zs.avail_out = sizeof(buffer);
      rc = inflate(&zs, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END) {
        const std::string why = rc == Z_BUF_ERROR ? "truncated" : (zs.msg ? zs.msg : "damaged");
        inflateEnd(&zs);
        return absl::InvalidArgumentError(
            absl::StrCat(label, ": gzip data is ", why, " (after ", out.size(), " bytes of output)"));
      }
      const size_t produced = sizeof(buffer) - zs.avail_out;
      if (out.size() + produced > max_bytes) {
        inflateEnd(&zs);
        return absl::ResourceExhaustedError(absl::StrCat(
            label, ": decompresses to more than the limit of ", max_bytes, " bytes"));
      }
      out.append(buffer, produced);
      if (rc != Z_STREAM_END && zs.avail_in == 0 && produced == 0) {
        inflateEnd(&zs);
        return absl::InvalidArgumentError(
            absl::StrCat(label, ": gzip data is truncated (after ", out.size(), " bytes of output)"));
      }
    }
    consumed += zs.total_in;
    inflateEnd(&zs);
    // Trailing zero padding after the last member is tolerated, as gunzip does.
    if (consumed < compressed.size() && !LooksGzipped(compressed.substr(consumed))) {
      if (compressed.substr(consumed).find_first_not_of('\0') == absl::string_view::npos) break;
      return absl::InvalidArgumentError(absl::StrCat(
          label, ": ", compressed.size() - consumed, " bytes of trailing garbage after gzip data"));
    }
  }
  return out;
}

}  // namespace saedict::formats
