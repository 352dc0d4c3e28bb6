// Similarity and families through service::ServiceCore on a real RocksDB
// store (Store::Open in a scratch dir), a real registry and the real
// background builder: planted families recovered through the RPCs, every
// error path with its message, searches during the build, persistence and
// rebuild of the index files, replace and delete.
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/batcher.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/dictionary_registry.h"
#include "service/service_core.h"
#include "storage/store.h"
#include "tests/index/index_test_util.h"
#include "tests/index/planted_families.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"
#include "wire/wire_codec.h"

namespace saedict::service {
namespace {

namespace fs = std::filesystem;
using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(120);

class SimilarityServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plant_ = testing::MakePlantedFamilies(4000);
    StartCore();
  }

  void StartCore() {
    core_.reset();
    batcher_.reset();
    registry_.reset();
    store_.reset();
    fs::create_directories(scratch_.path() / "data");
    SAEDICT_ASSERT_OK_AND_ASSIGN(store_, storage::Store::Open({scratch_.path() / "data" / "db"}));
    SAEDICT_ASSERT_OK_AND_ASSIGN(
        registry_, DictionaryRegistry::Create({scratch_.path() / "data", scratch_.path()},
                                              store_.get()));
    SAEDICT_ASSERT_OK_AND_ASSIGN(batcher_, engine::EncodeBatcher::Create({}));
    SimilarityOptions similarity;
    similarity.neighbours_per_feature = 8;
    core_ = std::make_unique<ServiceCore>(registry_.get(), batcher_.get(), store_.get(),
                                          scratch_.path() / "data", similarity);
  }

  // Loads `rows` as a built dictionary `id` and waits for its index.
  void LoadBuilt(const std::string& id, const std::vector<float>& rows, int64_t n, int64_t d,
                 bool wait = true) {
    ASSERT_THAT(registry_->LoadBuilt(id, testing::DirectionsDictionary(rows, n, d), "test").status(),
                IsOk());
    core_->similarity().Schedule(id);
    if (wait) {
      ASSERT_THAT(core_->similarity().WaitUntilReady(id, kWait), IsOk());
    }
  }

  // Stores the planted tokens as 40 documents of the planted dictionary.
  void StorePlantedCorpus(const std::string& id) {
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto encoder, registry_->GetEncoder(id));
    storage::IngestBatch batch;
    batch.dictionary_id = id;
    batch.weights_sha256 = encoder->content_sha256();
    batch.corpus = "plant";
    batch.d_sae = plant_.kN;
    const size_t per_doc = plant_.tokens.size() / 40;
    for (size_t doc = 0; doc < 40; ++doc) {
      storage::IngestDocument d;
      d.doc_id = doc;
      d.codes.num_features = plant_.kN;
      d.codes.row_offsets.assign(1, 0);
      for (size_t t = doc * per_doc; t < (doc + 1) * per_doc; ++t) {
        d.token_ids.push_back(static_cast<int32_t>(t % 97));
        for (uint32_t f : plant_.tokens[t]) {
          d.codes.indices.push_back(f);
          d.codes.values.push_back(1.0f + f);
        }
        d.codes.row_offsets.push_back(d.codes.indices.size());
      }
      d.codes.num_rows = static_cast<int64_t>(per_doc);
      batch.documents.push_back(std::move(d));
    }
    ASSERT_THAT(store_->corpus()->WriteIngestBatch(batch).status(), IsOk());
  }

  v1::SearchSimilarRequest ByFeature(const std::string& id, uint32_t feature, int top_n = 5) {
    v1::SearchSimilarRequest r;
    r.set_dictionary_id(id);
    r.set_feature(feature);
    r.set_top_n(top_n);
    return r;
  }

  v1::SearchSimilarRequest ByVector(const std::string& id, const std::vector<float>& v,
                                    std::vector<int64_t> shape) {
    v1::SearchSimilarRequest r;
    r.set_dictionary_id(id);
    *r.mutable_vector() = wire::EncodeTensor(v, std::move(shape));
    return r;
  }

  fs::path IndexFile(const std::string& id) {
    return scratch_.path() / "data" / "index" / absl::StrCat(id, ".decoder.faiss");
  }

  testing::ScratchDir scratch_;
  testing::PlantedFamilies plant_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<DictionaryRegistry> registry_;
  std::unique_ptr<engine::EncodeBatcher> batcher_;
  std::unique_ptr<ServiceCore> core_;
};

TEST_F(SimilarityServiceTest, FamiliesOfThePlantedDictionary) {
  LoadBuilt("plant", plant_.rows, plant_.kN, plant_.kD);
  StorePlantedCorpus("plant");
  v1::FeatureFamilyRequest r;
  r.set_dictionary_id("plant");
  r.set_feature(12);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::FeatureFamilyResponse f, core_->FeatureFamily(r));
  ASSERT_EQ(f.parents_size(), 2);
  EXPECT_EQ(f.parents(0).feature(), 4u);
  EXPECT_EQ(f.parents(1).feature(), 0u);
  EXPECT_EQ(f.root(), 0u);
  EXPECT_EQ(f.family_size(), 4);
  EXPECT_EQ(f.parents(0).pair_child(), 12u);
  EXPECT_DOUBLE_EQ(f.parents(0).coverage(), 1.0);
  EXPECT_THAT(f.parents(0).reason(), HasSubstr("12 is a child of 4"));
  EXPECT_EQ(f.provenance().tokens(), 4000);
  EXPECT_EQ(f.provenance().documents(), 40);
  EXPECT_EQ(f.provenance().neighbours_per_feature(), 8);
  EXPECT_DOUBLE_EQ(f.provenance().min_coverage(), 0.8);

  r.set_feature(4);
  SAEDICT_ASSERT_OK_AND_ASSIGN(f, core_->FeatureFamily(r));
  ASSERT_EQ(f.children_size(), 1);
  EXPECT_EQ(f.children(0).feature(), 12u);
  ASSERT_EQ(f.siblings_size(), 1);
  EXPECT_EQ(f.siblings(0).feature(), 5u);
  EXPECT_EQ(f.siblings(0).relation(), v1::FAMILY_RELATION_SIBLING);

  r.set_feature(13);  // the geometric decoy
  SAEDICT_ASSERT_OK_AND_ASSIGN(f, core_->FeatureFamily(r));
  EXPECT_EQ(f.parents_size(), 0);
  EXPECT_EQ(f.family_size(), 1);

  v1::ListFamiliesRequest list;
  list.set_dictionary_id("plant");
  list.set_page_size(3);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::ListFamiliesResponse page, core_->ListFamilies(list));
  EXPECT_EQ(page.total_families(), 4);
  ASSERT_EQ(page.families_size(), 3);
  EXPECT_THAT(page.families(0).members(), ElementsAre(0, 4, 5, 12));
  EXPECT_EQ(page.families(0).depth(), 2);
  ASSERT_FALSE(page.next_page_token().empty());
  list.set_page_token(page.next_page_token());
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::ListFamiliesResponse last, core_->ListFamilies(list));
  ASSERT_EQ(last.families_size(), 1);
  EXPECT_EQ(last.families(0).root(), 3u);
  EXPECT_TRUE(last.next_page_token().empty());

  // GetFeature carries the neighbours and the family.
  v1::GetFeatureRequest g;
  g.set_dictionary_id("plant");
  g.set_feature(4);
  g.set_neighbours(3);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetFeatureResponse page4, core_->GetFeature(g));
  EXPECT_EQ(page4.neighbours_state(), v1::INDEX_STATE_READY);
  ASSERT_EQ(page4.neighbours_size(), 3);
  EXPECT_EQ(page4.neighbours(0).feature(), 12u);  // cosine 0.92, the closest
  EXPECT_EQ(page4.family().parents(0).feature(), 0u);
  g.set_skip_family(true);
  SAEDICT_ASSERT_OK_AND_ASSIGN(page4, core_->GetFeature(g));
  EXPECT_FALSE(page4.has_family());
  g.set_neighbours(-1);
  EXPECT_THAT(core_->GetFeature(g), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("neighbours: -1")));
}

TEST_F(SimilarityServiceTest, FamilyMembersCarryTheirMatryoshkaLevel) {
  auto dict = testing::DirectionsDictionary(plant_.rows, plant_.kN, plant_.kD);
  dict->config.matryoshka_widths = {4, 12, 40};  // parents, children, the rest
  ASSERT_THAT(registry_->LoadBuilt("nested", dict, "test").status(), IsOk());
  core_->similarity().Schedule("nested");
  ASSERT_THAT(core_->similarity().WaitUntilReady("nested", kWait), IsOk());
  StorePlantedCorpus("nested");
  v1::FeatureFamilyRequest r;
  r.set_dictionary_id("nested");
  r.set_feature(12);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::FeatureFamilyResponse f, core_->FeatureFamily(r));
  EXPECT_EQ(f.nesting_level(), 3);
  ASSERT_EQ(f.parents_size(), 2);
  EXPECT_EQ(f.parents(0).nesting_level(), 2);  // child 4
  EXPECT_EQ(f.parents(1).nesting_level(), 1);  // parent 0
  v1::GetDictionaryRequest g;
  g.set_id("nested");
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetDictionaryResponse info, core_->GetDictionary(g));
  EXPECT_THAT(info.dictionary().matryoshka_widths(), ElementsAre(4, 12, 40));
  r.set_dictionary_id("plant-less");  // a dictionary without widths: level 0
  LoadBuilt("plain", plant_.rows, plant_.kN, plant_.kD);
  StorePlantedCorpus("plain");
  r.set_dictionary_id("plain");
  SAEDICT_ASSERT_OK_AND_ASSIGN(f, core_->FeatureFamily(r));
  EXPECT_EQ(f.nesting_level(), 0);
}

TEST_F(SimilarityServiceTest, FamiliesAreRecountedWhenTheCorpusChanges) {
  LoadBuilt("plant", plant_.rows, plant_.kN, plant_.kD);
  StorePlantedCorpus("plant");
  v1::FeatureFamilyRequest r;
  r.set_dictionary_id("plant");
  r.set_feature(0);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::FeatureFamilyResponse before, core_->FeatureFamily(r));
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::FeatureFamilyResponse cached, core_->FeatureFamily(r));
  EXPECT_EQ(cached.provenance().computed_at().nanos(), before.provenance().computed_at().nanos());
  // An ingest through the core (3 more tokens) invalidates the cache.
  v1::IngestRequest ingest;
  ingest.set_dictionary_id("plant");
  ingest.set_corpus("more");
  v1::IngestDocument* doc = ingest.add_documents();
  doc->set_doc_id(1);
  const std::vector<int32_t> ids = {1, 2, 3};
  doc->set_token_ids(std::string(reinterpret_cast<const char*>(ids.data()), 12));
  std::vector<float> x(3 * plant_.kD, 0.5f);
  *doc->mutable_activations() = wire::EncodeTensor(x, {3, plant_.kD});
  auto session = core_->StartIngest([](const v1::IngestAck&) { return true; });
  ASSERT_THAT(session->Submit(ingest), IsOk());
  ASSERT_THAT(session->Finish(), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::FeatureFamilyResponse after, core_->FeatureFamily(r));
  EXPECT_EQ(after.provenance().tokens(), 4003);
  EXPECT_EQ(after.provenance().documents(), 41);
}

TEST_F(SimilarityServiceTest, GetFeatureServesTheEarlierFamilyWhileTheRecountRuns) {
  LoadBuilt("plant", plant_.rows, plant_.kN, plant_.kD);
  StorePlantedCorpus("plant");
  v1::GetFeatureRequest get;
  get.set_dictionary_id("plant");
  get.set_feature(12);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetFeatureResponse first, core_->GetFeature(get));
  EXPECT_EQ(first.family().provenance().tokens(), 4000);
  EXPECT_FALSE(first.family().provenance().stale());
  v1::IngestRequest ingest;  // 3 more tokens: the corpus changed
  ingest.set_dictionary_id("plant");
  ingest.set_corpus("more");
  v1::IngestDocument* doc = ingest.add_documents();
  doc->set_doc_id(1);
  const std::vector<int32_t> ids = {1, 2, 3};
  doc->set_token_ids(std::string(reinterpret_cast<const char*>(ids.data()), 12));
  std::vector<float> x(3 * plant_.kD, 0.5f);
  *doc->mutable_activations() = wire::EncodeTensor(x, {3, plant_.kD});
  auto session = core_->StartIngest([](const v1::IngestAck&) { return true; });
  ASSERT_THAT(session->Submit(ingest), IsOk());
  ASSERT_THAT(session->Finish(), IsOk());
  // At once: the earlier forest, said to be stale; a recount starts.
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetFeatureResponse during, core_->GetFeature(get));
  EXPECT_TRUE(during.family().provenance().stale());
  EXPECT_EQ(during.family().provenance().tokens(), 4000);
  EXPECT_EQ(during.family().parents_size(), first.family().parents_size());
  // The recount lands; then the answer is current again.
  v1::GetFeatureResponse after;
  for (int i = 0; i < 600; ++i) {
    SAEDICT_ASSERT_OK_AND_ASSIGN(after, core_->GetFeature(get));
    if (!after.family().provenance().stale()) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_FALSE(after.family().provenance().stale());
  EXPECT_EQ(after.family().provenance().tokens(), 4003);
  // FeatureFamily never answers stale.
  v1::FeatureFamilyRequest family;
  family.set_dictionary_id("plant");
  family.set_feature(12);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::FeatureFamilyResponse exact, core_->FeatureFamily(family));
  EXPECT_FALSE(exact.provenance().stale());
  EXPECT_EQ(exact.provenance().tokens(), 4003);
}

TEST_F(SimilarityServiceTest, FamilyErrorsNameTheValue) {
  LoadBuilt("plant", plant_.rows, plant_.kN, plant_.kD);
  v1::FeatureFamilyRequest r;
  r.set_dictionary_id("nope");
  EXPECT_THAT(core_->FeatureFamily(r), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  r.set_dictionary_id("plant");
  r.set_feature(40);
  EXPECT_THAT(core_->FeatureFamily(r),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("40 is not below d_sae = 40")));
  r.set_feature(1);
  r.mutable_options()->set_min_coverage(1.5);
  EXPECT_THAT(core_->FeatureFamily(r),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("options.min_coverage: 1.5")));
  r.mutable_options()->clear_min_coverage();
  r.mutable_options()->set_min_decoder_cosine(-3);
  EXPECT_THAT(core_->FeatureFamily(r), StatusIs(absl::StatusCode::kInvalidArgument,
                                                HasSubstr("options.min_decoder_cosine: -3")));
  r.mutable_options()->clear_min_decoder_cosine();
  r.mutable_options()->set_min_child_count(0);
  EXPECT_THAT(core_->FeatureFamily(r), StatusIs(absl::StatusCode::kInvalidArgument,
                                                HasSubstr("options.min_child_count: 0")));
  v1::ListFamiliesRequest list;
  list.set_dictionary_id("plant");
  list.set_page_size(1001);
  EXPECT_THAT(core_->ListFamilies(list),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_size: 1001")));
  list.set_page_size(0);
  list.set_page_token("garbage");
  EXPECT_THAT(core_->ListFamilies(list),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token: 'garbage'")));
  list.set_page_token("1.12345");
  EXPECT_THAT(core_->ListFamilies(list),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("recomputed")));
  list.set_dictionary_id("");
  list.clear_page_token();
  EXPECT_THAT(core_->ListFamilies(list),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dictionary_id")));
}

TEST_F(SimilarityServiceTest, SearchByFeatureAndByVectorAcrossDictionaries) {
  const std::vector<float> rows = testing::RandomRows(300, 16, 3);
  std::vector<float> other = testing::RandomRows(200, 16, 4);
  for (int64_t j = 0; j < 16; ++j) other[50 * 16 + j] = -2 * rows[7 * 16 + j];  // anti-parallel
  for (int64_t j = 0; j < 16; ++j) other[60 * 16 + j] = rows[7 * 16 + j];       // parallel
  LoadBuilt("a", rows, 300, 16);
  LoadBuilt("b", other, 200, 16);
  v1::SearchSimilarRequest r = ByFeature("a", 7, 3);
  r.add_against("a");
  r.add_against("b");
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::SearchSimilarResponse s, core_->SearchSimilar(r));
  ASSERT_EQ(s.results_size(), 2);
  EXPECT_TRUE(s.results(0).exact());
  EXPECT_EQ(s.results(0).index_factory(), "Flat");
  for (const v1::Neighbour& n : s.results(0).neighbours()) EXPECT_NE(n.feature(), 7u) << "not itself";
  ASSERT_EQ(s.results(1).neighbours_size(), 3);
  EXPECT_EQ(s.results(1).neighbours(0).feature(), 60u);
  EXPECT_NEAR(s.results(1).neighbours(0).cosine(), 1.0, 1e-12);
  for (int k = 0; k < 3; ++k) {
    const v1::Neighbour& n = s.results(0).neighbours(k);
    EXPECT_NEAR(n.cosine(), testing::Cosine64(rows.data() + n.feature() * 16, rows.data() + 7 * 16, 16),
                1e-12);
  }
  // The negated direction as a vector query finds 50 first in b; min_cosine cuts the rest.
  std::vector<float> v(rows.begin() + 7 * 16, rows.begin() + 8 * 16);
  for (float& x : v) x = -x;
  v1::SearchSimilarRequest q = ByVector("a", v, {16});
  q.add_against("b");
  q.set_min_cosine(0.99);
  SAEDICT_ASSERT_OK_AND_ASSIGN(s, core_->SearchSimilar(q));
  ASSERT_EQ(s.results(0).neighbours_size(), 1);
  EXPECT_EQ(s.results(0).neighbours(0).feature(), 50u);
  q = ByVector("a", v, {1, 16});  // [1, d_in] is accepted too
  q.set_top_n(2);
  SAEDICT_ASSERT_OK_AND_ASSIGN(s, core_->SearchSimilar(q));
  EXPECT_EQ(s.results(0).neighbours_size(), 2);
}

TEST_F(SimilarityServiceTest, SearchErrorsNameTheValue) {
  LoadBuilt("a", testing::RandomRows(100, 16, 3), 100, 16);
  LoadBuilt("wide", testing::RandomRows(50, 32, 3), 50, 32);
  auto code = [&](const v1::SearchSimilarRequest& r) { return core_->SearchSimilar(r); };
  EXPECT_THAT(code(ByFeature("nope", 1)), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  EXPECT_THAT(code(ByFeature("", 1)), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dictionary_id")));
  EXPECT_THAT(code(ByFeature("a", 100)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("100 is not below d_sae = 100")));
  v1::SearchSimilarRequest r = ByFeature("a", 1);
  r.set_top_n(1001);
  EXPECT_THAT(code(r), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_n: 1001")));
  r.set_top_n(-1);
  EXPECT_THAT(code(r), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_n: -1")));
  r = ByFeature("a", 1);
  r.set_min_cosine(2);
  EXPECT_THAT(code(r), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("min_cosine: 2")));
  r = ByFeature("a", 1);
  r.set_directions(static_cast<v1::DirectionKind>(9));
  EXPECT_THAT(code(r), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("directions: 9")));
  r = ByFeature("a", 1);
  r.clear_feature();
  EXPECT_THAT(code(r), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("set feature or vector")));
  EXPECT_THAT(code(ByVector("a", std::vector<float>(15, 1.0f), {15})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vector")));
  std::vector<float> nan(16, 1.0f);
  nan[2] = std::nanf("");
  EXPECT_THAT(code(ByVector("a", nan, {16})), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vector")));
  EXPECT_THAT(code(ByVector("a", std::vector<float>(16, 0.0f), {16})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("zero vector")));
  EXPECT_THAT(code(ByVector("a", std::vector<float>(32, 1.0f), {2, 16})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[d_in] or [1, d_in]")));
  r = ByFeature("a", 1);
  r.add_against("wide");
  EXPECT_THAT(code(r), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("against[0]: dictionary 'wide' has d_in 32, the query has 16")));
  r = ByFeature("a", 1);
  r.add_against("ghost");
  EXPECT_THAT(code(r), StatusIs(absl::StatusCode::kNotFound, HasSubstr("against[0]")));
  r = ByFeature("a", 1);
  r.add_against("a");
  r.add_against("a");
  EXPECT_THAT(code(r), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("listed twice")));
}

TEST_F(SimilarityServiceTest, EncoderIndexIsBuiltOnFirstUse) {
  LoadBuilt("a", testing::RandomRows(100, 16, 3), 100, 16);
  v1::SearchSimilarRequest r = ByFeature("a", 3);
  r.set_directions(v1::DIRECTION_KIND_ENCODER);
  absl::StatusOr<v1::SearchSimilarResponse> first = core_->SearchSimilar(r);
  if (!first.ok()) {
    EXPECT_THAT(first, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("encoder index")));
  }
  for (int i = 0; i < 600 && core_->similarity().Status("a").encoder_state() != v1::INDEX_STATE_READY; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(core_->similarity().Status("a").encoder_state(), v1::INDEX_STATE_READY);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::SearchSimilarResponse s, core_->SearchSimilar(r));
  EXPECT_EQ(s.results(0).neighbours_size(), 5);
}

TEST_F(SimilarityServiceTest, SearchDuringTheBuildIsRefusedWithTheState) {
  // The builder works on the big one first; the small one waits its turn.
  LoadBuilt("big", testing::RandomRows(8192, 256, 5), 8192, 256, /*wait=*/false);
  LoadBuilt("small", testing::RandomRows(64, 256, 6), 64, 256, /*wait=*/false);
  const v1::IndexStatus status = core_->similarity().Status("small");
  if (status.neighbours_state() != v1::INDEX_STATE_READY) {
    EXPECT_THAT(core_->SearchSimilar(ByFeature("small", 1)),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         ::testing::AnyOf(HasSubstr("QUEUED"), HasSubstr("BUILDING"))));
    v1::FeatureFamilyRequest f;
    f.set_dictionary_id("small");
    EXPECT_THAT(core_->FeatureFamily(f),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("neighbours")));
  } else {
    ADD_FAILURE() << "the small dictionary was ready before the big one; the test cannot see a build";
  }
  ASSERT_THAT(core_->similarity().WaitUntilReady("small", kWait), IsOk());
  EXPECT_THAT(core_->SearchSimilar(ByFeature("small", 1)), IsOk());
  v1::GetDictionaryRequest g;
  g.set_id("big");
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetDictionaryResponse big, core_->GetDictionary(g));
  EXPECT_EQ(big.dictionary().index().state(), v1::INDEX_STATE_READY);
  EXPECT_EQ(big.dictionary().index().neighbours_state(), v1::INDEX_STATE_READY);
  EXPECT_EQ(big.dictionary().index().neighbours_done(), 8192);
  EXPECT_EQ(big.dictionary().index().factory(), "Flat");
}

TEST_F(SimilarityServiceTest, ConcurrentSearchesDuringRebuildsGetTheAnswerOrTheState) {
  LoadBuilt("a", testing::RandomRows(2000, 64, 12), 2000, 64);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::SearchSimilarResponse want, core_->SearchSimilar(ByFeature("a", 17)));
  std::atomic<int> answered{0}, refused{0}, wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 60; ++i) {
        absl::StatusOr<v1::SearchSimilarResponse> got = core_->SearchSimilar(ByFeature("a", 17));
        if (got.ok()) {
          (got->SerializeAsString() == want.SerializeAsString() ? answered : wrong)++;
        } else if (absl::IsFailedPrecondition(got.status())) {
          refused++;
        } else {
          wrong++;
        }
      }
    });
  }
  for (int r = 0; r < 3; ++r) {
    core_->similarity().Schedule("a", /*force=*/true);  // rebuild under the searches
    absl::SleepFor(absl::Milliseconds(20));
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(answered.load() + refused.load(), 240);
  ASSERT_THAT(core_->similarity().WaitUntilReady("a", kWait), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::SearchSimilarResponse after, core_->SearchSimilar(ByFeature("a", 17)));
  EXPECT_EQ(after.SerializeAsString(), want.SerializeAsString());
}

TEST_F(SimilarityServiceTest, IndexFilesArePersistedAndRebuiltWhenMissingOrDamaged) {
  const std::vector<float> rows = testing::RandomRows(500, 16, 8);
  LoadBuilt("a", rows, 500, 16);
  EXPECT_FALSE(core_->similarity().Status("a").loaded_from_disk());
  ASSERT_TRUE(fs::exists(IndexFile("a")));
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::SearchSimilarResponse want, core_->SearchSimilar(ByFeature("a", 9)));

  auto restart_and_check = [&](bool from_disk) {
    StartCore();  // restores "a" from its canonical weights and queues its index
    ASSERT_THAT(core_->similarity().WaitUntilReady("a", kWait), IsOk());
    EXPECT_EQ(core_->similarity().Status("a").loaded_from_disk(), from_disk);
    SAEDICT_ASSERT_OK_AND_ASSIGN(v1::SearchSimilarResponse got, core_->SearchSimilar(ByFeature("a", 9)));
    EXPECT_EQ(got.SerializeAsString(), want.SerializeAsString());
  };
  restart_and_check(true);
  {
    std::fstream f(IndexFile("a"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x55');
  }
  restart_and_check(false);  // damaged: rebuilt
  restart_and_check(true);   // and written again
  fs::remove(IndexFile("a"));
  restart_and_check(false);  // missing: rebuilt
}

TEST_F(SimilarityServiceTest, ReplaceRecomputesAndDeleteRemovesEverything) {
  const std::vector<float> rows = testing::RandomRows(120, 16, 9);
  testing::ScratchDir unused;
  LoadBuilt("a", rows, 120, 16);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto manifest, store_->corpus()->GetNeighboursManifest("a"));
  ASSERT_TRUE(manifest.has_value());
  // A replace (same weights) drops the stored neighbours; they come back.
  ASSERT_THAT(store_->ReplaceDictionary(*store_->GetDictionary("a").value()), IsOk());
  core_->similarity().Schedule("a", /*force=*/true);
  ASSERT_THAT(core_->similarity().WaitUntilReady("a", kWait), IsOk());
  v1::GetFeatureRequest g;
  g.set_dictionary_id("a");
  g.set_feature(3);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetFeatureResponse page, core_->GetFeature(g));
  EXPECT_EQ(page.neighbours_size(), 8);

  v1::DeleteDictionaryRequest d;
  d.set_id("a");
  ASSERT_THAT(core_->DeleteDictionary(d).status(), IsOk());
  EXPECT_FALSE(fs::exists(IndexFile("a")));
  SAEDICT_ASSERT_OK_AND_ASSIGN(manifest, store_->corpus()->GetNeighboursManifest("a"));
  EXPECT_FALSE(manifest.has_value());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto record, store_->corpus()->GetNeighbours("a", 3));
  EXPECT_FALSE(record.has_value());
  EXPECT_EQ(core_->similarity().Status("a").state(), v1::INDEX_STATE_UNSPECIFIED);
}

// A manifest that promises records the store no longer holds (what a
// builder of an earlier load could leave when it wrote its manifest after a
// delete removed its records) is not trusted: the neighbours are recomputed
// and every feature page has them.
TEST_F(SimilarityServiceTest, AManifestWithoutItsRecordsIsRecomputed) {
  const std::vector<float> rows = testing::RandomRows(120, 16, 9);
  LoadBuilt("a", rows, 120, 16);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto manifest, store_->corpus()->GetNeighboursManifest("a"));
  ASSERT_TRUE(manifest.has_value());
  ASSERT_THAT(store_->corpus()->DeleteNeighbours("a"), IsOk());
  ASSERT_THAT(store_->corpus()->PutNeighboursManifest("a", *manifest), IsOk());  // stale
  core_->similarity().Schedule("a", /*force=*/true);
  ASSERT_THAT(core_->similarity().WaitUntilReady("a", kWait), IsOk());
  for (uint32_t f = 0; f < 120; f += 17) {
    v1::GetFeatureRequest g;
    g.set_dictionary_id("a");
    g.set_feature(f);
    SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetFeatureResponse page, core_->GetFeature(g));
    EXPECT_EQ(page.neighbours_size(), 8) << "feature " << f;
  }
}

}  // namespace
}  // namespace saedict::service

namespace saedict::service {
namespace {

// On real SAEs: topk_l2_b (same layer, other seed) shares more decoder
// directions with topk_l2_a than relu_l4 (another layer) does. MMCS = mean
// over a's features of the best cosine in the other dictionary.
TEST(Stories260kSimilarityTest, SameLayerOtherSeedIsCloserThanOtherLayer) {
  SAEDICT_REQUIRE_STORIES260K(dir);
  testing::ScratchDir scratch;
  fs::create_directories(scratch.path() / "data");
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto store, storage::Store::Open({scratch.path() / "data" / "db"}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto registry,
                               DictionaryRegistry::Create({scratch.path() / "data", dir}, store.get()));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto batcher, engine::EncodeBatcher::Create({}));
  ServiceCore core(registry.get(), batcher.get(), store.get(), scratch.path() / "data");
  for (const std::string id : {"topk_l2_a", "topk_l2_b", "relu_l4"}) {
    v1::LoadDictionaryRequest load;
    load.set_id(id);
    load.set_path(id);
    ASSERT_THAT(core.LoadDictionary(load).status(), IsOk());
  }
  for (const std::string id : {"topk_l2_a", "topk_l2_b", "relu_l4"}) {
    ASSERT_THAT(core.similarity().WaitUntilReady(id, kWait), IsOk());
  }
  double mmcs_b = 0, mmcs_l4 = 0, self = 0;
  std::vector<double> paired;  // per feature: best in b minus best in relu_l4
  constexpr int kFeatures = 512;
  for (uint32_t f = 0; f < kFeatures; ++f) {
    v1::SearchSimilarRequest r;
    r.set_dictionary_id("topk_l2_a");
    r.set_feature(f);
    r.set_top_n(1);
    r.add_against("topk_l2_b");
    r.add_against("relu_l4");
    r.add_against("topk_l2_a");
    SAEDICT_ASSERT_OK_AND_ASSIGN(v1::SearchSimilarResponse s, core.SearchSimilar(r));
    ASSERT_EQ(s.results_size(), 3);
    mmcs_b += s.results(0).neighbours(0).cosine();
    mmcs_l4 += s.results(1).neighbours(0).cosine();
    self += s.results(2).neighbours(0).cosine();
    paired.push_back(s.results(0).neighbours(0).cosine() - s.results(1).neighbours(0).cosine());
  }
  double mean = 0, var = 0;
  for (double p : paired) mean += p / kFeatures;
  for (double p : paired) var += (p - mean) * (p - mean) / (kFeatures - 1);
  const double standard_error = std::sqrt(var / kFeatures);
  mmcs_b /= kFeatures;
  mmcs_l4 /= kFeatures;
  self /= kFeatures;
  std::cout << "MMCS topk_l2_a -> topk_l2_b " << mmcs_b << ", -> relu_l4 " << mmcs_l4
            << ", nearest other feature within topk_l2_a " << self
            << "; paired difference " << mean << " +- " << standard_error << " (standard error)\n";
  // Measurably closer: the paired per-feature difference is many standard errors above 0.
  EXPECT_GT(mmcs_b, mmcs_l4);
  EXPECT_GT(mean, 5 * standard_error);
}

}  // namespace
}  // namespace saedict::service
