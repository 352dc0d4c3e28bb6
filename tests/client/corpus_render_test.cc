// Unit tests of the corpus commands' helpers: token / context / histogram
// rendering, the progress line, the ingest input readers and batch packing.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/ingest_input.h"
#include "client/commands/progress.h"
#include "client/commands/text_render.h"
#include "formats/codecs/npy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::client {
namespace {

using ::saedict::testing::IsOk;
using ::saedict::testing::ScratchDir;
using ::saedict::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(VisibleTokenTest, MakesWhitespaceAndControlsVisible) {
  EXPECT_EQ(VisibleToken(" the"), " the");
  EXPECT_EQ(VisibleToken("a\nb"), "a\u21b5b");
  EXPECT_EQ(VisibleToken("\t\r"), "\u21e5\u240d");
  EXPECT_EQ(VisibleToken(std::string("\x01\x1b\x7f", 3)), "\u2401\u241b\u2421");
  EXPECT_EQ(VisibleToken("caf\xc3\xa9"), "caf\xc3\xa9");  // UTF-8 passes through
}

v1::Example MakeExample(const std::vector<std::pair<int, std::string>>& tokens, int peak) {
  v1::Example e;
  for (const auto& [id, s] : tokens) {
    v1::ContextToken* t = e.add_context();
    t->set_token_id(id);
    t->set_token(s);
  }
  e.set_peak_index(peak);
  return e;
}

TEST(RenderContextTest, HighlightsThePeakToken) {
  const v1::Example e = MakeExample({{1, "The"}, {2, " cat"}, {3, "\n"}, {4, " sat"}}, 1);
  EXPECT_EQ(RenderContext(e, false), "The[[ cat]]\u21b5 sat");
  EXPECT_EQ(RenderContext(e, true), "The\x1b[1;4;31m cat\x1b[0m\u21b5 sat");
  const v1::Example newline_peak = MakeExample({{1, "a"}, {3, "\n"}}, 1);
  EXPECT_EQ(RenderContext(newline_peak, false), "a[[\u21b5]]");
}

TEST(RenderContextTest, IdsWhenTheCorpusHasNoStrings) {
  EXPECT_EQ(RenderContext(MakeExample({{7, ""}, {8, ""}, {9, ""}}, 2), false), "7 8 [[9]]");
  // A token without a string among tokens with strings shows its id.
  EXPECT_EQ(RenderContext(MakeExample({{7, "x"}, {8, ""}}, 0), false), "[[x]]<8>");
  // A peak index outside the context highlights nothing.
  EXPECT_EQ(RenderContext(MakeExample({{7, ""}}, 3), false), "7");
}

TEST(RenderDocumentTextTest, KeepsLayoutAndHighlights) {
  v1::Document doc;
  for (int id : {5, 6, 7}) doc.add_token_ids(id);
  EXPECT_EQ(RenderDocumentText(doc, std::nullopt, false), "5 6 7");
  for (const char* s : {"Once", "\n", "\tupon"}) doc.add_token_strings(s);
  EXPECT_EQ(RenderDocumentText(doc, std::nullopt, false), "Once\n\tupon");
  EXPECT_EQ(RenderDocumentText(doc, 1, false), "Once[[\u21b5]]\tupon");
}

TEST(RenderHistogramTest, AlignsColumnsAndScalesBars) {
  google::protobuf::RepeatedPtrField<v1::HistogramBin> bins;
  for (auto [lo, hi, n] :
       {std::tuple{0.5f, 0.5946f, 3}, {1.0f, 1.189f, 12}, {8.0f, 9.514f, 1000}}) {
    v1::HistogramBin* b = bins.Add();
    b->set_lower(lo);
    b->set_upper(hi);
    b->set_count(n);
  }
  const std::vector<std::string> lines = RenderHistogram(bins, 10);
  auto bar = [](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += "\u2588";
    return s;
  };
  EXPECT_THAT(lines,
              ElementsAre("[0.5, 0.5946)      3  " + bar(1),  // at least one block
                          "[1, 1.189)        12  " + bar(1), "[8, 9.514)     1,000  " + bar(10)));
  EXPECT_TRUE(RenderHistogram({}).empty());
}

TEST(ProgressBarTest, LinesWithRateAndEta) {
  absl::Time now = absl::UnixEpoch();
  ProgressOptions options;
  options.label = "ingest";
  options.unit = "tokens";
  options.now = [&] { return now; };
  std::ostringstream out;
  {
    ProgressBar bar(out, 10000, options);
    now += absl::Seconds(2);
    bar.Update(4000);
    now += absl::Seconds(3);
    bar.Update(10000);
  }
  EXPECT_EQ(out.str(),
            "ingest  4,000/10,000 tokens  40.0%  2,000 tokens/s  ETA 3s\n"
            "ingest  10,000/10,000 tokens  100.0%  2,000 tokens/s\n");

  options.terminal = true;
  options.bar_width = 10;
  std::ostringstream tty;
  {
    ProgressBar bar(tty, 100, options);
    now += absl::Seconds(1);
    bar.Update(25);
  }
  EXPECT_EQ(tty.str(), "\ringest [##........]  25/100 tokens  25.0%  25 tokens/s  ETA 3s\x1b[K\n");
}

TEST(ProgressBarTest, FormatEta) {
  EXPECT_EQ(FormatEta(absl::Seconds(4.6)), "5s");
  EXPECT_EQ(FormatEta(absl::Seconds(187)), "3:07");
  EXPECT_EQ(FormatEta(absl::Seconds(3723)), "1:02:03");
  EXPECT_EQ(FormatEta(absl::InfiniteDuration()), "?");
}

TEST(CliUtilTest, NamesCountsAndInputErrors) {
  EXPECT_THAT(CheckName("--corpus", "web-text_v1.2"), IsOk());
  // Declared outside the loop: a temporary in a range-for's initializer is
  // gone before the body runs (before C++23; ASan caught it).
  const std::string too_long(129, 'a');
  for (const char* bad : {"", "a b", "x/y", "..", too_long.c_str()}) {
    const absl::Status s = CheckName("--corpus", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(IsInputError(s)) << bad;
  }
  EXPECT_EQ(FormatCount(0), "0");
  EXPECT_EQ(FormatCount(999), "999");
  EXPECT_EQ(FormatCount(1234567), "1,234,567");
  EXPECT_EQ(FormatCount(-1000), "-1,000");
  EXPECT_FALSE(IsInputError(absl::InvalidArgumentError("x")));
  EXPECT_TRUE(InputError(absl::OkStatus()).ok());
  EXPECT_THAT(ParseUint64Arg("DOC_ID", "-1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("DOC_ID")));
}

class IngestInputTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_.path() / name).string();
    std::ofstream(path) << text;
    return path;
  }
  ScratchDir dir_;
};

TEST_F(IngestInputTest, TokenIds) {
  const std::string p32 = (dir_.path() / "t32.npy").string();
  ASSERT_TRUE(
      formats::WriteNpyFile(p32, formats::NpyFromInt32({3}, std::vector<int32_t>{5, 0, 7})).ok());
  EXPECT_THAT(ReadTokenIds(p32).value(), ElementsAre(5, 0, 7));
  const std::string p64 = (dir_.path() / "t64.npy").string();
  ASSERT_TRUE(
      formats::WriteNpyFile(p64, formats::NpyFromInt64({2}, std::vector<int64_t>{1, 50257})).ok());
  EXPECT_THAT(ReadTokenIds(p64).value(), ElementsAre(1, 50257));

  ASSERT_TRUE(
      formats::WriteNpyFile(p64, formats::NpyFromInt64({2}, std::vector<int64_t>{1, -2})).ok());
  EXPECT_THAT(ReadTokenIds(p64),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("token 1 has id -2")));
  ASSERT_TRUE(
      formats::WriteNpyFile(p64, formats::NpyFromInt64({1, 2}, std::vector<int64_t>{1, 2})).ok());
  EXPECT_THAT(ReadTokenIds(p64), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("must have shape [T], got [1, 2]")));
  ASSERT_TRUE(
      formats::WriteNpyFile(p64, formats::NpyFromFloat32({2}, std::vector<float>{1, 2})).ok());
  EXPECT_THAT(ReadTokenIds(p64),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dtype <f4")));
}

TEST_F(IngestInputTest, DocsJsonl) {
  const std::string ok = Write("ok.jsonl",
                               "{\"doc_id\": 7, \"start\": 0, \"length\": 3, \"text\": \"abc\"}\n"
                               "\n"
                               "{\"doc_id\": 2, \"start\": 3, \"length\": 2}\n");
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<DocSpan> docs, ReadDocsJsonl(ok, 5));
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].doc_id, 7u);
  EXPECT_EQ(docs[1].start, 3);
  EXPECT_EQ(docs[1].length, 2);

  EXPECT_THAT(ReadDocsJsonl(ok, 4),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ok + ":3: document 2 covers tokens [3, 5) but the token file has 4 tokens"));
  struct Case {
    std::string line;
    std::string message;
  };
  for (const Case& c : {
           Case{"{\"doc_id\": 1, \"start\": 0}", ":1: key 'length' is missing"},
           Case{"{\"doc_id\": -1, \"start\": 0, \"length\": 1}", ":1: key 'doc_id' must be"},
           Case{"{\"doc_id\": 1.5, \"start\": 0, \"length\": 1}", ":1: key 'doc_id' must be"},
           Case{"{\"doc_id\": 1, \"start\": 0, \"length\": 0}", "has length 0"},
           Case{"[1, 2]", ":1: bad JSON"},
           Case{"{\"doc_id\": 1, \"start\": 0, \"length\": 1}\n"
                "{\"doc_id\": 1, \"start\": 1, \"length\": 1}",
                ":2: doc_id 1 is already used on line 1"},
       }) {
    EXPECT_THAT(ReadDocsJsonl(Write("bad.jsonl", c.line), 10),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.line;
  }
  EXPECT_THAT(ReadDocsJsonl(Write("empty.jsonl", "\n"), 10),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no documents")));
  EXPECT_EQ(ReadDocsJsonl(dir_.path() / "missing.jsonl", 10).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(IngestInputTest, VocabJson) {
  EXPECT_THAT(ReadVocabJson(Write("v.json", " [\"a\", \" b\", \"\\n\"]")).value(),
              ElementsAre("a", " b", "\n"));
  EXPECT_THAT(ReadVocabJson(Write("v.json", "{\"a\": 1}")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("want a JSON list")));
  EXPECT_THAT(
      ReadVocabJson(Write("v.json", "[\"a\", 3]")),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("entry 1 must be a string, found 3")));

  const std::vector<int32_t> tokens = {0, 1, 2, 9};
  const std::vector<DocSpan> docs = {{5, 0, 2}, {6, 2, 2}};
  EXPECT_THAT(CheckTokensInVocab(tokens, docs, 10, "v.json"), IsOk());
  EXPECT_THAT(CheckTokensInVocab(tokens, docs, 3, "v.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "document 6 token 1 (token 3 of the file) has id 9 but v.json has 3 "
                       "entries"));
}

TEST(PlanBatchesTest, PacksWholeDocuments) {
  auto plan = [](std::vector<int64_t> lengths, int64_t batch) {
    std::vector<DocSpan> docs;
    for (int64_t n : lengths) docs.push_back(DocSpan{docs.size(), 0, n});
    return PlanBatches(docs, batch);
  };
  EXPECT_THAT(plan({3, 2, 4, 1, 1, 1}, 5), ElementsAre(Pair(0, 2), Pair(2, 4), Pair(4, 6)));
  // A document longer than a batch goes alone.
  EXPECT_THAT(plan({2, 9, 2}, 4), ElementsAre(Pair(0, 1), Pair(1, 2), Pair(2, 3)));
  EXPECT_THAT(plan({1, 1}, 100), ElementsAre(Pair(0, 2)));
  EXPECT_TRUE(plan({}, 4).empty());
}

}  // namespace
}  // namespace saedict::client
