// Zip reader and stored-entry writer (see zip.h).
#include "formats/codecs/zip.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "formats/codecs/file_io.h"
#include "util/status_macros.h"

namespace saedict::formats {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kEnd64LocatorSig = 0x07064b50;
constexpr uint32_t kEnd64Sig = 0x06064b50;
constexpr size_t kEndSize = 22;
constexpr size_t kCentralSize = 46;
constexpr size_t kLocalSize = 30;
constexpr uint64_t kMaxDeflateRatio = 1032;  // deflate's best case is ~1032:1

// Bounds-checked little-endian reads from the archive bytes.
class Cursor {
 public:
  Cursor(absl::string_view bytes) : b_(bytes) {}
  bool Has(uint64_t pos, uint64_t n) const { return pos <= b_.size() && n <= b_.size() - pos; }
  template <typename T>
  T Get(uint64_t pos) const {  // REQUIRES: Has(pos, sizeof(T))
    T v;
    std::memcpy(&v, b_.data() + pos, sizeof(T));
    return v;
  }

 private:
  absl::string_view b_;
};

void Put16(std::string* out, uint16_t v) { out->append(reinterpret_cast<const char*>(&v), 2); }
void Put32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }

uint32_t Crc32(absl::string_view data) {
  return static_cast<uint32_t>(
      crc32_z(0, reinterpret_cast<const Bytef*>(data.data()), data.size()));
}

absl::Status Inflate(absl::string_view in, std::string* out) {
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.next_out = reinterpret_cast<Bytef*>(out->data());
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return absl::InternalError("inflateInit2 failed");
  constexpr size_t kChunk = 1u << 30;
  size_t in_pos = 0, out_pos = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (zs.avail_in == 0 && in_pos < in.size()) {
      const size_t n = std::min(kChunk, in.size() - in_pos);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + in_pos));
      zs.avail_in = static_cast<uInt>(n);
      in_pos += n;
    }
    if (zs.avail_out == 0 && out_pos < out->size()) {
      const size_t n = std::min(kChunk, out->size() - out_pos);
      zs.next_out = reinterpret_cast<Bytef*>(out->data() + out_pos);
      zs.avail_out = static_cast<uInt>(n);
      out_pos += n;
    }
    const bool stalled = zs.avail_in == 0 || zs.avail_out == 0;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_BUF_ERROR && stalled) break;  // input exhausted or output full
  }
  const uint64_t total = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    return absl::InvalidArgumentError(
        rc == Z_BUF_ERROR || rc == Z_OK
            ? "deflate data is truncated or larger than the declared size"
            : absl::StrCat("bad deflate data (zlib error ", rc, ")"));
  }
  if (total != out->size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("inflated to ", total, " bytes, declared ", out->size()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ZipReader> ZipReader::Parse(std::string bytes, std::string label) {
  auto bad = [&label](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": ", what));
  };
  const Cursor c(bytes);
  const uint64_t size = bytes.size();
  if (size < kEndSize) return bad("not a zip archive (too short)");
  // The end record is the last signature whose comment reaches the file end.
  uint64_t end = std::numeric_limits<uint64_t>::max();
  const uint64_t lowest = size > kEndSize + 0xffff ? size - kEndSize - 0xffff : 0;
  for (uint64_t p = size - kEndSize + 1; p-- > lowest;) {
    if (c.Get<uint32_t>(p) == kEndSig && p + kEndSize + c.Get<uint16_t>(p + 20) == size) {
      end = p;
      break;
    }
  }
  if (end == std::numeric_limits<uint64_t>::max()) {
    return bad("not a zip archive (no end-of-central-directory record)");
  }
  if (c.Get<uint16_t>(end + 4) != 0 || c.Get<uint16_t>(end + 6) != 0) {
    return bad("multi-disk zip archives are not supported");
  }
  uint64_t count = c.Get<uint16_t>(end + 10);
  uint64_t cd_size = c.Get<uint32_t>(end + 12);
  uint64_t cd_offset = c.Get<uint32_t>(end + 16);
  if (count == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff) {
    const uint64_t loc = end >= 20 ? end - 20 : size;
    if (!c.Has(loc, 20) || c.Get<uint32_t>(loc) != kEnd64LocatorSig) {
      return bad("zip64 end record locator missing");
    }
    const uint64_t e64 = c.Get<uint64_t>(loc + 8);
    if (!c.Has(e64, 56) || c.Get<uint32_t>(e64) != kEnd64Sig) {
      return bad("zip64 end record missing or out of range");
    }
    count = c.Get<uint64_t>(e64 + 32);
    cd_size = c.Get<uint64_t>(e64 + 40);
    cd_offset = c.Get<uint64_t>(e64 + 48);
  }
  if (!c.Has(cd_offset, cd_size)) {
    return bad(absl::StrCat("central directory [", cd_offset, ", +", cd_size, ") lies outside the ",
                            size, "-byte file"));
  }
  if (count > cd_size / kCentralSize) return bad("entry count exceeds the central directory");
  ZipReader reader;
  std::set<std::string> names;
  uint64_t p = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (p > cd_end || cd_end - p < kCentralSize || c.Get<uint32_t>(p) != kCentralSig) {
      return bad(absl::StrCat("bad central directory entry ", i));
    }
    const uint16_t flags = c.Get<uint16_t>(p + 8);
    ZipEntry e;
    e.method = c.Get<uint16_t>(p + 10);
    e.crc32 = c.Get<uint32_t>(p + 16);
    e.compressed_size = c.Get<uint32_t>(p + 20);
    e.uncompressed_size = c.Get<uint32_t>(p + 24);
    const uint16_t name_len = c.Get<uint16_t>(p + 28);
    const uint16_t extra_len = c.Get<uint16_t>(p + 30);
    const uint16_t comment_len = c.Get<uint16_t>(p + 32);
    e.local_header_offset = c.Get<uint32_t>(p + 42);
    const uint64_t var_len = uint64_t{name_len} + extra_len + comment_len;
    if (cd_end - p - kCentralSize < var_len) {
      return bad(absl::StrCat("central directory entry ", i, " overruns the directory"));
    }
    e.name.assign(bytes, p + kCentralSize, name_len);
    const std::string where = absl::StrCat("entry '", e.name, "'");
    // zip64 extra field: the 8-byte values replace the saturated 32-bit ones.
    uint64_t x = p + kCentralSize + name_len;
    const uint64_t x_end = x + extra_len;
    while (x + 4 <= x_end) {
      const uint16_t id = c.Get<uint16_t>(x), len = c.Get<uint16_t>(x + 2);
      if (len > x_end - x - 4) return bad(absl::StrCat(where, ": bad extra field"));
      if (id == 0x0001) {
        uint64_t q = x + 4;
        for (uint64_t* field : {&e.uncompressed_size, &e.compressed_size, &e.local_header_offset}) {
          if (*field != 0xffffffff) continue;
          if (q + 8 > x + 4 + len) return bad(absl::StrCat(where, ": short zip64 field"));
          *field = c.Get<uint64_t>(q);
          q += 8;
        }
      }
      x += 4 + len;
    }
    if (flags & 0x1) return bad(absl::StrCat(where, " is encrypted"));
    if (e.method != 0 && e.method != 8) {
      return bad(absl::StrCat(where, ": compression method ", e.method,
                              " (only stored and deflate are supported)"));
    }
    if (!names.insert(e.name).second) return bad(absl::StrCat("duplicate ", where));
    reader.entries_.push_back(std::move(e));
    p += kCentralSize + var_len;
  }
  reader.bytes_ = std::move(bytes);
  reader.label_ = std::move(label);
  return reader;
}

absl::StatusOr<ZipReader> ZipReader::Open(const std::filesystem::path& path,
                                          const FileRoot& files) {
  SAEDICT_ASSIGN_OR_RETURN(std::string bytes, files.ReadFile(path));
  return Parse(std::move(bytes), path.string());
}

const ZipEntry* ZipReader::Find(absl::string_view name) const {
  for (const auto& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

absl::StatusOr<std::string> ZipReader::Extract(const ZipEntry& e) const {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(label_, ": entry '", e.name, "': ", what));
  };
  const Cursor c(bytes_);
  const uint64_t h = e.local_header_offset;
  if (!c.Has(h, kLocalSize) || c.Get<uint32_t>(h) != kLocalSig) {
    return bad(absl::StrCat("no local header at offset ", h));
  }
  const uint64_t data = h + kLocalSize + c.Get<uint16_t>(h + 26) + c.Get<uint16_t>(h + 28);
  if (!c.Has(data, e.compressed_size)) {
    return bad(absl::StrCat("data [", data, ", +", e.compressed_size, ") runs past the ",
                            bytes_.size(), "-byte file"));
  }
  const absl::string_view in = absl::string_view(bytes_).substr(data, e.compressed_size);
  std::string out;
  if (e.method == 0) {
    if (e.compressed_size != e.uncompressed_size) {
      return bad(absl::StrCat("stored entry sizes differ: ", e.compressed_size, " vs ",
                              e.uncompressed_size));
    }
    out.assign(in.data(), in.size());
  } else {
    if (e.uncompressed_size / kMaxDeflateRatio > e.compressed_size + 64) {
      return bad(absl::StrCat("declared size ", e.uncompressed_size, " is impossible for ",
                              e.compressed_size, " deflate bytes"));
    }
    out.resize(e.uncompressed_size);
    absl::Status s = Inflate(in, &out);
    if (!s.ok()) return bad(s.message());
  }
  if (Crc32(out) != e.crc32) return bad("CRC-32 mismatch");
  return out;
}

absl::StatusOr<std::string> BuildStoredZip(
    const std::vector<std::pair<std::string, absl::string_view>>& entries) {
  if (entries.size() >= 0xffff) {
    return absl::InvalidArgumentError("zip writer: too many entries (no zip64 support)");
  }
  std::string out, central;
  std::set<absl::string_view> names;
  for (const auto& [name, data] : entries) {
    if (name.empty() || name.size() > 0xffff || !names.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("zip writer: empty, overlong or duplicate entry name '", name, "'"));
    }
    if (uint64_t{out.size()} + data.size() + 2 * name.size() + 1024 >= 0xffffffffu) {
      return absl::InvalidArgumentError(
          absl::StrCat("zip writer: entry '", name, "' would pass 4 GiB (no zip64 support)"));
    }
    const uint32_t crc = Crc32(data);
    const uint32_t offset = static_cast<uint32_t>(out.size());
    const uint32_t size = static_cast<uint32_t>(data.size());
    // Fixed timestamp (1980-01-01 00:00) keeps archives reproducible.
    auto common = [&](std::string* s) {
      Put16(s, 20);    // version needed: 2.0
      Put16(s, 0);     // flags
      Put16(s, 0);     // method: stored
      Put16(s, 0);     // time
      Put16(s, 0x21);  // date
      Put32(s, crc);
      Put32(s, size);
      Put32(s, size);
      Put16(s, static_cast<uint16_t>(name.size()));
      Put16(s, 0);  // extra length
    };
    Put32(&out, kLocalSig);
    common(&out);
    out += name;
    out.append(data.data(), data.size());
    Put32(&central, kCentralSig);
    Put16(&central, 20);  // version made by
    common(&central);
    Put16(&central, 0);  // comment length
    Put16(&central, 0);  // disk
    Put16(&central, 0);  // internal attributes
    Put32(&central, 0);  // external attributes
    Put32(&central, offset);
    central += name;
  }
  const uint32_t cd_offset = static_cast<uint32_t>(out.size());
  out += central;
  Put32(&out, kEndSig);
  Put16(&out, 0);
  Put16(&out, 0);
  Put16(&out, static_cast<uint16_t>(entries.size()));
  Put16(&out, static_cast<uint16_t>(entries.size()));
  Put32(&out, static_cast<uint32_t>(central.size()));
  Put32(&out, cd_offset);
  Put16(&out, 0);
  return out;
}

}  // namespace saedict::formats
