// GzipForTest: a gzip stream (one member, zlib level 6) of `in`, for tests
// that feed compressed files to the code under test. Needs ZLIB::ZLIB.
// Thread safety: pure function.
#ifndef SAEDICT_TESTS_TEST_UTIL_GZIP_WRITER_H_
#define SAEDICT_TESTS_TEST_UTIL_GZIP_WRITER_H_

#include <zlib.h>

#include <string>

#include "gtest/gtest.h"

namespace saedict::testing {

inline std::string GzipForTest(const std::string& in) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_TEST_UTIL_GZIP_WRITER_H_
