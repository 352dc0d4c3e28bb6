// Test-only: builds zip archives independently of formats/codecs/zip.cc, with
// stored or deflate (zlib) entries, numpy-style zip64 extra fields and zip64
// end records, so the reader can be tested against archives it did not write.
#ifndef SAEDICT_TESTS_FORMATS_CODECS_ZIP_BUILDER_H_
#define SAEDICT_TESTS_FORMATS_CODECS_ZIP_BUILDER_H_

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace saedict::formats::test {

inline std::string RawDeflate(const std::string& in) {
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, in.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

inline void Put16(std::string* s, uint16_t v) { s->append(reinterpret_cast<const char*>(&v), 2); }
inline void Put32(std::string* s, uint32_t v) { s->append(reinterpret_cast<const char*>(&v), 4); }
inline void Put64(std::string* s, uint64_t v) { s->append(reinterpret_cast<const char*>(&v), 8); }

struct TestEntry {
  std::string name;
  std::string data;
  bool deflate = false;
  bool zip64 = false;  // sizes/offset in zip64 extra fields, as numpy writes
  uint16_t flags = 0;
  int method = -1;  // override the method field
};

// A zip archive built independently of the code under test.
inline std::string BuildZip(const std::vector<TestEntry>& entries, bool zip64_end = false) {
  std::string out, cd;
  for (const TestEntry& e : entries) {
    const std::string payload = e.deflate ? RawDeflate(e.data) : e.data;
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(e.data.data()), static_cast<uInt>(e.data.size())));
    const uint16_t method = e.method >= 0 ? e.method : (e.deflate ? 8 : 0);
    const uint64_t offset = out.size();
    const uint32_t csize = e.zip64 ? 0xffffffffu : static_cast<uint32_t>(payload.size());
    const uint32_t usize = e.zip64 ? 0xffffffffu : static_cast<uint32_t>(e.data.size());
    Put32(&out, 0x04034b50);
    Put16(&out, 45);
    Put16(&out, e.flags);
    Put16(&out, method);
    Put32(&out, 0);
    Put32(&out, crc);
    Put32(&out, csize);
    Put32(&out, usize);
    Put16(&out, static_cast<uint16_t>(e.name.size()));
    Put16(&out, e.zip64 ? 20 : 0);
    out += e.name;
    if (e.zip64) {
      Put16(&out, 1);
      Put16(&out, 16);
      Put64(&out, e.data.size());
      Put64(&out, payload.size());
    }
    out += payload;
    Put32(&cd, 0x02014b50);
    Put16(&cd, 45);
    Put16(&cd, 45);
    Put16(&cd, e.flags);
    Put16(&cd, method);
    Put32(&cd, 0);
    Put32(&cd, crc);
    Put32(&cd, csize);
    Put32(&cd, usize);
    Put16(&cd, static_cast<uint16_t>(e.name.size()));
    Put16(&cd, e.zip64 ? 28 : 0);
    Put16(&cd, 0);
    Put16(&cd, 0);
    Put16(&cd, 0);
    Put32(&cd, 0);
    Put32(&cd, e.zip64 ? 0xffffffffu : static_cast<uint32_t>(offset));
    cd += e.name;
    if (e.zip64) {
      Put16(&cd, 1);
      Put16(&cd, 24);
      Put64(&cd, e.data.size());
      Put64(&cd, payload.size());
      Put64(&cd, offset);
    }
  }
  const uint64_t cd_offset = out.size();
  out += cd;
  if (zip64_end) {
    const uint64_t e64 = out.size();
    Put32(&out, 0x06064b50);
    Put64(&out, 44);
    Put16(&out, 45);
    Put16(&out, 45);
    Put32(&out, 0);
    Put32(&out, 0);
    Put64(&out, entries.size());
    Put64(&out, entries.size());
    Put64(&out, cd.size());
    Put64(&out, cd_offset);
    Put32(&out, 0x07064b50);
    Put32(&out, 0);
    Put64(&out, e64);
    Put32(&out, 1);
  }
  Put32(&out, 0x06054b50);
  Put16(&out, 0);
  Put16(&out, 0);
  Put16(&out, zip64_end ? 0xffff : static_cast<uint16_t>(entries.size()));
  Put16(&out, zip64_end ? 0xffff : static_cast<uint16_t>(entries.size()));
  Put32(&out, zip64_end ? 0xffffffffu : static_cast<uint32_t>(cd.size()));
  Put32(&out, zip64_end ? 0xffffffffu : static_cast<uint32_t>(cd_offset));
  Put16(&out, 0);
  return out;
}

}  // namespace saedict::formats::test

#endif  // SAEDICT_TESTS_FORMATS_CODECS_ZIP_BUILDER_H_
