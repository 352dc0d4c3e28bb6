// End-to-end tests of the similarity and family commands (similar, family,
// families, and the neighbours / family / index sections of feature and
// info) and of the client's SearchSimilar / FeatureFamily / ListFamilies,
// through RunCli against the real service core on a real gRPC server
// (core_test_server.h) with a real background index builder.
//
// The dictionary "plant" has the planted families of
// tests/index/planted_families.h (d_in 64, d_sae 40: parents 0..3, children
// 4..11 with cosine ~0.86 to their parent, 12 a grandchild of 0 under 4, 13
// a geometric decoy of 0, noise above); its 4,000 planted tokens are written
// straight into the store as 40 documents of corpus "plant". "other" has 40
// random directions of d_in 64 and no corpus; "d4" (identity, d_in 4) is
// there for the d_in mismatch. What is printed, what was sent (the server's
// RequestLog) and the exit codes (bad input 2 with nothing sent, server
// errors 1) are checked; --json output is parsed back and compared with the
// core's own answer.
#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/cli.h"
#include "client/commands/cli_util.h"
#include "client/saedict_client.h"
#include "formats/codecs/npy.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/client/cli_test_util.h"
#include "tests/client/core_test_server.h"
#include "tests/index/index_test_util.h"
#include "tests/index/planted_families.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::client {
namespace {

using ::saedict::testing::CliResult;
using ::saedict::testing::CoreTestServer;
using ::saedict::testing::IsOk;
using ::saedict::testing::PlantedFamilies;
using ::saedict::testing::RunCliCaptured;
using ::saedict::testing::ScratchDir;
using ::saedict::testing::StatusIs;
using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr int64_t kTokens = 4000;
constexpr int kDocuments = 40;

// `json` parsed as a Message of type M; a failure when it does not parse.
template <typename M>
M ParseJson(const std::string& json) {
  M m;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &m);
  EXPECT_TRUE(status.ok()) << status << "\n" << json;
  return m;
}

template <typename M>
bool SameMessage(const M& a, const M& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

// The planted dictionary as a loadable SAE (standard ReLU, W_enc = W_decᵀ).
engine::Dictionary PlantedDictionary(const std::vector<float>& rows, int64_t n, int64_t d) {
  engine::Dictionary dict = *testing::DirectionsDictionary(rows, n, d);
  dict.config.model_name = "plant-model";
  dict.config.hook_name = "blocks.0.hook_resid_post";
  return dict;
}

class CliSimilarityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    plant_ = new PlantedFamilies(testing::MakePlantedFamilies(kTokens));
  }
  static void TearDownTestSuite() {
    delete plant_;
    plant_ = nullptr;
  }

  void SetUp() override {
    SAEDICT_ASSERT_OK_AND_ASSIGN(server_, CoreTestServer::Start());
    const int64_t n = PlantedFamilies::kN, d = PlantedFamilies::kD;
    ASSERT_THAT(server_->AddDictionary("plant", PlantedDictionary(plant_->rows, n, d)), IsOk());
    ASSERT_THAT(
        server_->AddDictionary("other", PlantedDictionary(testing::RandomRows(n, d, 9), n, d)),
        IsOk());
    ASSERT_THAT(server_->AddDictionary("d4", 4), IsOk());
    for (const char* id : {"plant", "other", "d4"}) ASSERT_THAT(server_->WaitForIndex(id), IsOk());
    StorePlantedCorpus();
  }

  // The planted tokens as 40 documents of 100 tokens, feature f with value 1 + f.
  void StorePlantedCorpus() {
    v1::GetDictionaryRequest get;
    get.set_id("plant");
    SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetDictionaryResponse info,
                                 server_->core()->GetDictionary(get));
    storage::IngestBatch batch;
    batch.dictionary_id = "plant";
    batch.weights_sha256 = info.dictionary().weights_sha256();
    batch.corpus = "plant";
    batch.d_sae = PlantedFamilies::kN;
    const size_t per_doc = plant_->tokens.size() / kDocuments;
    for (size_t doc = 0; doc < kDocuments; ++doc) {
      storage::IngestDocument d;
      d.doc_id = doc;
      d.codes.num_features = PlantedFamilies::kN;
      d.codes.row_offsets.assign(1, 0);
      for (size_t t = doc * per_doc; t < (doc + 1) * per_doc; ++t) {
        d.token_ids.push_back(static_cast<int32_t>(t % 97));
        for (uint32_t f : plant_->tokens[t]) {
          d.codes.indices.push_back(f);
          d.codes.values.push_back(1.0f + f);
        }
        d.codes.row_offsets.push_back(d.codes.indices.size());
      }
      d.codes.num_rows = static_cast<int64_t>(per_doc);
      batch.documents.push_back(std::move(d));
    }
    ASSERT_THAT(server_->store().corpus()->WriteIngestBatch(batch).status(), IsOk());
  }

  // Planted tokens on which feature f fires.
  static int64_t Count(uint32_t f) {
    int64_t n = 0;
    for (const auto& token : plant_->tokens) n += std::count(token.begin(), token.end(), f);
    return n;
  }

  CliResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), "--server=" + server_->target());
    return RunCliCaptured(args);
  }
  std::string Path(const std::string& name) const { return (dir_.path() / name).string(); }
  // Writes row `f` of the planted dictionary as a float32 .npy of `shape`.
  std::string WriteRow(const std::string& name, uint32_t f, std::vector<int64_t> shape) {
    const std::vector<float> row(plant_->rows.begin() + f * PlantedFamilies::kD,
                                 plant_->rows.begin() + (f + 1) * PlantedFamilies::kD);
    EXPECT_THAT(formats::WriteNpyFile(Path(name), formats::NpyFromFloat32(std::move(shape), row)),
                IsOk());
    return Path(name);
  }
  int Sent(const char* method) const { return server_->requests().Count(method); }
  template <typename Request>
  Request Last(const char* method) const {
    return server_->requests().Last<Request>(method);
  }

  static PlantedFamilies* plant_;
  std::unique_ptr<CoreTestServer> server_;
  ScratchDir dir_;
};

PlantedFamilies* CliSimilarityTest::plant_ = nullptr;

std::vector<std::string> Lines(const std::string& text) { return absl::StrSplit(text, '\n'); }

// --- the client library ----------------------------------------------------------

TEST_F(CliSimilarityTest, ClientMethodsAnswerAsTheCoreDoes) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client, Client::Connect(server_->target()));
  v1::SearchSimilarRequest search;
  search.set_dictionary_id("plant");
  search.set_feature(4);
  search.set_top_n(3);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::SearchSimilarResponse found, client->SearchSimilar(search));
  EXPECT_TRUE(server_->requests().last_call_had_deadline());
  ASSERT_EQ(found.results_size(), 1);
  ASSERT_EQ(found.results(0).neighbours_size(), 3);
  EXPECT_EQ(found.results(0).neighbours(0).feature(), 12u);  // cosine 0.919
  EXPECT_EQ(found.results(0).neighbours(1).feature(), 0u);   // 0.857
  EXPECT_EQ(found.results(0).neighbours(2).feature(), 13u);  // 0.796
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::SearchSimilarResponse direct,
                               server_->core()->SearchSimilar(search));
  EXPECT_TRUE(SameMessage(found, direct));

  v1::FeatureFamilyRequest family;
  family.set_dictionary_id("plant");
  family.set_feature(12);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::FeatureFamilyResponse f, client->FeatureFamily(family));
  EXPECT_EQ(f.root(), 0u);
  EXPECT_EQ(f.family_size(), 4);
  ASSERT_EQ(f.parents_size(), 2);
  EXPECT_EQ(f.parents(0).feature(), 4u);

  v1::ListFamiliesRequest list;
  list.set_dictionary_id("plant");
  list.set_page_size(2);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::ListFamiliesResponse page, client->ListFamilies(list));
  EXPECT_EQ(page.total_families(), 4);
  EXPECT_EQ(page.families_size(), 2);
  EXPECT_FALSE(page.next_page_token().empty());

  // The server's codes and messages, unchanged.
  search.set_dictionary_id("nope");
  EXPECT_THAT(client->SearchSimilar(search),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'nope'")));
  family.set_feature(40);
  EXPECT_THAT(client->FeatureFamily(family),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("not below d_sae = 40")));
  list.set_page_token("bogus");
  EXPECT_THAT(client->ListFamilies(list),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
}

// --- similar ----------------------------------------------------------------------

TEST_F(CliSimilarityTest, SimilarToAFeature) {
  CliResult r = Run({"similar", "plant", "4", "--top", "3"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.err, IsEmpty());
  EXPECT_EQ(r.out,
            "decoder directions nearest to feature 4 of plant (top 3)\n"
            "\n"
            "plant: 3 neighbours, exact search (index Flat)\n"
            "RANK  FEATURE  COSINE\n"
            "1     12       0.9191\n"
            "2     0        0.8575\n"
            "3     13       0.7962\n");
  const auto sent = Last<v1::SearchSimilarRequest>("SearchSimilar");
  EXPECT_EQ(sent.dictionary_id(), "plant");
  EXPECT_EQ(sent.query_case(), v1::SearchSimilarRequest::kFeature);
  EXPECT_EQ(sent.feature(), 4u);
  EXPECT_EQ(sent.top_n(), 3);
  EXPECT_EQ(sent.directions(), v1::DIRECTION_KIND_DECODER);
  EXPECT_FALSE(sent.has_min_cosine());
  EXPECT_THAT(sent.against(), IsEmpty());

  r = Run({"--json", "similar", "plant", "4", "--top=3"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  ASSERT_THAT(r.out, ::testing::EndsWith("}\n"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::SearchSimilarResponse direct,
                               server_->core()->SearchSimilar(sent));
  EXPECT_TRUE(SameMessage(ParseJson<v1::SearchSimilarResponse>(r.out), direct)) << r.out;
  EXPECT_THAT(r.out, HasSubstr("\"index_factory\":\"Flat\""));
}

TEST_F(CliSimilarityTest, SimilarToAVectorAcrossDictionaries) {
  // Parent 0's own direction: itself (cosine 1), its decoy 13 (0.928), its
  // children 4 and 5 (0.857 each), the grandchild 12 (0.788). "other" is
  // random (|cosine| ~ 0.125 in 64 dimensions): nothing reaches 0.5.
  const std::string v = WriteRow("v.npy", 0, {PlantedFamilies::kD});
  CliResult r = Run({"similar", "plant", "--vector", v, "--against", "plant,other", "--top", "5",
                     "--min_cosine", "0.5"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 13u) << r.out;
  EXPECT_EQ(lines[0],
            "decoder directions nearest to the vector in " + v + " (top 5, cosine >= 0.5)");
  EXPECT_EQ(lines[2], "plant: 5 neighbours, exact search (index Flat)");
  EXPECT_EQ(lines[3], "RANK  FEATURE  COSINE");
  EXPECT_EQ(lines[4], "1     0        1.0000");
  EXPECT_EQ(lines[5], "2     13       0.9285");
  EXPECT_THAT(lines[6], ContainsRegex("^3     [45]        0\\.8575$"));
  EXPECT_THAT(lines[7], ContainsRegex("^4     [45]        0\\.8575$"));
  EXPECT_EQ(lines[8], "5     12       0.7881");
  EXPECT_EQ(lines[10], "other: 0 neighbours, exact search (index Flat)");
  EXPECT_EQ(lines[11], "  no match at or above --min_cosine");
  const auto sent = Last<v1::SearchSimilarRequest>("SearchSimilar");
  EXPECT_EQ(sent.query_case(), v1::SearchSimilarRequest::kVector);
  EXPECT_EQ(sent.vector().dtype(), v1::DTYPE_F32);
  EXPECT_THAT(sent.vector().shape(), ElementsAre(PlantedFamilies::kD));
  EXPECT_EQ(sent.vector().data().size(), PlantedFamilies::kD * sizeof(float));
  EXPECT_THAT(sent.against(), ElementsAre("plant", "other"));
  ASSERT_TRUE(sent.has_min_cosine());
  EXPECT_EQ(sent.min_cosine(), 0.5);
  EXPECT_EQ(sent.top_n(), 5);

  // [1, d_in] works too; --json has one result per searched dictionary.
  const std::string row = WriteRow("row.npy", 0, {1, PlantedFamilies::kD});
  r = Run({"--json", "similar", "plant", "--vector", row, "--against=other,plant", "--top=2"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto resp = ParseJson<v1::SearchSimilarResponse>(r.out);
  ASSERT_EQ(resp.results_size(), 2);
  EXPECT_EQ(resp.results(0).dictionary_id(), "other");
  EXPECT_EQ(resp.results(0).neighbours_size(), 2);
  EXPECT_EQ(resp.results(1).dictionary_id(), "plant");
  EXPECT_EQ(resp.results(1).neighbours(0).feature(), 0u);
  EXPECT_TRUE(resp.results(1).exact());
}

TEST_F(CliSimilarityTest, SimilarEncoderDirectionsWaitForTheirIndex) {
  // The encoder index is built on the first encoder search: without --wait
  // the answer is FAILED_PRECONDITION naming its state.
  CliResult r = Run({"similar", "plant", "4", "--encoder", "--top=1"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith("error: FAILED_PRECONDITION: the encoder index of dictionary "
                                "'plant' is "));
  EXPECT_THAT(r.err, HasSubstr("--wait=DURATION"));
  r = Run({"similar", "plant", "4", "--encoder", "--top=1", "--wait=2m"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  // W_enc = W_decᵀ: the same neighbours.
  EXPECT_THAT(r.out, StartsWith("encoder directions nearest to feature 4 of plant (top 1)\n"));
  EXPECT_THAT(r.out, HasSubstr("\n1     12       0.9191\n"));
  EXPECT_EQ(Last<v1::SearchSimilarRequest>("SearchSimilar").directions(),
            v1::DIRECTION_KIND_ENCODER);
  r = Run({"info", "plant"});
  EXPECT_THAT(r.out, ContainsRegex("\nencoder_index: +ready\n"));
}

TEST_F(CliSimilarityTest, SimilarBadInputExits2AndSendsNothing) {
  formats::NpyArray ints{
      formats::NpyDType::kI32, {PlantedFamilies::kD}, std::string(PlantedFamilies::kD * 4, '\0')};
  ASSERT_THAT(formats::WriteNpyFile(Path("ints.npy"), ints), IsOk());
  std::ofstream(Path("junk.npy")) << "not an npy file";
  const std::string two_rows = WriteRow("two.npy", 0, {2, PlantedFamilies::kD / 2});
  const std::string short_row = Path("short.npy");  // 32 values; plant has d_in 64
  ASSERT_THAT(
      formats::WriteNpyFile(short_row, formats::NpyFromFloat32({32}, std::vector<float>(32, 1.0f))),
      IsOk());
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"similar", "plant"}, "error: INVALID_ARGUMENT: give a feature IDX or --vector FILE.npy"},
      {{"similar", "plant", "3", "--vector", short_row},
       "error: INVALID_ARGUMENT: give IDX or --vector FILE.npy, not both"},
      {{"similar", "plant", "x"}, "error: INVALID_ARGUMENT: IDX wants an integer, got 'x'"},
      {{"similar", "plant", "--", "-1"},
       "error: INVALID_ARGUMENT: IDX must be in [0, 4294967295], got -1"},
      {{"similar", "plant", "3", "--top=0"},
       "error: INVALID_ARGUMENT: --top must be in [1, 1000], got 0"},
      {{"similar", "plant", "3", "--top=1001"},
       "error: INVALID_ARGUMENT: --top must be in [1, 1000], got 1001"},
      {{"similar", "plant", "3", "--min_cosine=1.5"},
       "error: INVALID_ARGUMENT: --min_cosine must be in [-1, 1], got 1.5"},
      {{"similar", "plant", "3", "--min_cosine=nan"},
       "error: INVALID_ARGUMENT: --min_cosine must be in [-1, 1], got nan"},
      {{"similar", "plant", "3", "--against=other,,plant"},
       "error: INVALID_ARGUMENT: --against 'other,,plant' has an empty entry"},
      {{"similar", "plant", "3", "--against=other,other"},
       "error: INVALID_ARGUMENT: --against lists 'other' twice"},
      {{"similar", "plant", "3", "--against=bad/name"},
       "error: INVALID_ARGUMENT: --against 'bad/name' may only hold"},
      {{"similar", "plant", "--vector", Path("missing.npy")},
       "error: NOT_FOUND: --vector: cannot open " + Path("missing.npy")},
      {{"similar", "plant", "--vector", Path("junk.npy")}, "error: INVALID_ARGUMENT: --vector: "},
      {{"similar", "plant", "--vector", Path("ints.npy")},
       "error: INVALID_ARGUMENT: --vector " + Path("ints.npy") +
           " has dtype <i4; want float32, float16 or float64"},
      {{"similar", "plant", "--vector", two_rows},
       "error: INVALID_ARGUMENT: --vector " + two_rows +
           " has shape [2, 32]; want one direction, shape [d_in] or [1, d_in]"},
      // The dictionary's d_in is asked for (GetDictionary), nothing is searched.
      {{"similar", "plant", "--vector", short_row},
       "error: INVALID_ARGUMENT: --vector " + short_row +
           " has 32 values; dictionary 'plant' "
           "has d_in 64"},
  };
  for (const Case& c : cases) {
    CliResult r = Run(c.args);
    EXPECT_EQ(r.code, kExitUsage) << c.error << "\n" << r.err;
    EXPECT_THAT(r.err, StartsWith(c.error));
    EXPECT_THAT(r.out, IsEmpty());
  }
  EXPECT_EQ(Sent("SearchSimilar"), 0);
}

TEST_F(CliSimilarityTest, SimilarServerErrorsExit1) {
  const std::string v = WriteRow("v.npy", 0, {PlantedFamilies::kD});
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"similar", "nope", "3"}, "error: NOT_FOUND: dictionary 'nope' not found"},
      {{"similar", "nope", "--vector", v}, "error: NOT_FOUND: dictionary 'nope' not found"},
      {{"similar", "plant", "40"},
       "error: NOT_FOUND: dictionary 'plant' feature: 40 is not below d_sae = 40"},
      {{"similar", "plant", "3", "--against=nope"},
       "error: NOT_FOUND: against[0]: dictionary 'nope' not found"},
      {{"similar", "plant", "3", "--against=other,d4"},
       "error: INVALID_ARGUMENT: against[1]: dictionary 'd4' has d_in 4, the query has 64"},
  };
  for (const Case& c : cases) {
    CliResult r = Run(c.args);
    EXPECT_EQ(r.code, kExitFailure) << c.error << "\n" << r.err;
    EXPECT_THAT(r.err, StartsWith(c.error));
    EXPECT_THAT(r.out, IsEmpty());
  }
  // The zero vector is the server's to refuse.
  ASSERT_THAT(formats::WriteNpyFile(Path("zero.npy"),
                                    formats::NpyFromFloat32({64}, std::vector<float>(64, 0.0f))),
              IsOk());
  CliResult r = Run({"similar", "plant", "--vector", Path("zero.npy")});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith("error: INVALID_ARGUMENT: vector: the zero vector"));
}

// --- family -----------------------------------------------------------------------

TEST_F(CliSimilarityTest, FamilyTreeOfAGrandchild) {
  CliResult r = Run({"family", "plant", "12"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_GE(lines.size(), 13u) << r.out;
  EXPECT_EQ(lines[0], absl::StrCat("feature 12 of plant: fires on ", FormatCount(Count(12)),
                                   " tokens; family of root 0, 4 members"));
  EXPECT_THAT(lines[2],
              ContainsRegex("^FEATURE +RELATION +COUNT +COVERAGE +COSINE +JACCARD +PHI$"));
  EXPECT_THAT(lines[3],
              ContainsRegex(absl::StrCat("^0 +root +", FormatCount(Count(0)), " +- +- +- +-$")));
  // 4 under 0: every token of 4 is one of 0's (coverage 1), cosine 0.857.
  EXPECT_THAT(lines[4],
              ContainsRegex(absl::StrCat("^\u2514\u2500 4 +parent +", FormatCount(Count(4)),
                                         " +1\\.000 +0\\.857 +0\\.[0-9]{3} +0\\.[0-9]{3}$")));
  EXPECT_THAT(lines[5],
              ContainsRegex(absl::StrCat("^   \u2514\u2500 12 +feature +", FormatCount(Count(12)),
                                         " +1\\.000 +0\\.919 +0\\.[0-9]{3} +0\\.[0-9]{3}$")));
  EXPECT_EQ(lines[6], "");
  EXPECT_EQ(lines[7], "why (COVERAGE is P(parent | child) over the stored tokens):");
  EXPECT_THAT(lines[8], StartsWith("  0 \u2192 4: 4 is a child of 0"));
  EXPECT_THAT(lines[9], StartsWith("  4 \u2192 12: 12 is a child of 4"));
  EXPECT_EQ(lines[10], "");
  EXPECT_THAT(lines[11], ContainsRegex("^computed at [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z in "
                                       "[0-9.e-]+ s over 4,000 stored tokens in 40 documents$"));
  EXPECT_EQ(lines[12],
            "thresholds: min_decoder_cosine 0.3, min_coverage 0.8, min_child_count 5 "
            "(32 decoder neighbours per feature)");
  const auto sent = Last<v1::FeatureFamilyRequest>("FeatureFamily");
  EXPECT_EQ(sent.dictionary_id(), "plant");
  EXPECT_EQ(sent.feature(), 12u);
  EXPECT_FALSE(sent.options().has_min_decoder_cosine());
  EXPECT_FALSE(sent.options().has_min_coverage());
  EXPECT_FALSE(sent.options().has_min_child_count());

  r = Run({"family", "plant", "12", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::FeatureFamilyResponse direct,
                               server_->core()->FeatureFamily(sent));  // cached: same computed_at
  EXPECT_TRUE(SameMessage(ParseJson<v1::FeatureFamilyResponse>(r.out), direct)) << r.out;
}

TEST_F(CliSimilarityTest, FamilyTreeWithChildrenAndSiblings) {
  CliResult r = Run({"family", "plant", "4"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_GE(lines.size(), 8u) << r.out;
  EXPECT_THAT(lines[3], ContainsRegex("^0 +root "));
  EXPECT_THAT(lines[4], ContainsRegex("^\u251c\u2500 4 +feature "));
  EXPECT_THAT(lines[5],
              ContainsRegex("^\u2502  \u2514\u2500 12 +child +[0-9]+ +1\\.000 +0\\.919 "));
  EXPECT_THAT(lines[6], ContainsRegex("^\u2514\u2500 5 +sibling +[0-9]+ +1\\.000 +0\\.857 "));
  EXPECT_THAT(r.out, HasSubstr("\n  4 \u2192 12: 12 is a child of 4"));
  EXPECT_THAT(r.out, HasSubstr("\n  0 \u2192 5: 5 is a child of 0"));

  // A root: no parent row; the decoy 13: no family.
  r = Run({"family", "plant", "0"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("\n0 +feature +[0-9]+ +- +- +- +-\n\u251c\u2500 4 +child "));
  r = Run({"family", "plant", "13"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out,
              StartsWith(absl::StrCat("feature 13 of plant: fires on ", FormatCount(Count(13)),
                                      " tokens; no family at these thresholds (no parent, "
                                      "no child)\n\ncomputed at ")));
}

TEST_F(CliSimilarityTest, FamilyThresholdFlags) {
  CliResult r =
      Run({"family", "plant", "12", "--min_cosine=0.9", "--min_coverage", "0.95", "--min_count=3"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto sent = Last<v1::FeatureFamilyRequest>("FeatureFamily");
  EXPECT_EQ(sent.options().min_decoder_cosine(), 0.9);
  EXPECT_EQ(sent.options().min_coverage(), 0.95);
  EXPECT_EQ(sent.options().min_child_count(), 3);
  // Only 4 -> 12 (cosine 0.919) passes 0.9; 0 -> 4 (0.857) does not.
  EXPECT_THAT(r.out, HasSubstr("family of root 4, 2 members"));
  EXPECT_THAT(r.out, HasSubstr("thresholds: min_decoder_cosine 0.9, min_coverage 0.95, "
                               "min_child_count 3 "));
}

TEST_F(CliSimilarityTest, FamilyErrors) {
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"family", "nope", "1"}, kExitFailure, "error: NOT_FOUND: dictionary 'nope' not found"},
      {{"family", "plant", "40"},
       kExitFailure,
       "error: NOT_FOUND: feature: 40 is not below d_sae = 40 of dictionary 'plant'"},
      {{"family", "plant", "x"}, kExitUsage, "error: INVALID_ARGUMENT: IDX wants an integer"},
      {{"family", "plant", "1", "--min_cosine=-1.5"},
       kExitUsage,
       "error: INVALID_ARGUMENT: --min_cosine must be in [-1, 1], got -1.5"},
      {{"family", "plant", "1", "--min_coverage=0"},
       kExitUsage,
       "error: INVALID_ARGUMENT: --min_coverage must be in (0, 1], got 0"},
      {{"family", "plant", "1", "--min_coverage=1.01"},
       kExitUsage,
       "error: INVALID_ARGUMENT: --min_coverage must be in (0, 1], got 1.01"},
      {{"family", "plant", "1", "--min_count=0"},
       kExitUsage,
       "error: INVALID_ARGUMENT: --min_count must be at least 1, got 0"},
  };
  for (const Case& c : cases) {
    CliResult r = Run(c.args);
    EXPECT_EQ(r.code, c.code) << c.error << "\n" << r.err;
    EXPECT_THAT(r.err, StartsWith(c.error));
    EXPECT_THAT(r.out, IsEmpty());
  }
  EXPECT_EQ(Sent("FeatureFamily"), 2);  // the two server errors
}

// --- families ---------------------------------------------------------------------

TEST_F(CliSimilarityTest, FamiliesPageByPage) {
  CliResult r = Run({"families", "plant", "--page_size=3"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_GE(lines.size(), 12u) << r.out;
  EXPECT_EQ(lines[0], "plant: 4 families, largest first (3 on this page)");
  EXPECT_THAT(lines[2], ContainsRegex("^ROOT +SIZE +DEPTH +ROOT_COUNT +MEMBERS$"));
  EXPECT_THAT(lines[3],
              ContainsRegex(absl::StrCat("^0 +4 +2 +", FormatCount(Count(0)), " +0,4,5,12$")));
  EXPECT_THAT(lines[4], ContainsRegex("^1 +3 +1 +[0-9,]+ +1,6,7$"));
  EXPECT_THAT(lines[5], ContainsRegex("^2 +3 +1 +[0-9,]+ +2,8,9$"));
  ASSERT_THAT(lines[7], StartsWith("more: --page_token "));
  const std::vector<std::string> words = absl::StrSplit(lines[7], ' ');
  ASSERT_GE(words.size(), 3u);
  const std::string token = words[2];
  EXPECT_THAT(r.out, HasSubstr("\ncomputed at "));
  EXPECT_THAT(r.out, HasSubstr("over 4,000 stored tokens in 40 documents\n"));
  EXPECT_EQ(Last<v1::ListFamiliesRequest>("ListFamilies").page_size(), 3);

  r = Run({"families", "plant", "--page_size=3", "--page_token", token});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  lines = Lines(r.out);
  EXPECT_EQ(lines[0], "plant: 4 families, largest first (1 on this page)");
  EXPECT_THAT(lines[3], ContainsRegex("^3 +3 +1 +[0-9,]+ +3,10,11$"));
  EXPECT_THAT(r.out, Not(HasSubstr("more: ")));
  EXPECT_EQ(Last<v1::ListFamiliesRequest>("ListFamilies").page_token(), token);
}

TEST_F(CliSimilarityTest, FamiliesAllFollowsEveryPage) {
  const int before = Sent("ListFamilies");
  CliResult r = Run({"families", "plant", "--all", "--page_size=1"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Sent("ListFamilies") - before, 4);
  std::vector<std::string> lines = Lines(r.out);
  EXPECT_EQ(lines[0], "plant: 4 families, largest first");
  EXPECT_THAT(lines[3], ContainsRegex("^0 +4 +2 "));
  EXPECT_THAT(lines[6], ContainsRegex("^3 +3 +1 "));
  EXPECT_THAT(r.out, Not(HasSubstr("more: ")));

  r = Run({"--json", "families", "plant", "--all", "--page_size=3"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto all = ParseJson<v1::ListFamiliesResponse>(r.out);
  EXPECT_EQ(all.total_families(), 4);
  ASSERT_EQ(all.families_size(), 4);
  EXPECT_THAT(all.families(0).members(), ElementsAre(0, 4, 5, 12));
  EXPECT_EQ(all.families(3).root(), 3u);
  EXPECT_TRUE(all.next_page_token().empty());
  EXPECT_EQ(all.provenance().tokens(), kTokens);

  // One page as JSON: the response as it came.
  r = Run({"--json", "families", "plant", "--page_size=2"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto page = ParseJson<v1::ListFamiliesResponse>(r.out);
  EXPECT_EQ(page.families_size(), 2);
  EXPECT_FALSE(page.next_page_token().empty());
}

TEST_F(CliSimilarityTest, FamiliesErrors) {
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"families", "nope"}, kExitFailure, "error: NOT_FOUND: dictionary 'nope' not found"},
      {{"families", "plant", "--page_token=zz"},
       kExitFailure,
       "error: INVALID_ARGUMENT: page_token: 'zz' is not a token this server made"},
      {{"families", "plant", "--page_size=0"},
       kExitUsage,
       "error: INVALID_ARGUMENT: --page_size must be in [1, 1000], got 0"},
      {{"families", "plant", "--page_size=1001"},
       kExitUsage,
       "error: INVALID_ARGUMENT: --page_size must be in [1, 1000], got 1001"},
      {{"families", "plant", "--min_coverage=2"},
       kExitUsage,
       "error: INVALID_ARGUMENT: --min_coverage must be in (0, 1], got 2"},
  };
  for (const Case& c : cases) {
    CliResult r = Run(c.args);
    EXPECT_EQ(r.code, c.code) << c.error << "\n" << r.err;
    EXPECT_THAT(r.err, StartsWith(c.error));
    EXPECT_THAT(r.out, IsEmpty());
  }
}

// --- feature and info -------------------------------------------------------------

TEST_F(CliSimilarityTest, FeaturePageShowsNeighboursAndFamily) {
  CliResult r = Run({"feature", "plant", "4", "--top=1", "--neighbours=3"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\nnearest decoder neighbours:\n"
                               "FEATURE  COSINE\n"
                               "12       0.9191\n"
                               "0        0.8575\n"
                               "13       0.7962\n"
                               "\nfamily: root 0, 4 members (4,000 stored tokens; 'saedict family "
                               "plant 4' shows the scores)\n"));
  EXPECT_THAT(r.out, ContainsRegex("\n  parents: +0 \\(nearest first, up to the root\\)\n"
                                   "  children: +12 \\(coverage 1\\.000\\)\n"
                                   "  siblings: +5 \\(coverage 1\\.000\\)\n$"));
  auto sent = Last<v1::GetFeatureRequest>("GetFeature");
  EXPECT_EQ(sent.neighbours(), 3);
  EXPECT_FALSE(sent.skip_family());

  // --no_family: asked for without it, and nothing printed.
  r = Run({"feature", "plant", "12", "--top=1", "--no_family"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\nnearest decoder neighbours:\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("family:")));
  sent = Last<v1::GetFeatureRequest>("GetFeature");
  EXPECT_EQ(sent.neighbours(), 10);
  EXPECT_TRUE(sent.skip_family());

  // Parents of 12 are a chain; --json is the whole GetFeatureResponse.
  r = Run({"feature", "plant", "12", "--top=1"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("\n  parents: +4 \u2192 0 \\(nearest first, up to the root\\)\n"
                                   "  children: +-\n  siblings: +-\n$"));
  r = Run({"--json", "feature", "plant", "12", "--top=1", "--neighbours=2"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto page = ParseJson<v1::GetFeatureResponse>(r.out);
  EXPECT_EQ(page.neighbours_state(), v1::INDEX_STATE_READY);
  ASSERT_EQ(page.neighbours_size(), 2);
  EXPECT_EQ(page.neighbours(0).feature(), 4u);
  EXPECT_EQ(page.family().root(), 0u);
  EXPECT_EQ(page.family().parents_size(), 2);

  // A dictionary without stored tokens still shows its neighbours; no family.
  r = Run({"feature", "other", "0", "--neighbours=2"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out,
              ContainsRegex("^feature 0 of other\nno stored activations \\(inactive on all 0 "
                            "stored tokens\\)\n\nnearest decoder neighbours:\n"
                            "FEATURE  COSINE\n[0-9]+ +-?0\\.[0-9]{4}\n[0-9]+ +-?0\\.[0-9]{4}\n"
                            "\nfamily: none \\(no parent or child at the default "
                            "thresholds; 0 stored tokens\\)\n$"));

  r = Run({"feature", "plant", "4", "--neighbours=0"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err,
              StartsWith("error: INVALID_ARGUMENT: --neighbours must be in [1, 1000], got 0"));
}

TEST_F(CliSimilarityTest, InfoShowsTheIndex) {
  CliResult r = Run({"info", "plant"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("\nindex: +ready, Flat \\(exact\\)\n"));
  EXPECT_THAT(r.out, ContainsRegex("\nindex_source: +built in [0-9.e-]+ s\n"));
  EXPECT_THAT(r.out, ContainsRegex("\nindex_memory: +[0-9.]+ (B|KiB|MiB)"));
  EXPECT_THAT(r.out, ContainsRegex("\nneighbours: +ready, 32 per feature"));
  EXPECT_THAT(r.out, ContainsRegex("\nencoder_index: +not built \\(built by the first encoder "
                                   "search\\)\n$"));
  EXPECT_THAT(r.out, Not(HasSubstr("index_error")));
  r = Run({"--json", "info", "plant"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto info = ParseJson<v1::DictionaryInfo>(r.out);
  EXPECT_EQ(info.index().state(), v1::INDEX_STATE_READY);
  EXPECT_EQ(info.index().neighbours_state(), v1::INDEX_STATE_READY);
  EXPECT_EQ(info.index().neighbours_done(), PlantedFamilies::kN);
  EXPECT_EQ(info.index().factory(), "Flat");
}

}  // namespace
}  // namespace saedict::client
