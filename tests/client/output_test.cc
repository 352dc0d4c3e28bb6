// Unit tests of the CLI output helpers (client/commands/output.h).
#include "client/commands/output.h"

#include <algorithm>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::client {
namespace {

using ::saedict::testing::StatusIs;
using ::testing::HasSubstr;

TEST(OutputTest, TableAlignsAndMarksEmptyCells) {
  std::ostringstream out;
  WriteTable(out, {"ID", "NAME", "K"}, {{"a", "", "16"}, {"long-id", "x"}});
  EXPECT_EQ(out.str(),
            "ID       NAME  K\n"
            "a        -     16\n"
            "long-id  x     -\n");
}

TEST(OutputTest, TableMeasuresUtf8AndAnsiByDisplayWidth) {
  EXPECT_EQ(DisplayWidth("abc"), 3u);
  EXPECT_EQ(DisplayWidth("\u21b5x"), 2u);                // ↵ is 3 bytes, 1 column
  EXPECT_EQ(DisplayWidth("\x1b[1;4;31mab\x1b[0m"), 2u);  // escapes take no columns
  std::ostringstream out;
  WriteTable(out, {"T", "N"}, {{"\u21b5\u21b5", "1"}, {"\x1b[1mab\x1b[0m", "2"}});
  EXPECT_EQ(out.str(), "T   N\n\u21b5\u21b5  1\n\x1b[1mab\x1b[0m  2\n");
}

TEST(OutputTest, KeyValuesAlign) {
  std::ostringstream out;
  WriteKeyValues(out, {{"id", "a"}, {"model", ""}, {"d_in", "64"}});
  EXPECT_EQ(out.str(),
            "id:     a\n"
            "model:  -\n"
            "d_in:   64\n");
}

TEST(OutputTest, JsonQuoteEscapes) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
}

TEST(OutputTest, EnumNames) {
  EXPECT_EQ(ArchitectureName(v1::ARCHITECTURE_MATCHING_PURSUIT), "matching_pursuit");
  EXPECT_EQ(ArchitectureName(static_cast<v1::Architecture>(77)), "unknown(77)");
  EXPECT_EQ(SourceFormatName(v1::SOURCE_FORMAT_GEMMA_SCOPE), "gemma_scope");
  EXPECT_EQ(NormalizationName(v1::NORMALIZATION_LAYER_NORM), "layer_norm");
}

TEST(OutputTest, ParseSourceFormat) {
  EXPECT_EQ(ParseSourceFormat("sparsify").value(), v1::SOURCE_FORMAT_SPARSIFY);
  EXPECT_EQ(ParseSourceFormat("auto").value(), v1::SOURCE_FORMAT_AUTO);
  EXPECT_THAT(ParseSourceFormat("SAELens"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("got 'SAELens'")));
}

TEST(OutputTest, DescribeDictionaryShowsMatchingPursuitThreshold) {
  v1::DictionaryInfo d;
  d.set_architecture(v1::ARCHITECTURE_MATCHING_PURSUIT);
  d.set_mp_residual_threshold(0.5f);
  d.set_weight_bytes(3 << 20);
  bool saw_threshold = false;
  for (const auto& [key, value] : DescribeDictionary(d)) {
    if (key == "mp_residual_threshold") saw_threshold = value == "0.5";
    if (key == "weight_bytes") {
      EXPECT_EQ(value, "3.0 MiB (3145728 bytes)");
    }
  }
  EXPECT_TRUE(saw_threshold);
  EXPECT_TRUE(std::ranges::none_of(DescribeDictionary(v1::DictionaryInfo()),
                                   [](const auto& kv) { return kv.first == "loaded_at"; }));
}

TEST(OutputTest, DescribeDictionaryNamesTheFastExactScreen) {
  v1::DictionaryInfo d;
  d.set_fast_exact_ready(true);
  d.set_fast_exact_screen("avx2-int16");
  d.set_fast_exact_bytes(1 << 20);
  std::string fast_exact;
  for (const auto& [key, value] : DescribeDictionary(d)) {
    if (key == "fast_exact") fast_exact = value;
  }
  EXPECT_EQ(fast_exact, "ready, avx2-int16 screen, 1.0 MiB (1048576 bytes)");
  for (const auto& [key, value] : DescribeDictionary(v1::DictionaryInfo())) {
    if (key == "fast_exact") EXPECT_EQ(value, "not available (runs f32)");
  }
}

}  // namespace
}  // namespace saedict::client
