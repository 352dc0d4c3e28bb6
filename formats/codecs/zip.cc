// Zip reader and stored-entry writer (see zip.h).
#include "formats/codecs/zip.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <functional>
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

// Inflates `in_size` raw-deflate bytes, read in chunks through `read`
// (offset within the compressed data, count, destination), into `out`,
// whose size is the declared uncompressed size.
absl::Status Inflate(uint64_t in_size,
                     const std::function<absl::Status(uint64_t, size_t, char*)>& read,
                     std::string* out) {
  constexpr size_t kInChunk = size_t{4} << 20;
  constexpr size_t kOutChunk = size_t{1} << 30;  // avail_out is 32-bit
  std::string buf(static_cast<size_t>(std::min<uint64_t>(in_size, kInChunk)), '\0');
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  // zlib refuses null buffers even when empty.
  zs.next_in = reinterpret_cast<Bytef*>(buf.data());
  zs.next_out = reinterpret_cast<Bytef*>(out->data());
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return absl::InternalError("inflateInit2 failed");
  uint64_t in_pos = 0;
  size_t out_pos = 0;
  int rc = Z_OK;
  absl::Status read_status;
  while (rc == Z_OK) {
    if (zs.avail_in == 0 && in_pos < in_size) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), in_size - in_pos));
      read_status = read(in_pos, n, buf.data());
      if (!read_status.ok()) break;
      zs.next_in = reinterpret_cast<Bytef*>(buf.data());
      zs.avail_in = static_cast<uInt>(n);
      in_pos += n;
    }
    if (zs.avail_out == 0 && out_pos < out->size()) {
      const size_t n = std::min(kOutChunk, out->size() - out_pos);
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
  if (!read_status.ok()) return read_status;
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
  ZipReader reader;
  reader.size_ = bytes.size();
  reader.bytes_ = std::move(bytes);
  reader.label_ = std::move(label);
  SAEDICT_RETURN_IF_ERROR(reader.ReadDirectory());
  return reader;
}

absl::StatusOr<ZipReader> ZipReader::Open(const std::filesystem::path& path,
                                          const FileRoot& files) {
  SAEDICT_ASSIGN_OR_RETURN(RandomAccessFile file, files.Open(path));
  ZipReader reader;
  reader.size_ = file.size();
  reader.file_.emplace(std::move(file));
  reader.label_ = path.string();
  SAEDICT_RETURN_IF_ERROR(reader.ReadDirectory());
  return reader;
}

absl::Status ZipReader::ReadAt(uint64_t offset, size_t n, char* dst) const {
  if (file_) return file_->ReadAt(offset, n, dst);
  std::memcpy(dst, bytes_.data() + offset, n);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ZipReader::ReadRange(uint64_t offset, size_t n) const {
  std::string out(n, '\0');
  SAEDICT_RETURN_IF_ERROR(ReadAt(offset, n, out.data()));
  return out;
}

absl::Status ZipReader::ReadDirectory() {
  auto bad = [this](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(label_, ": ", what));
  };
  const uint64_t size = size_;
  if (size < kEndSize) return bad("not a zip archive (too short)");
  // The end record is the last signature whose comment reaches the file end;
  // it lies in the last kEndSize + 0xffff bytes.
  const uint64_t tail_start = size > kEndSize + 0xffff ? size - kEndSize - 0xffff : 0;
  SAEDICT_ASSIGN_OR_RETURN(const std::string tail,
                           ReadRange(tail_start, static_cast<size_t>(size - tail_start)));
  const Cursor t(tail);
  uint64_t end = std::numeric_limits<uint64_t>::max();  // within tail
  for (uint64_t p = tail.size() - kEndSize + 1; p-- > 0;) {
    if (t.Get<uint32_t>(p) == kEndSig && p + kEndSize + t.Get<uint16_t>(p + 20) == tail.size()) {
      end = p;
      break;
    }
  }
  if (end == std::numeric_limits<uint64_t>::max()) {
    return bad("not a zip archive (no end-of-central-directory record)");
  }
  if (t.Get<uint16_t>(end + 4) != 0 || t.Get<uint16_t>(end + 6) != 0) {
    return bad("multi-disk zip archives are not supported");
  }
  uint64_t count = t.Get<uint16_t>(end + 10);
  uint64_t cd_size = t.Get<uint32_t>(end + 12);
  uint64_t cd_offset = t.Get<uint32_t>(end + 16);
  if (count == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff) {
    const uint64_t end_abs = tail_start + end;
    if (end_abs < 20) return bad("zip64 end record locator missing");
    SAEDICT_ASSIGN_OR_RETURN(const std::string loc, ReadRange(end_abs - 20, 20));
    const Cursor l(loc);
    if (l.Get<uint32_t>(0) != kEnd64LocatorSig) return bad("zip64 end record locator missing");
    const uint64_t e64 = l.Get<uint64_t>(8);
    if (e64 > size || size - e64 < 56) return bad("zip64 end record missing or out of range");
    SAEDICT_ASSIGN_OR_RETURN(const std::string rec, ReadRange(e64, 56));
    const Cursor r(rec);
    if (r.Get<uint32_t>(0) != kEnd64Sig) return bad("zip64 end record missing or out of range");
    count = r.Get<uint64_t>(32);
    cd_size = r.Get<uint64_t>(40);
    cd_offset = r.Get<uint64_t>(48);
  }
  if (cd_offset > size || cd_size > size - cd_offset) {
    return bad(absl::StrCat("central directory [", cd_offset, ", +", cd_size, ") lies outside the ",
                            size, "-byte file"));
  }
  if (count > cd_size / kCentralSize) return bad("entry count exceeds the central directory");
  SAEDICT_ASSIGN_OR_RETURN(const std::string cd,
                           ReadRange(cd_offset, static_cast<size_t>(cd_size)));
  const Cursor c(cd);
  std::set<std::string> names;
  uint64_t p = 0;  // within cd
  for (uint64_t i = 0; i < count; ++i) {
    if (cd_size - p < kCentralSize || c.Get<uint32_t>(p) != kCentralSig) {
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
    if (cd_size - p - kCentralSize < var_len) {
      return bad(absl::StrCat("central directory entry ", i, " overruns the directory"));
    }
    e.name.assign(cd, p + kCentralSize, name_len);
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
    entries_.push_back(std::move(e));
    p += kCentralSize + var_len;
  }
  return absl::OkStatus();
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
  auto has = [this](uint64_t pos, uint64_t n) { return pos <= size_ && n <= size_ - pos; };
  const uint64_t h = e.local_header_offset;
  if (!has(h, kLocalSize)) return bad(absl::StrCat("no local header at offset ", h));
  absl::StatusOr<std::string> header = ReadRange(h, kLocalSize);
  if (!header.ok()) return bad(header.status().message());
  const Cursor lh(*header);
  if (lh.Get<uint32_t>(0) != kLocalSig) return bad(absl::StrCat("no local header at offset ", h));
  const uint64_t data = h + kLocalSize + lh.Get<uint16_t>(26) + lh.Get<uint16_t>(28);
  if (!has(data, e.compressed_size)) {
    return bad(absl::StrCat("data [", data, ", +", e.compressed_size, ") runs past the ", size_,
                            "-byte file"));
  }
  std::string out;
  if (e.method == 0) {
    if (e.compressed_size != e.uncompressed_size) {
      return bad(absl::StrCat("stored entry sizes differ: ", e.compressed_size, " vs ",
                              e.uncompressed_size));
    }
    out.resize(static_cast<size_t>(e.uncompressed_size));
    absl::Status s = ReadAt(data, out.size(), out.data());
    if (!s.ok()) return bad(s.message());
  } else {
    if (e.uncompressed_size / kMaxDeflateRatio > e.compressed_size + 64) {
      return bad(absl::StrCat("declared size ", e.uncompressed_size, " is impossible for ",
                              e.compressed_size, " deflate bytes"));
    }
    out.resize(static_cast<size_t>(e.uncompressed_size));
    absl::Status s = Inflate(
        e.compressed_size,
        [&](uint64_t off, size_t n, char* dst) { return ReadAt(data + off, n, dst); }, &out);
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
    const uint16_t name_size = static_cast<uint16_t>(name.size());  // (clang 14: no binding captures)
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
      Put16(s, name_size);
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
