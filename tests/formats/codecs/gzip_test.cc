// Gunzip (formats/codecs/gzip.h): round trips (one member, concatenated
// members, empty input), the output cap, trailing garbage vs zero padding,
// and every truncation and every single-bit flip of a real gzip stream
// answered with an error (or, for a flip the format cannot see, the right
// bytes) — never a crash or a silent wrong answer.
#include "formats/codecs/gzip.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/gzip_writer.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::formats {
namespace {

using ::saedict::testing::StatusIs;
using ::testing::HasSubstr;

std::string Gzip(const std::string& in) { return testing::GzipForTest(in); }

std::string Text() {
  std::string s;
  for (int i = 0; i < 2000; ++i) s += "{\"index\": \"" + std::to_string(i) + "\", \"description\": \"x\"}\n";
  return s;
}

TEST(GzipTest, RoundTripsOneAndSeveralMembers) {
  const std::string text = Text();
  const std::string gz = Gzip(text);
  EXPECT_TRUE(LooksGzipped(gz));
  EXPECT_FALSE(LooksGzipped(text));
  EXPECT_FALSE(LooksGzipped("\x1f"));
  auto out = Gunzip(gz, 1 << 20, "f");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, text);
  auto two = Gunzip(gz + Gzip("tail\n"), 1 << 20, "f");
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(*two, text + "tail\n");
  auto padded = Gunzip(gz + std::string(16, '\0'), 1 << 20, "f");
  ASSERT_TRUE(padded.ok()) << padded.status();
  EXPECT_EQ(*padded, text);
  auto empty = Gunzip("", 10, "f");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST(GzipTest, CapsTheOutputAndRefusesGarbage) {
  const std::string gz = Gzip(std::string(1 << 20, 'a'));  // 1 MiB of one byte: ~1 KiB
  EXPECT_THAT(Gunzip(gz, 1000, "bomb.gz").status(),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("bomb.gz")));
  EXPECT_THAT(Gunzip(Gzip("x") + "garbage", 100, "g.gz").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("trailing garbage")));
  EXPECT_THAT(Gunzip("\x1f\x8b not really", 100, "h.gz").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("h.gz")));
}

TEST(GzipTest, EveryTruncationAndBitFlipIsCaught) {
  const std::string text = Text().substr(0, 3000);
  const std::string gz = Gzip(text);
  for (size_t n = 1; n < gz.size(); ++n) {
    auto out = Gunzip(gz.substr(0, n), 1 << 20, "t");
    EXPECT_FALSE(out.ok()) << "truncated to " << n << " of " << gz.size() << " bytes";
  }
  int wrong = 0;
  for (size_t i = 0; i < gz.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = gz;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      auto out = Gunzip(bad, 1 << 20, "b");
      // Header flags, mtime and OS bytes are not covered by the CRC: such a
      // flip may still give the right text; anything else must be an error.
      if (out.ok() && *out != text) ++wrong;
    }
  }
  EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace saedict::formats
