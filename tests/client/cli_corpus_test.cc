// End-to-end tests of the corpus commands (ingest, feature, doc,
// checkpoint) through RunCli against the real service core on a real gRPC
// server (identity test SAE d4: topk k = 2 of relu(x); latents in the
// in-memory store): what is sent (batching, dtypes, strings; recorded by the
// server's RequestLog), what is printed (summary, progress, histogram,
// highlighted contexts, --json), and exit codes (bad input 2 with nothing
// sent, server errors 1). A failing stream comes from FaultyIngestService.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/substitute.h"
#include "client/cli.h"
#include "client/commands/output.h"
#include "engine/encoder.h"
#include "formats/codecs/npy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli_test_util.h"
#include "tests/client/core_test_server.h"
#include "tests/client/misbehaving_services.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::client {
namespace {

using formats::NpyArray;
using formats::NpyDType;
using ::saedict::testing::CliResult;
using ::saedict::testing::CoreTestServer;
using ::saedict::testing::FaultyIngestService;
using ::saedict::testing::IngestFault;
using ::saedict::testing::IsOk;
using ::saedict::testing::LocalGrpcServer;
using ::saedict::testing::RunCliCaptured;
using ::saedict::testing::ScratchDir;
using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

// 10 tokens in 3 documents: 10 = tokens [0, 4), 11 = [4, 7), 12 = [7, 10).
const std::vector<int32_t> kTokens = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
const char kVocab[] =
    "[\"<pad>\", \" the\", \"\\n\", \" cat\", \" sat\", \" on\", \" mat\", \"!\", \"?\", \" dog\"]";
const char kDocs[] =
    "{\"doc_id\": 10, \"start\": 0, \"length\": 4, \"text\": \" cat the sat the\"}\n"
    "{\"doc_id\": 11, \"start\": 4, \"length\": 3}\n"
    "{\"doc_id\": 12, \"start\": 7, \"length\": 3}\n";

// Row t: (t + 1, 1.5 on even t else -1, 0, -t): the two largest entries are
// t + 1 and 1.5 (even t) or 0, so feature 0 is active on every token with
// value t + 1, feature 1 on even tokens with 1.5.
std::vector<float> Activations() {
  std::vector<float> x;
  for (int t = 0; t < 10; ++t) {
    x.insert(x.end(),
             {static_cast<float>(t + 1), t % 2 == 0 ? 1.5f : -1.0f, 0.0f, -static_cast<float>(t)});
  }
  return x;
}

class CliCorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SAEDICT_ASSERT_OK_AND_ASSIGN(server_, CoreTestServer::Start());
    ASSERT_THAT(server_->AddDictionary("d4", 4), IsOk());
    tokens_ = Path("tokens.npy");
    acts_ = Path("acts.npy");
    ASSERT_TRUE(formats::WriteNpyFile(tokens_, formats::NpyFromInt32({10}, kTokens)).ok());
    ASSERT_TRUE(formats::WriteNpyFile(acts_, formats::NpyFromFloat32({10, 4}, Activations())).ok());
    docs_ = Write("docs.jsonl", kDocs);
    vocab_ = Write("vocab.json", kVocab);
  }

  CliResult Run(std::vector<std::string> args, const std::string& target = "") {
    args.insert(args.begin(), "--server=" + (target.empty() ? server_->target() : target));
    return RunCliCaptured(args);
  }
  // `saedict ingest d4 --corpus web` with the test's files plus `extra`.
  CliResult Ingest(std::vector<std::string> extra, const std::string& target = "") {
    std::vector<std::string> args = {"ingest",   "d4",    "--corpus",      "web",
                                     "--tokens", tokens_, "--activations", acts_};
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(args, target);
  }
  std::string Path(const std::string& name) const { return (dir_.path() / name).string(); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(Path(name)) << text;
    return Path(name);
  }
  std::vector<v1::IngestRequest> Sent() {
    return server_->requests().Requests<v1::IngestRequest>("Ingest");
  }
  template <typename Request>
  Request Last(const char* method) {
    return server_->requests().Last<Request>(method);
  }

  std::unique_ptr<CoreTestServer> server_;
  ScratchDir dir_;
  std::string tokens_, acts_, docs_, vocab_;
};

std::vector<uint64_t> DocIds(const v1::IngestRequest& req) {
  std::vector<uint64_t> ids;
  for (const v1::IngestDocument& d : req.documents()) ids.push_back(d.doc_id());
  return ids;
}

std::vector<int32_t> TokenIds(const v1::IngestDocument& d) {
  std::vector<int32_t> ids(d.token_ids().size() / 4);
  std::memcpy(ids.data(), d.token_ids().data(), d.token_ids().size());
  return ids;
}

TEST_F(CliCorpusTest, IngestPacksWholeDocumentsIntoBatches) {
  CliResult r = Ingest({"--docs", docs_, "--vocab", vocab_, "--batch-tokens", "7", "--progress"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("ingested 3 documents \\(10 tokens, 0 replaced\\) into corpus "
                                  "web with d4 in [0-9.]+ s \\([0-9,]+ tokens/s, 2 batches\\)\n"));
  // One progress line per ack (not a terminal: no bar, no \r).
  const std::vector<std::string> lines = absl::StrSplit(r.err, '\n');
  ASSERT_EQ(lines.size(), 3u) << r.err;
  EXPECT_THAT(lines[0], MatchesRegex("ingest  7/10 tokens  70\\.0%  [0-9,]+ tokens/s  ETA .*"));
  EXPECT_THAT(lines[1], MatchesRegex("ingest  10/10 tokens  100\\.0%  [0-9,]+ tokens/s"));
  EXPECT_THAT(lines[2], IsEmpty());

  const std::vector<v1::IngestRequest> sent = Sent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_THAT(DocIds(sent[0]), ElementsAre(10, 11));
  EXPECT_THAT(DocIds(sent[1]), ElementsAre(12));
  for (const v1::IngestRequest& req : sent) {
    EXPECT_EQ(req.dictionary_id(), "d4");
    EXPECT_EQ(req.corpus(), "web");
    EXPECT_EQ(req.value_precision(), v1::VALUE_PRECISION_F32);
    EXPECT_EQ(req.compute_mode(), v1::COMPUTE_MODE_F32);
  }
  const v1::IngestDocument& d11 = sent[0].documents(1);
  EXPECT_THAT(TokenIds(d11), ElementsAre(5, 9, 2));
  EXPECT_THAT(d11.token_strings(), ElementsAre(" on", " dog", "\n"));
  EXPECT_EQ(d11.activations().dtype(), v1::DTYPE_F32);
  EXPECT_THAT(d11.activations().shape(), ElementsAre(3, 4));
  const std::vector<float> x = Activations();
  EXPECT_EQ(d11.activations().data(),
            std::string(reinterpret_cast<const char*>(x.data() + 16), 12 * sizeof(float)));

  // Again: every document is replaced.
  r = Ingest({"--docs", docs_, "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.err, IsEmpty());  // no --progress, not a terminal
  EXPECT_THAT(r.out, MatchesRegex("\\{\"dictionary_id\":\"d4\",\"corpus\":\"web\",\"documents\":3,"
                                  "\"tokens\":10,\"replaced_documents\":3,\"batches\":1,"
                                  "\"seconds\":[0-9.]+,\"tokens_per_second\":[0-9.]+\\}\n"));
}

TEST_F(CliCorpusTest, IngestWholeFileAsOneDocumentWithF16AndInt64) {
  std::vector<int64_t> wide(kTokens.begin(), kTokens.end());
  ASSERT_TRUE(formats::WriteNpyFile(tokens_, formats::NpyFromInt64({10}, wide)).ok());
  std::string halves;
  for (int i = 0; i < 40; ++i) halves += std::string("\x00\x3c", 2);  // 1.0 in f16
  ASSERT_TRUE(formats::WriteNpyFile(acts_, NpyArray{NpyDType::kF16, {10, 4}, halves}).ok());
  CliResult r = Ingest({"--values=f16", "--bf16"});
  // A CPU without BF16 refuses the compute mode; the request is the same.
  if (engine::Encoder::Bf16Available()) {
    ASSERT_EQ(r.code, kExitOk) << r.err;
  } else {
    EXPECT_EQ(r.code, kExitFailure);
    EXPECT_THAT(r.err, HasSubstr("compute_mode BF16 is not available"));
  }
  const std::vector<v1::IngestRequest> sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_EQ(sent[0].documents_size(), 1);
  const v1::IngestDocument& doc = sent[0].documents(0);
  EXPECT_EQ(doc.doc_id(), 0u);
  EXPECT_THAT(TokenIds(doc), ElementsAre(3, 1, 4, 1, 5, 9, 2, 6, 5, 3));
  EXPECT_EQ(doc.token_strings_size(), 0);
  EXPECT_EQ(doc.activations().dtype(), v1::DTYPE_F16);  // sent as is
  EXPECT_EQ(doc.activations().data(), halves);
  EXPECT_EQ(sent[0].value_precision(), v1::VALUE_PRECISION_F16);
  EXPECT_EQ(sent[0].compute_mode(), v1::COMPUTE_MODE_BF16);
  if (!engine::Encoder::Bf16Available()) return;
  // Stored as f16: every token's two largest entries are 1.0 (exact in f16).
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::optional<storage::StoredCodes> stored,
                               server_->store().corpus()->GetCodes("d4", "web", 0));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->precision, storage::ValuePrecision::kF16);
  EXPECT_EQ(stored->codes.nnz(), 20);
}

TEST_F(CliCorpusTest, IngestLimitDocsAndBigDocumentsAlone) {
  CliResult r = Ingest({"--docs", docs_, "--limit_docs=2", "--batch_tokens=2"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::vector<v1::IngestRequest> sent = Sent();
  ASSERT_EQ(sent.size(), 2u);  // each document is longer than a batch
  EXPECT_THAT(DocIds(sent[0]), ElementsAre(10));
  EXPECT_THAT(DocIds(sent[1]), ElementsAre(11));
  EXPECT_THAT(r.out, StartsWith("ingested 2 documents (7 tokens, 0 replaced)"));
}

TEST_F(CliCorpusTest, IngestBadInputExitsTwoAndSendsNothing) {
  ASSERT_TRUE(formats::WriteNpyFile(Path("short.npy"),
                                    formats::NpyFromFloat32({9, 4}, std::vector<float>(36, 1.0f)))
                  .ok());
  const std::string small_vocab = Write("small.json", "[\"a\", \"b\", \"c\"]");
  const std::string far_docs = Write("far.jsonl", "{\"doc_id\": 1, \"start\": 8, \"length\": 3}\n");
  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  const std::vector<Case> cases = {
      {{"ingest", "d4", "--tokens", tokens_, "--activations", acts_},
       "error: INVALID_ARGUMENT: --corpus is required (the corpus name)\n"},
      {{"ingest", "d4", "--corpus", "a/b", "--tokens", tokens_, "--activations", acts_},
       "error: INVALID_ARGUMENT: --corpus 'a/b' may only hold letters, digits, '.', '_' and '-'\n"},
      {{"ingest", "d4", "--corpus", "web", "--activations", acts_},
       "error: INVALID_ARGUMENT: --tokens is required (token ids, .npy [T])\n"},
      {{"ingest", "d4", "--corpus", "web", "--tokens", tokens_, "--activations", Path("short.npy")},
       "error: INVALID_ARGUMENT: " + Path("short.npy") + " has 9 rows but " + tokens_ +
           " has 10 tokens; want one activation row per token\n"},
      {{"ingest", "d4", "--corpus", "web", "--tokens", tokens_, "--activations", acts_, "--docs",
        far_docs},
       "error: INVALID_ARGUMENT: " + far_docs +
           ":1: document 1 covers tokens [8, 11) but the token file has 10 tokens\n"},
      {{"ingest", "d4", "--corpus", "web", "--tokens", tokens_, "--activations", acts_, "--vocab",
        small_vocab},
       "error: INVALID_ARGUMENT: document 0 token 0 (token 0 of the file) has id 3 but " +
           small_vocab + " has 3 entries\n"},
      {{"ingest", "d4", "--corpus", "web", "--tokens", tokens_, "--activations", acts_, "--values",
        "f64"},
       "error: INVALID_ARGUMENT: --values wants f32 or f16, got 'f64'\n"},
      {{"ingest", "d4", "--corpus", "web", "--tokens", tokens_, "--activations", acts_,
        "--batch-tokens", "0"},
       "error: INVALID_ARGUMENT: --batch_tokens must be in [1, 1073741824], got 0\n"},
  };
  for (const Case& c : cases) {
    CliResult r = Run(c.args);
    EXPECT_EQ(r.code, kExitUsage) << r.err;
    EXPECT_EQ(r.err, c.err);
    EXPECT_THAT(r.out, IsEmpty());
  }
  CliResult r = Run(
      {"ingest", "d4", "--corpus", "web", "--tokens", Path("missing.npy"), "--activations", acts_});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, StartsWith("error: NOT_FOUND: "));
  EXPECT_THAT(r.err, HasSubstr("missing.npy"));
  EXPECT_TRUE(Sent().empty());
}

TEST_F(CliCorpusTest, IngestServerErrorsExitOne) {
  CliResult r =
      Run({"ingest", "nope", "--corpus", "web", "--tokens", tokens_, "--activations", acts_});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_EQ(r.err, "error: NOT_FOUND: stream message 0: dictionary 'nope' not found\n");

  // A server whose stream fails at batch 1 (after storing batch 0).
  FaultyIngestService faulty(server_->core(), {IngestFault::Kind::kFailAt, 1,
                                               grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                                            "document 11: activations: NaN")});
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<LocalGrpcServer> faulty_server,
                               LocalGrpcServer::Start(&faulty));
  r = Ingest({"--docs", docs_, "--batch_tokens=4", "--progress"}, faulty_server->target());
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("ingest  4/10 tokens  40.0%"));
  EXPECT_THAT(r.err, HasSubstr("error: INVALID_ARGUMENT: document 11: activations: NaN (1 of 3 "
                               "batches were stored before the error: 1 documents, 4 tokens)\n"));
  EXPECT_THAT(r.out, IsEmpty());
  // What the client says was stored is what the store holds.
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::optional<storage::StoredCodes> first,
                               server_->store().corpus()->GetCodes("d4", "web", 10));
  EXPECT_TRUE(first.has_value());
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::optional<storage::StoredCodes> second,
                               server_->store().corpus()->GetCodes("d4", "web", 11));
  EXPECT_FALSE(second.has_value());
}

class CliCorpusReadTest : public CliCorpusTest {
 protected:
  void SetUp() override {
    CliCorpusTest::SetUp();
    CliResult r = Ingest({"--docs", docs_, "--vocab", vocab_});
    ASSERT_EQ(r.code, kExitOk) << r.err;
    // The feature page shows the precomputed neighbours once they are ready.
    ASSERT_THAT(server_->WaitForIndex("d4"), IsOk());
  }
};

std::string Bar(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "\u2588";
  return s;
}

TEST_F(CliCorpusReadTest, FeatureStatsHistogramAndExamples) {
  CliResult r = Run({"feature", "d4", "0", "--top", "3", "--context", "1"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  // $0 and $1: bars of 20 and 40 blocks (the largest bin gets 40).
  EXPECT_EQ(r.out, absl::Substitute("feature 0 of d4\n"
                                    "count:         10\n"
                                    "total_tokens:  10\n"
                                    "density:       1 (100.000%)\n"
                                    "mean:          5.5\n"
                                    "std:           2.872\n"
                                    "max:           10\n"
                                    "\n"
                                    "histogram of the active values:\n"
                                    "  [1, 1.189)      1  $0\n"
                                    "  [2, 2.378)      1  $0\n"
                                    "  [2.828, 3.364)  1  $0\n"
                                    "  [4, 4.757)      1  $0\n"
                                    "  [4.757, 5.657)  1  $0\n"
                                    "  [5.657, 6.727)  1  $0\n"
                                    "  [6.727, 8)      1  $0\n"
                                    "  [8, 9.514)      2  $1\n"
                                    "  [9.514, 11.31)  1  $0\n"
                                    "\n"
                                    "top 3 examples (context 1 tokens each side):\n"
                                    "VALUE  CORPUS  DOC  POS  CONTEXT\n"
                                    "10     web     12   2     on[[ cat]]\n"
                                    "9      web     12   1     mat[[ on]] cat\n"
                                    "8      web     12   0    [[ mat]] on\n"
                                    // The identity SAE's directions are orthogonal.
                                    "\n"
                                    "nearest decoder neighbours:\n"
                                    "FEATURE  COSINE\n"
                                    "1        0.0000\n"
                                    "2        0.0000\n"
                                    "3        0.0000\n"
                                    "\n"
                                    "family: none (no parent or child at the default "
                                    "thresholds; 10 stored tokens)\n",
                                    Bar(20), Bar(40)));
  const v1::GetFeatureRequest req = Last<v1::GetFeatureRequest>("GetFeature");
  EXPECT_EQ(req.dictionary_id(), "d4");
  EXPECT_EQ(req.feature(), 0u);
  EXPECT_EQ(req.top_n(), 3);
  EXPECT_EQ(req.context_window(), 1);
  EXPECT_EQ(server_->requests().Count("TopActivations"), 0);
}

TEST_F(CliCorpusReadTest, FeatureNewlinesColourAndInactive) {
  // Feature 1 fires on even tokens; token 6 is "\n".
  CliResult r = Run({"feature", "d4", "1", "--top=1", "--context=2"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("count:         5\n"));
  EXPECT_THAT(r.out, HasSubstr("  [1.414, 1.682)  5  " + Bar(40) + "\n"));
  // Ties keep storage order; the first even token is position 0 of doc 10.
  EXPECT_THAT(r.out, HasSubstr("1.5    web     10   0    [[ cat]] the sat\n"));

  r = Run({"feature", "d4", "1", "--top=5", "--context=1", "--color=always"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr(" dog\x1b[1;4;31m\u21b5\x1b[0m\n"));  // token 6 = doc 11 pos 2
  EXPECT_THAT(r.out, Not(HasSubstr("[[")));

  r = Run({"feature", "d4", "2"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "feature 2 of d4\nno stored activations (inactive on all 10 stored tokens)\n"
            "\nnearest decoder neighbours:\nFEATURE  COSINE\n0        0.0000\n1        0.0000\n"
            "3        0.0000\n\nfamily: none (no parent or child at the default thresholds; 10 "
            "stored tokens)\n");
}

TEST_F(CliCorpusReadTest, FeatureQuantilesAndJson) {
  CliResult r = Run(
      {"feature", "d4", "0", "--quantiles", "2", "--per-bin", "2", "--context", "0", "--top", "1"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const v1::TopActivationsRequest top = Last<v1::TopActivationsRequest>("TopActivations");
  EXPECT_EQ(top.quantile_bins(), 2);
  EXPECT_EQ(top.per_bin(), 2);
  EXPECT_EQ(top.context_window(), 0);
  // The server places the median at a histogram bin edge (5.657) and spreads
  // each bin's two examples over the values inside it.
  EXPECT_THAT(r.out, HasSubstr("\nquantiles [0, 0.5), values [1, 5.657]: 2 examples\n"
                               "VALUE  CORPUS  DOC  POS  CONTEXT\n"
                               "3      web     10   2    [[ sat]]\n"
                               "1      web     10   0    [[ cat]]\n"
                               "\nquantiles [0.5, 1), values [5.657, 10]: 2 examples\n"
                               "VALUE  CORPUS  DOC  POS  CONTEXT\n"
                               "9      web     12   1    [[ on]]\n"
                               "6      web     11   1    [[ dog]]\n"));

  r = Run({"--json", "feature", "d4", "0", "--top=1", "--context=0"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out,
              StartsWith("{\"dictionary_id\":\"d4\",\"feature\":0,\"stats\":{\"count\":\"10\","
                         "\"total_tokens\":\"10\",\"density\":1,\"mean\":5.5,"));
  EXPECT_THAT(r.out, HasSubstr("\"top_examples\":[{\"corpus\":\"web\",\"doc_id\":\"12\","
                               "\"position\":\"2\",\"value\":10,\"context\":[{\"token_id\":3,"
                               "\"token\":\" cat\",\"value\":10}],\"peak_index\":0}],"));
  EXPECT_THAT(r.out, Not(HasSubstr("quantile_bins")));

  r = Run({"--json", "feature", "d4", "0", "--quantiles=1", "--top=1", "--context=0"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"quantile_bins\":[{\"quantile_lower\":0,"
                               "\"quantile_upper\":1,\"value_lower\":1,\"value_upper\":10,"
                               "\"examples\":["));
  EXPECT_THAT(r.out, EndsWith("]}]}\n"));
}

TEST_F(CliCorpusReadTest, FeatureErrors) {
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string err;
  };
  for (const Case& c : std::vector<Case>{
           {{"feature", "d4", "x"},
            kExitUsage,
            "error: INVALID_ARGUMENT: IDX wants an integer, got 'x'\n"},
           {{"feature", "d4", "4294967296"},
            kExitUsage,
            "error: INVALID_ARGUMENT: IDX must be in [0, 4294967295], got 4294967296\n"},
           {{"feature", "d4", "0", "--top=0"},
            kExitUsage,
            "error: INVALID_ARGUMENT: --top must be in [1, 1000], got 0\n"},
           {{"feature", "d4", "0", "--context=257"},
            kExitUsage,
            "error: INVALID_ARGUMENT: --context must be in [0, 256], got 257\n"},
           {{"feature", "d4", "0", "--quantiles=21"},
            kExitUsage,
            "error: INVALID_ARGUMENT: --quantiles must be in [0, 20], got 21\n"},
           {{"feature", "d4", "0", "--color=sometimes"},
            kExitUsage,
            "error: INVALID_ARGUMENT: --color wants auto, always or never, got 'sometimes'\n"},
           {{"feature", "d4", "4"},
            kExitFailure,
            "error: NOT_FOUND: feature 4 not found: dictionary 'd4' has d_sae 4 (features "
            "0..3)\n"},
           {{"feature", "nope", "0"},
            kExitFailure,
            "error: NOT_FOUND: dictionary 'nope' not found\n"},
           {{"feature", "d4"}, kExitUsage, "error: feature takes 2 arguments (DICT IDX), got 1\n"},
       }) {
    CliResult r = Run(c.args);
    EXPECT_EQ(r.code, c.code) << r.err;
    EXPECT_THAT(r.err, StartsWith(c.err));
  }
}

TEST_F(CliCorpusReadTest, DocTextAndFeatures) {
  CliResult r = Run({"doc", "web", "11"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "corpus web document 11: 3 tokens\n on dog\n\n");

  r = Run({"doc", "web", "10", "--dictionary", "d4"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "corpus web document 10: 4 tokens\n"
            " cat the sat the\n"
            "\n"
            "features of d4 over the whole document (4 tokens):\n"
            "FEATURE  MAX  AT  TOKEN   ACTIVE  SUM\n"
            "0        4    3   \" the\"  4       10\n"
            "1        1.5  0   \" cat\"  2       3\n");
  const v1::DocumentFeaturesRequest req = Last<v1::DocumentFeaturesRequest>("DocumentFeatures");
  EXPECT_EQ(req.corpus(), "web");
  EXPECT_EQ(req.doc_id(), 10u);
  EXPECT_FALSE(req.has_position());
  EXPECT_EQ(req.n(), 20);

  r = Run({"doc", "web", "11", "--dictionary=d4", "--position=2", "--top=1"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "corpus web document 11: 3 tokens\n"
            " on dog[[\u21b5]]\n"
            "\n"
            "features of d4 at position 2 \"\u21b5\":\n"
            "FEATURE  MAX  AT  TOKEN  ACTIVE  SUM\n"
            "0        7    2   \"\u21b5\"    1       7\n");
  EXPECT_EQ(Last<v1::DocumentFeaturesRequest>("DocumentFeatures").position(), 2);
  EXPECT_EQ(Last<v1::DocumentFeaturesRequest>("DocumentFeatures").n(), 1);

  r = Run({"--json", "doc", "web", "12", "--dictionary=d4", "--top=1"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "{\"document\":{\"corpus\":\"web\",\"doc_id\":\"12\",\"token_ids\":[6,5,3],"
            "\"token_strings\":[\" mat\",\" on\",\" cat\"]},\"features\":{\"num_tokens\":\"3\","
            "\"features\":[{\"feature\":0,\"max_value\":10,\"max_position\":\"2\","
            "\"active_tokens\":\"3\",\"sum\":27}]}}\n");
}

TEST_F(CliCorpusReadTest, DocWithoutStringsAndErrors) {
  ASSERT_EQ(
      Run({"ingest", "d4", "--corpus", "ids", "--tokens", tokens_, "--activations", acts_}).code,
      kExitOk);
  CliResult r = Run({"doc", "ids", "0", "--position", "1"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "corpus ids document 0: 10 tokens\n3 [[1]] 4 1 5 9 2 6 5 3\n");

  r = Run({"doc", "ids", "0", "--position", "10"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err,
            "error: INVALID_ARGUMENT: --position 10 is past the end of document 0, which has 10 "
            "tokens\n");
  r = Run({"doc", "ids", "0", "--position", "-1"});
  EXPECT_EQ(r.code, kExitUsage);
  r = Run({"doc", "ids", "x"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err, "error: INVALID_ARGUMENT: DOC_ID wants a non-negative integer, got 'x'\n");
  r = Run({"doc", "ids", "5"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_EQ(r.err, "error: NOT_FOUND: document 5 of corpus 'ids' not found\n");
  r = Run({"doc", "ids", "0", "--dictionary", "nope"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_EQ(r.err, "error: NOT_FOUND: dictionary 'nope' not found\n");
}

// Bytes of the regular files under `root` (what the server reports).
int64_t TreeBytes(const std::filesystem::path& root) {
  int64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) total += static_cast<int64_t>(e.file_size());
  }
  return total;
}

TEST_F(CliCorpusTest, Checkpoint) {
  ASSERT_EQ(Ingest({"--docs", docs_}).code, kExitOk);
  const std::filesystem::path backups = server_->data_dir() / "backups";
  const std::string nightly = (backups / "nightly-1").string();
  CliResult r = Run({"checkpoint", "nightly-1"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "checkpoint nightly-1 written to " + nightly + " on the server (" +
                       FormatBytes(TreeBytes(nightly)) + ")\n");
  // A complete data dir: the store and d4's canonical weights.
  EXPECT_TRUE(std::filesystem::is_directory(backups / "nightly-1" / "db"));
  EXPECT_FALSE(std::filesystem::is_empty(backups / "nightly-1" / "dictionaries"));
  r = Run({"checkpoint", "nightly-1"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_EQ(r.err,
            "error: ALREADY_EXISTS: checkpoint 'nightly-1' already exists at " + nightly + "\n");
  r = Run({"--json", "checkpoint", "n2"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "{\"path\":\"" + (backups / "n2").string() + "\",\"bytes\":\"" +
                       std::to_string(TreeBytes(backups / "n2")) + "\"}\n");
  r = Run({"checkpoint", "../etc"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err,
            "error: INVALID_ARGUMENT: NAME '../etc' may only hold letters, digits, '.', '_' and "
            "'-'\n");
}

TEST_F(CliCorpusTest, EveryCorpusCommandHasHelp) {
  for (const char* command : {"ingest", "feature", "doc", "checkpoint"}) {
    CliResult r = Run({command, "--help"});
    EXPECT_EQ(r.code, kExitOk) << command;
    EXPECT_THAT(r.out, StartsWith(std::string("usage: saedict ") + command)) << command;
  }
  EXPECT_THAT(Run({"--help"}).out, ContainsRegex("\n  ingest +store a corpus"));
}

}  // namespace
}  // namespace saedict::client
