// The storage::Store / storage::CorpusStore contract (storage/store.h,
// storage/corpus_store.h) as one suite parameterized over the backends: the
// RocksDB store (Store::Open on a scratch directory) and the in-memory fake
// (tests/test_util/in_memory_store.h) that the service and client tests run
// on. BackendsAgreeOnARandomWorkload drives both through the same random
// sequence of ingests, re-ingests, deletes and replaces and compares every
// answer, so the fake cannot drift from RocksDB unnoticed.
#include <atomic>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/corpus_store.h"
#include "storage/store.h"
#include "tests/storage/corpus_test_util.h"
#include "tests/test_util/in_memory_store.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"
#include "util/half.h"

namespace saedict::storage {
namespace {

namespace fs = std::filesystem;
using ::saedict::storage::testing::Batch;
using ::saedict::storage::testing::Doc;
using ::saedict::storage::testing::Row;
using ::saedict::testing::InMemoryStore;
using ::saedict::testing::IsOk;
using ::saedict::testing::ScratchDir;
using ::saedict::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

struct Backend {
  std::string name;
  std::function<absl::StatusOr<std::unique_ptr<Store>>(const fs::path& dir)> open;
};

// gtest names the backend in failure messages.
void PrintTo(const Backend& backend, std::ostream* os) { *os << backend.name; }

const Backend kRocksDb{"RocksDb", [](const fs::path& dir) { return Store::Open({dir / "db"}); }};
const Backend kInMemory{"InMemory", [](const fs::path&) -> absl::StatusOr<std::unique_ptr<Store>> {
                          return std::make_unique<InMemoryStore>();
                        }};

records::v1::DictionaryRecord Record(const std::string& id, int64_t d_sae = 64,
                                     const std::string& weights_sha256 = "") {
  records::v1::DictionaryRecord r;
  r.mutable_info()->set_id(id);
  r.mutable_info()->set_d_sae(d_sae);
  r.mutable_info()->set_weights_sha256(weights_sha256);
  r.set_weights_file(id + ".safetensors");
  return r;
}

// (corpus, doc, position, value) of each ref, for readable comparisons.
using Ref = std::tuple<std::string, uint64_t, uint32_t, float>;
std::vector<Ref> Refs(const std::vector<TokenRef>& refs) {
  std::vector<Ref> out;
  for (const TokenRef& r : refs) out.emplace_back(r.corpus, r.doc_id, r.position, r.value);
  return out;
}

class StoreContractTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { SAEDICT_ASSERT_OK_AND_ASSIGN(store_, GetParam().open(dir_.path())); }
  CorpusStore* corpus() { return store_->corpus(); }
  void Register(const std::string& id, int64_t d_sae = 64, const std::string& sha = "") {
    ASSERT_THAT(store_->PutDictionary(Record(id, d_sae, sha)), IsOk());
  }
  std::optional<StoredCodes> Codes(const std::string& dict, const std::string& c, uint64_t doc) {
    absl::StatusOr<std::optional<StoredCodes>> codes = corpus()->GetCodes(dict, c, doc);
    EXPECT_THAT(codes, IsOk());
    return codes.ok() ? *codes : std::nullopt;
  }
  std::optional<StoredDocument> Document(const std::string& c, uint64_t doc) {
    absl::StatusOr<std::optional<StoredDocument>> d = corpus()->GetDocument(c, doc);
    EXPECT_THAT(d, IsOk());
    return d.ok() ? *d : std::nullopt;
  }
  DictionaryTotals Totals(const std::string& dict) {
    absl::StatusOr<DictionaryTotals> t = corpus()->GetDictionaryTotals(dict);
    EXPECT_THAT(t, IsOk());
    return t.ok() ? *t : DictionaryTotals{-1, -1};
  }
  std::vector<Ref> Top(const std::string& dict, uint32_t feature, int64_t limit,
                       std::optional<float> start = std::nullopt) {
    absl::StatusOr<std::vector<TokenRef>> top = corpus()->TopTokens(dict, feature, limit, start);
    EXPECT_THAT(top, IsOk());
    if (!top.ok()) return {};
    ExpectAttached(dict, feature, *top);
    return Refs(*top);
  }
  // Each ref carries the document it was found in and the feature's value at
  // each of its rows (one object per document), equal to what GetDocument /
  // GetCodes read, holding its value.
  void ExpectAttached(const std::string& dict, uint32_t feature,
                      const std::vector<TokenRef>& refs) {
    std::map<std::pair<std::string, uint64_t>, const std::vector<float>*> seen;
    for (const TokenRef& ref : refs) {
      SCOPED_TRACE(absl::StrCat(ref.corpus, " doc ", ref.doc_id, " pos ", ref.position));
      ASSERT_NE(ref.feature_values, nullptr);
      ASSERT_NE(ref.document, nullptr);
      auto [it, inserted] =
          seen.emplace(std::make_pair(ref.corpus, ref.doc_id), ref.feature_values.get());
      if (!inserted) {
        EXPECT_EQ(it->second, ref.feature_values.get());
      }
      std::optional<StoredCodes> codes = Codes(dict, ref.corpus, ref.doc_id);
      ASSERT_TRUE(codes.has_value());
      ASSERT_EQ(ref.feature_values->size(), static_cast<size_t>(codes->codes.num_rows));
      for (int64_t t = 0; t < codes->codes.num_rows; ++t) {
        EXPECT_EQ((*ref.feature_values)[t], codes->codes.ValueAt(t, feature)) << "row " << t;
      }
      EXPECT_EQ((*ref.feature_values)[ref.position], ref.value);
      std::optional<StoredDocument> doc = Document(ref.corpus, ref.doc_id);
      ASSERT_TRUE(doc.has_value());
      EXPECT_EQ(ref.document->token_ids, doc->token_ids);
      EXPECT_EQ(ref.document->token_strings, doc->token_strings);
    }
  }

  ScratchDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreContractTest, DictionaryRecordsPutGetListDelete) {
  for (const char* id : {"b", "a", "c"}) Register(id);
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<records::v1::DictionaryRecord> list,
                               store_->ListDictionaries());
  std::vector<std::string> ids;
  for (const records::v1::DictionaryRecord& r : list) ids.push_back(r.info().id());
  EXPECT_THAT(ids, ElementsAre("a", "b", "c"));  // id order

  Register("a", 7);  // replaces
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::optional<records::v1::DictionaryRecord> a,
                               store_->GetDictionary("a"));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->info().d_sae(), 7);
  EXPECT_EQ(a->weights_file(), "a.safetensors");
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::optional<records::v1::DictionaryRecord> none,
                               store_->GetDictionary("zz"));
  EXPECT_FALSE(none.has_value());

  EXPECT_THAT(store_->DeleteDictionary("b"), IsOk());
  EXPECT_THAT(store_->DeleteDictionary("b"), IsOk());  // OK whether or not it existed
  SAEDICT_ASSERT_OK_AND_ASSIGN(list, store_->ListDictionaries());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1].info().id(), "c");

  EXPECT_THAT(store_->PutDictionary(records::v1::DictionaryRecord()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no id")));
  EXPECT_THAT(store_->ReplaceDictionary(records::v1::DictionaryRecord()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no id")));
}

TEST_P(StoreContractTest, IngestRoundTripDropsZeros) {
  Register("d");
  const std::vector<IngestDocument> docs = {
      Doc(7, {1, 2, 3}, {{{0, 1.5f}, {63, -2.25f}}, {}, {{5, 0.0f}, {6, 1e-30f}}},
          {"<s>", " Once", " upon"}),
      Doc(8, {4}, {{{10, 3e38f}}}),  // no strings
      Doc(9, {}, {}),                // no tokens
  };
  SAEDICT_ASSERT_OK_AND_ASSIGN(IngestBatchResult r,
                               corpus()->WriteIngestBatch(Batch("d", "c", docs)));
  EXPECT_EQ(r.documents, 3);
  EXPECT_EQ(r.tokens, 4);
  EXPECT_EQ(r.replaced_documents, 0);

  std::optional<StoredDocument> doc = Document("c", 7);
  ASSERT_TRUE(doc.has_value());
  EXPECT_THAT(doc->token_ids, ElementsAre(1, 2, 3));
  EXPECT_THAT(doc->token_strings, ElementsAre("<s>", " Once", " upon"));
  doc = Document("c", 8);
  ASSERT_TRUE(doc.has_value());
  EXPECT_THAT(doc->token_strings, IsEmpty());

  std::optional<StoredCodes> codes = Codes("d", "c", 7);
  ASSERT_TRUE(codes.has_value());
  EXPECT_EQ(codes->precision, ValuePrecision::kF32);
  EXPECT_EQ(codes->codes.num_rows, 3);
  EXPECT_EQ(codes->codes.num_features, 0);  // the store does not keep d_sae
  EXPECT_THAT(codes->codes.row_offsets, ElementsAre(0, 2, 2, 3));
  EXPECT_THAT(codes->codes.indices, ElementsAre(0, 63, 6));
  EXPECT_THAT(codes->codes.values, ElementsAre(1.5f, -2.25f, 1e-30f));  // exact
  codes = Codes("d", "c", 9);
  ASSERT_TRUE(codes.has_value());
  EXPECT_EQ(codes->codes.num_rows, 0);

  EXPECT_FALSE(Document("c", 10).has_value());
  EXPECT_FALSE(Document("other", 7).has_value());
  EXPECT_FALSE(Codes("other", "c", 7).has_value());
  EXPECT_FALSE(Codes("d", "c", 10).has_value());
  EXPECT_FALSE(Codes("d", "other", 7).has_value());
  SAEDICT_ASSERT_OK_AND_ASSIGN(FeatureStatsRecord stats5, corpus()->GetFeatureStats("d", 5));
  EXPECT_EQ(stats5.count, 0);  // the zero was dropped
  EXPECT_THAT(Top("d", 5, 10), IsEmpty());
  const DictionaryTotals totals = Totals("d");
  EXPECT_EQ(totals.tokens, 4);
  EXPECT_EQ(totals.documents, 3);
}

TEST_P(StoreContractTest, F16RoundsAndFallsBackToF32PerDocument) {
  Register("d");
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch(
                  "d", "c",
                  {Doc(1, {1, 2}, {{{0, 0.1f}, {1, 1e-9f}}, {{2, 3.0f}}}),  // 1e-9 is 0 in half
                   Doc(2, {1}, {{{0, 70000.0f}, {1, 0.1f}}})},              // beyond half's range
                  ValuePrecision::kF16)),
              IsOk());
  std::optional<StoredCodes> small = Codes("d", "c", 1);
  ASSERT_TRUE(small.has_value());
  EXPECT_EQ(small->precision, ValuePrecision::kF16);
  EXPECT_THAT(small->codes.indices, ElementsAre(0, 2));
  EXPECT_THAT(small->codes.values, ElementsAre(F16ToFloat(FloatToF16(0.1f)), 3.0f));
  std::optional<StoredCodes> big = Codes("d", "c", 2);
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->precision, ValuePrecision::kF32);
  EXPECT_THAT(big->codes.values, ElementsAre(70000.0f, 0.1f));
  // Queries see the stored (rounded) values.
  EXPECT_THAT(Top("d", 0, 5),
              ElementsAre(Ref{"c", 2, 0, 70000.0f}, Ref{"c", 1, 0, F16ToFloat(FloatToF16(0.1f))}));
}

TEST_P(StoreContractTest, InvalidBatchesStoreNothing) {
  Register("d");
  struct Case {
    std::string name;
    IngestBatch batch;
    std::string message;
  };
  IngestDocument good = Doc(1, {1}, {{{0, 1.0f}}});
  std::vector<Case> cases = {
      {"no dictionary", Batch("", "c", {good}), "empty dictionary id"},
      {"no corpus", Batch("d", "", {good}), "empty corpus"},
      {"d_sae 0", Batch("d", "c", {good}, ValuePrecision::kF32, "", 0), "d_sae 0"},
      {"index >= d_sae", Batch("d", "c", {good, Doc(2, {1}, {{{64, 1.0f}}})}),
       "documents[1] (doc_id 2): codes.indices[0] = 64 (token 0) is not below d_sae 64"},
      {"not ascending", Batch("d", "c", {Doc(2, {1}, {{{3, 1.0f}, {3, 2.0f}}})}),
       "does not ascend"},
      {"NaN", Batch("d", "c", {Doc(2, {1}, {{{3, std::nanf("")}}})}), "not finite"},
      {"strings", Batch("d", "c", {Doc(2, {1, 2}, {{}, {}}, {"a"})}), "token_strings has 1"},
      {"duplicate", Batch("d", "c", {good, good}), "duplicate doc_id"},
  };
  IngestBatch rows = Batch("d", "c", {good});
  rows.documents[0].token_ids.push_back(2);  // two tokens, one row of codes
  cases.push_back({"rows", rows, "there are 2 tokens"});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(corpus()->WriteIngestBatch(c.batch),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
  }
  EXPECT_FALSE(Document("c", 1).has_value());
  EXPECT_FALSE(Codes("d", "c", 1).has_value());
  EXPECT_EQ(Totals("d").documents, 0);
}

TEST_P(StoreContractTest, DictionaryRecordAndWeightsChecks) {
  EXPECT_THAT(corpus()->WriteIngestBatch(Batch("ghost", "c", {Doc(1, {1}, {{{0, 1.0f}}})})),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("dictionary 'ghost' has no record")));
  Register("d", 64, "aaa");
  EXPECT_THAT(corpus()->WriteIngestBatch(
                  Batch("d", "c", {Doc(1, {1}, {{{0, 1.0f}}})}, ValuePrecision::kF32, "bbb")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("encoded with weights sha256 bbb, the dictionary now has aaa")));
  EXPECT_FALSE(Document("c", 1).has_value());
  EXPECT_THAT(corpus()->WriteIngestBatch(
                  Batch("d", "c", {Doc(1, {1}, {{{0, 1.0f}}})}, ValuePrecision::kF32, "aaa")),
              IsOk());
  EXPECT_THAT(corpus()->WriteIngestBatch(Batch("d", "c", {Doc(2, {1}, {{{0, 1.0f}}})})),
              IsOk());  // no hash: no check
  EXPECT_EQ(Totals("d").documents, 2);
}

TEST_P(StoreContractTest, ReIngestReplacesCodesIndexAndStatistics) {
  Register("d");
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch(
                  "d", "c", {Doc(1, {5, 6}, {{{5, 2.0f}, {6, 1.0f}}, {{5, 4.0f}}}, {"a", "b"})})),
              IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      IngestBatchResult r,
      corpus()->WriteIngestBatch(Batch("d", "c", {Doc(1, {5, 6}, {{}, {{5, 3.0f}}})})));
  EXPECT_EQ(r.replaced_documents, 1);
  std::optional<StoredCodes> codes = Codes("d", "c", 1);
  ASSERT_TRUE(codes.has_value());
  EXPECT_THAT(codes->codes.indices, ElementsAre(5));
  EXPECT_THAT(codes->codes.values, ElementsAre(3.0f));
  SAEDICT_ASSERT_OK_AND_ASSIGN(FeatureStatsRecord s5, corpus()->GetFeatureStats("d", 5));
  EXPECT_EQ(s5.count, 1);
  EXPECT_DOUBLE_EQ(s5.sum, 3.0);
  EXPECT_DOUBLE_EQ(s5.sum_sq, 9.0);
  EXPECT_EQ(s5.max, 3.0f);
  EXPECT_THAT(s5.bins, ElementsAre(std::pair<int32_t, int64_t>{HistogramBin(3.0f), 1}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(FeatureStatsRecord s6, corpus()->GetFeatureStats("d", 6));
  EXPECT_EQ(s6.count, 0);
  EXPECT_FALSE(s6.max.has_value());
  EXPECT_THAT(s6.bins, IsEmpty());
  EXPECT_THAT(Top("d", 5, 10), ElementsAre(Ref{"c", 1, 1, 3.0f}));  // old entries gone
  EXPECT_THAT(Top("d", 6, 10), IsEmpty());
  EXPECT_EQ(Totals("d").documents, 1);
  EXPECT_EQ(Totals("d").tokens, 2);
  // Same tokens without strings keep the stored strings; new strings replace them.
  EXPECT_THAT(Document("c", 1)->token_strings, ElementsAre("a", "b"));
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("d", "c", {Doc(1, {5, 6}, {{}, {}}, {"x", "y"})})),
              IsOk());
  EXPECT_THAT(Document("c", 1)->token_strings, ElementsAre("x", "y"));
  // Other tokens are fine while no other dictionary holds codes for it.
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("d", "c", {Doc(1, {9}, {{{5, 1.0f}}})})), IsOk());
  EXPECT_THAT(Document("c", 1)->token_ids, ElementsAre(9));
  EXPECT_THAT(Document("c", 1)->token_strings, IsEmpty());
  EXPECT_EQ(Totals("d").tokens, 1);
}

TEST_P(StoreContractTest, OtherTokensRefusedWhileAnotherDictionaryHoldsCodes) {
  Register("a");
  Register("b");
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "c", {Doc(1, {1, 2}, {{{0, 1.0f}}, {}})})),
              IsOk());
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("b", "c", {Doc(1, {1, 2}, {{}, {{3, 2.0f}}})})),
              IsOk());
  EXPECT_THAT(corpus()->WriteIngestBatch(
                  Batch("b", "c", {Doc(2, {7}, {{}}), Doc(1, {3, 4}, {{{0, 5.0f}}, {}})})),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("corpus 'c' document 1 is stored with different tokens and "
                                 "dictionary 'a' holds codes for it")));
  // Nothing of the batch was written.
  EXPECT_FALSE(Document("c", 2).has_value());
  EXPECT_THAT(Document("c", 1)->token_ids, ElementsAre(1, 2));
  EXPECT_THAT(Codes("b", "c", 1)->codes.indices, ElementsAre(3));
  // Once a's data is gone, b may store the document with other tokens.
  ASSERT_THAT(corpus()->DeleteDictionaryData("a"), IsOk());
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("b", "c", {Doc(1, {3, 4}, {{{0, 5.0f}}, {}})})),
              IsOk());
  EXPECT_THAT(Document("c", 1)->token_ids, ElementsAre(3, 4));
}

TEST_P(StoreContractTest, StatisticsHistogramAndTotals) {
  Register("d");
  ASSERT_THAT(
      corpus()->WriteIngestBatch(Batch("d", "c",
                                       {Doc(1, {1, 2}, {{{3, 0.5f}}, {{3, 2.0f}, {4, 1.0f}}}),
                                        Doc(2, {1, 2, 3}, {{{3, 2.0f}}, {}, {{3, -1.5f}}})})),
      IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(FeatureStatsRecord s, corpus()->GetFeatureStats("d", 3));
  EXPECT_EQ(s.count, 4);
  EXPECT_DOUBLE_EQ(s.sum, 3.0);
  EXPECT_DOUBLE_EQ(s.sum_sq, 0.25 + 4 + 4 + 2.25);
  EXPECT_EQ(s.max, 2.0f);
  // Quarter-octave bins: 2.0 opens bin 605, 0.5 bin 597, -1.5 is -(bin of 1.5).
  EXPECT_EQ(HistogramBin(2.0f), 605);
  EXPECT_EQ(HistogramBin(0.5f), 597);
  EXPECT_THAT(s.bins, ElementsAre(std::pair<int32_t, int64_t>{-HistogramBin(1.5f), 1},
                                  std::pair<int32_t, int64_t>{597, 1},
                                  std::pair<int32_t, int64_t>{605, 2}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(FeatureStatsRecord never, corpus()->GetFeatureStats("d", 9));
  EXPECT_EQ(never.count, 0);
  EXPECT_FALSE(never.max.has_value());
  SAEDICT_ASSERT_OK_AND_ASSIGN(FeatureStatsRecord unknown, corpus()->GetFeatureStats("x", 3));
  EXPECT_EQ(unknown.count, 0);
  EXPECT_THAT(corpus()->GetFeatureStats("d", 0xFFFFFFFFu),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("4294967295 is reserved")));
  EXPECT_EQ(Totals("d").tokens, 5);
  EXPECT_EQ(Totals("d").documents, 2);
  EXPECT_EQ(Totals("x").tokens, 0);
  EXPECT_EQ(Totals("x").documents, 0);
}

TEST_P(StoreContractTest, TopTokensOrderTiesAndSeek) {
  Register("d");
  // "zeta" is ingested first, so it has the lower corpus number: its ties
  // come before "alpha"'s although it sorts after it by name.
  ASSERT_THAT(corpus()->WriteIngestBatch(
                  Batch("d", "zeta",
                        {Doc(5, {1, 1}, {{{7, 1.0f}}, {{7, 3.0f}}}), Doc(2, {1}, {{{7, 3.0f}}}),
                         Doc(9, {1, 1}, {{{7, 2.5f}}, {{7, 0.5f}}})})),
              IsOk());
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch(
                  "d", "alpha", {Doc(1, {1, 1, 1}, {{{7, 3.0f}}, {{7, 2.0f}}, {{7, -4.0f}}})})),
              IsOk());
  const std::vector<Ref> all = {{"zeta", 2, 0, 3.0f}, {"zeta", 5, 1, 3.0f},  {"alpha", 1, 0, 3.0f},
                                {"zeta", 9, 0, 2.5f}, {"alpha", 1, 1, 2.0f}, {"zeta", 5, 0, 1.0f},
                                {"zeta", 9, 1, 0.5f}, {"alpha", 1, 2, -4.0f}};
  EXPECT_EQ(Top("d", 7, 100), all);
  EXPECT_EQ(Top("d", 7, 2), std::vector<Ref>(all.begin(), all.begin() + 2));
  EXPECT_EQ(Top("d", 7, 4), std::vector<Ref>(all.begin(), all.begin() + 4));
  // A seek: only documents whose peak is <= 2.5 (zeta 9), not an exact ranking.
  EXPECT_THAT(Top("d", 7, 10, 2.5f), ElementsAre(Ref{"zeta", 9, 0, 2.5f}, Ref{"zeta", 9, 1, 0.5f}));
  EXPECT_EQ(Top("d", 7, 100, 3.0f), all);
  EXPECT_THAT(Top("d", 7, 10, 0.1f), IsEmpty());
  EXPECT_THAT(Top("d", 7, 0), IsEmpty());
  EXPECT_THAT(Top("d", 8, 10), IsEmpty());
  EXPECT_THAT(Top("nope", 7, 10), IsEmpty());
  EXPECT_THAT(corpus()->TopTokens("d", 7, -1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("limit -1")));
  EXPECT_THAT(corpus()->TopTokens("d", 7, 1, std::nanf("")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NaN")));
}

TEST_P(StoreContractTest, SampleTokensInRangesSpreadsOverEachRange) {
  Register("d");
  std::vector<IngestDocument> docs;
  for (uint64_t i = 1; i <= 20; ++i) docs.push_back(Doc(i, {1}, {{{1, static_cast<float>(i)}}}));
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("d", "c", docs)), IsOk());
  auto values = [](const std::vector<TokenRef>& refs) {
    std::vector<float> out;
    for (const TokenRef& r : refs) out.push_back(r.value);
    return out;
  };
  const std::vector<CorpusStore::ValueRange> ranges = {
      {1, 5, false}, {5, 10, false}, {10, 20, true}, {7, 7, false}, {100, 200, false}};
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto wide, corpus()->SampleTokensInRanges("d", 1, ranges, 2, 100));
  ASSERT_EQ(wide.size(), 5u);
  for (const std::vector<TokenRef>& refs : wide) ExpectAttached("d", 1, refs);
  EXPECT_THAT(values(wide[0]), ElementsAre(3, 1));  // candidates 4 3 2 1: ranks 1 and 3
  EXPECT_THAT(values(wide[1]), ElementsAre(8, 6));
  EXPECT_THAT(values(wide[2]), ElementsAre(18, 12));  // 20 included (upper_inclusive)
  EXPECT_THAT(values(wide[3]), ElementsAre(7));       // degenerate range holds its value
  EXPECT_THAT(wide[4], IsEmpty());
  EXPECT_EQ(wide[3][0].corpus, "c");
  EXPECT_EQ(wide[3][0].doc_id, 7u);
  EXPECT_EQ(wide[3][0].position, 0u);

  // Three candidates per range: documents are read by descending peak until
  // every range that can still gain holds three.
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      auto narrow, corpus()->SampleTokensInRanges("d", 1, {ranges[0], ranges[1], ranges[2]}, 2, 3));
  EXPECT_THAT(values(narrow[0]), ElementsAre(4, 2));
  EXPECT_THAT(values(narrow[1]), ElementsAre(9, 7));
  EXPECT_THAT(values(narrow[2]), ElementsAre(20, 18));

  SAEDICT_ASSERT_OK_AND_ASSIGN(auto zero, corpus()->SampleTokensInRanges("d", 1, ranges, 0, 10));
  ASSERT_EQ(zero.size(), 5u);
  for (const auto& r : zero) EXPECT_THAT(r, IsEmpty());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto unknown,
                               corpus()->SampleTokensInRanges("nope", 1, ranges, 2, 10));
  EXPECT_EQ(unknown.size(), 5u);

  EXPECT_THAT(corpus()->SampleTokensInRanges("d", 1, {{std::nanf(""), 1, false}}, 1, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("range 0")));
  EXPECT_THAT(corpus()->SampleTokensInRanges("d", 1, {ranges[0], {3, 2, false}}, 1, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("range 1 [3, 2]")));
  EXPECT_THAT(corpus()->SampleTokensInRanges("d", 1, ranges, -1, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("per_range -1")));
  EXPECT_THAT(corpus()->SampleTokensInRanges("d", 1, ranges, 3, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("candidates 2")));
}

TEST_P(StoreContractTest, DeleteDictionaryDataKeepsDocumentsAndRecord) {
  Register("a");
  Register("b");
  for (const char* dict : {"a", "b"}) {
    ASSERT_THAT(corpus()->WriteIngestBatch(Batch(dict, "c", {Doc(1, {1, 2}, {{{0, 1.0f}}, {}})})),
                IsOk());
  }
  ASSERT_THAT(corpus()->DeleteDictionaryData("a"), IsOk());
  EXPECT_FALSE(Codes("a", "c", 1).has_value());
  EXPECT_EQ(Totals("a").documents, 0);
  EXPECT_EQ(corpus()->GetFeatureStats("a", 0)->count, 0);
  EXPECT_THAT(Top("a", 0, 10), IsEmpty());
  EXPECT_TRUE(Document("c", 1).has_value());    // documents belong to their corpus
  EXPECT_TRUE(Codes("b", "c", 1).has_value());  // other dictionaries keep theirs
  EXPECT_TRUE(store_->GetDictionary("a")->has_value());
  EXPECT_THAT(corpus()->DeleteDictionaryData("a"), IsOk());
  EXPECT_THAT(corpus()->DeleteDictionaryData("never"), IsOk());
  // Ingesting again starts afresh.
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      IngestBatchResult r,
      corpus()->WriteIngestBatch(Batch("a", "c", {Doc(1, {1, 2}, {{}, {{2, 2.0f}}})})));
  EXPECT_EQ(r.replaced_documents, 0);
  EXPECT_THAT(Top("a", 2, 10), ElementsAre(Ref{"c", 1, 1, 2.0f}));
}

// Documents of one corpus both dictionaries hold, in document order, with
// each side's own codes; documents of one side only, other corpora and
// unknown names are left out.
TEST_P(StoreContractTest, ScanCodePairsJoinsTwoDictionariesOnOneCorpus) {
  Register("a");
  Register("b");
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "c",
                                               {Doc(3, {1, 2}, {{{0, 1.0f}}, {}}),
                                                Doc(1, {5}, {{{4, 2.0f}}}), Doc(300, {7}, {{}})})),
              IsOk());
  ASSERT_THAT(
      corpus()->WriteIngestBatch(Batch(
          "b", "c",
          {Doc(1, {5}, {{{9, 3.0f}}}), Doc(3, {1, 2}, {{}, {{1, 4.0f}}}), Doc(7, {8}, {{}})})),
      IsOk());
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "other", {Doc(7, {8}, {{}})})), IsOk());
  std::vector<uint64_t> docs;
  std::vector<std::pair<float, float>> values;
  ASSERT_THAT(
      corpus()->ScanCodePairs("a", "b", "c",
                              [&](uint64_t doc, const StoredCodes& a, const StoredCodes& b) {
                                docs.push_back(doc);
                                const float va = a.codes.values.empty() ? 0 : a.codes.values[0];
                                const float vb = b.codes.values.empty() ? 0 : b.codes.values[0];
                                values.emplace_back(va, vb);
                                return absl::OkStatus();
                              }),
      IsOk());
  EXPECT_THAT(docs, ElementsAre(1, 3));
  EXPECT_THAT(values, ElementsAre(std::pair<float, float>(2, 3), std::pair<float, float>(1, 4)));
  // A dictionary against itself: every one of its documents, the same codes twice.
  docs.clear();
  ASSERT_THAT(
      corpus()->ScanCodePairs("a", "a", "c",
                              [&](uint64_t doc, const StoredCodes& x, const StoredCodes& y) {
                                docs.push_back(doc);
                                EXPECT_EQ(x.codes.values, y.codes.values);
                                EXPECT_EQ(x.codes.indices, y.codes.indices);
                                return absl::OkStatus();
                              }),
      IsOk());
  EXPECT_THAT(docs, ElementsAre(1, 3, 300));
  int calls = 0;
  auto count = [&](uint64_t, const StoredCodes&, const StoredCodes&) {
    ++calls;
    return absl::OkStatus();
  };
  EXPECT_THAT(corpus()->ScanCodePairs("a", "nope", "c", count), IsOk());
  EXPECT_THAT(corpus()->ScanCodePairs("a", "b", "nope", count), IsOk());
  EXPECT_EQ(calls, 0);
  // fn's error stops the scan and comes back.
  EXPECT_THAT(corpus()->ScanCodePairs("a", "b", "c",
                                      [&](uint64_t, const StoredCodes&, const StoredCodes&) {
                                        ++calls;
                                        return absl::AbortedError("stop");
                                      }),
              StatusIs(absl::StatusCode::kAborted, ::testing::_));
  EXPECT_EQ(calls, 1);
}

TEST_P(StoreContractTest, DeleteAndReplaceDictionaryDropLatents) {
  Register("d", 64, "old");
  ASSERT_THAT(corpus()->WriteIngestBatch(
                  Batch("d", "c", {Doc(1, {1}, {{{0, 1.0f}}})}, ValuePrecision::kF32, "old")),
              IsOk());
  records::v1::DictionaryRecord replacement = Record("d", 32, "new");
  ASSERT_THAT(store_->ReplaceDictionary(replacement), IsOk());
  EXPECT_EQ((*store_->GetDictionary("d"))->info().weights_sha256(), "new");
  EXPECT_FALSE(Codes("d", "c", 1).has_value());
  EXPECT_EQ(Totals("d").documents, 0);
  EXPECT_THAT(corpus()->WriteIngestBatch(
                  Batch("d", "c", {Doc(2, {1}, {{{0, 1.0f}}})}, ValuePrecision::kF32, "old")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("was replaced")));
  ASSERT_THAT(corpus()->WriteIngestBatch(
                  Batch("d", "c", {Doc(2, {1}, {{{0, 1.0f}}})}, ValuePrecision::kF32, "new")),
              IsOk());

  ASSERT_THAT(store_->DeleteDictionary("d"), IsOk());
  EXPECT_FALSE(store_->GetDictionary("d")->has_value());
  EXPECT_FALSE(Codes("d", "c", 2).has_value());
  EXPECT_TRUE(Document("c", 2).has_value());
  EXPECT_THAT(corpus()->WriteIngestBatch(Batch("d", "c", {Doc(3, {1}, {{}})})),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'d'")));
}

TEST_P(StoreContractTest, CheckpointIsAStoreWithTheSameContents) {
  Register("a");
  Register("b", 16);
  Register("gone");
  ASSERT_THAT(corpus()->WriteIngestBatch(
                  Batch("a", "zeta", {Doc(4, {1, 2}, {{{3, 2.0f}}, {}}, {"x", "y"})})),
              IsOk());
  ASSERT_THAT(corpus()->WriteIngestBatch(
                  Batch("b", "alpha", {Doc(1, {7}, {{{3, 2.0f}}})}, ValuePrecision::kF16)),
              IsOk());
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "alpha", {Doc(1, {7}, {{{3, 2.0f}}})})),
              IsOk());
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("gone", "alpha", {Doc(8, {9, 9}, {{}, {}})})),
              IsOk());
  ASSERT_THAT(store_->DeleteDictionary("gone"), IsOk());  // document 8 stays, without codes

  const fs::path target = dir_.path() / "checkpoint";
  ASSERT_THAT(store_->Checkpoint(target), IsOk());
  EXPECT_THAT(store_->Checkpoint(target),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("already exists")));

  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> copy,
                               Store::Open({target, /*create_if_missing=*/false}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<records::v1::DictionaryRecord> records,
                               copy->ListDictionaries());
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].SerializeAsString(), Record("a").SerializeAsString());
  EXPECT_EQ(records[1].SerializeAsString(), Record("b", 16).SerializeAsString());
  for (auto [c, doc] :
       std::vector<std::pair<std::string, uint64_t>>{{"zeta", 4}, {"alpha", 1}, {"alpha", 8}}) {
    SCOPED_TRACE(absl::StrCat(c, " ", doc));
    SAEDICT_ASSERT_OK_AND_ASSIGN(std::optional<StoredDocument> got,
                                 copy->corpus()->GetDocument(c, doc));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->token_ids, Document(c, doc)->token_ids);
    EXPECT_EQ(got->token_strings, Document(c, doc)->token_strings);
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::optional<StoredCodes> f16,
                               copy->corpus()->GetCodes("b", "alpha", 1));
  ASSERT_TRUE(f16.has_value());
  EXPECT_EQ(f16->precision, ValuePrecision::kF16);
  // Ties keep the corpus order: zeta (ingested first) before alpha.
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<TokenRef> top, copy->corpus()->TopTokens("a", 3, 10));
  EXPECT_THAT(Refs(top), ElementsAre(Ref{"zeta", 4, 0, 2.0f}, Ref{"alpha", 1, 0, 2.0f}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(DictionaryTotals totals, copy->corpus()->GetDictionaryTotals("a"));
  EXPECT_EQ(totals.tokens, 3);
  EXPECT_EQ(totals.documents, 2);
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::optional<StoredCodes> gone,
                               copy->corpus()->GetCodes("gone", "alpha", 8));
  EXPECT_FALSE(gone.has_value());
}

TEST_P(StoreContractTest, ConcurrentIngestsAreAtomicForReaders) {
  Register("d");
  constexpr int kWriters = 3, kBatches = 15, kDocsPerBatch = 4, kTokens = 3;
  std::atomic<bool> done{false};
  std::atomic<int> bad_reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      absl::StatusOr<DictionaryTotals> t = corpus()->GetDictionaryTotals("d");
      // A batch is visible whole or not at all.
      if (!t.ok() || t->tokens != t->documents * kTokens || t->documents % kDocsPerBatch != 0) {
        ++bad_reads;
      }
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<IngestDocument> docs;
        for (int i = 0; i < kDocsPerBatch; ++i) {
          const uint64_t id = (w * kBatches + b) * kDocsPerBatch + i;
          docs.push_back(Doc(id, {1, 2, 3}, {{{0, 1.0f}}, {}, {{1, static_cast<float>(id)}}}));
        }
        EXPECT_THAT(corpus()->WriteIngestBatch(Batch("d", "c", std::move(docs))), IsOk());
      }
    });
  }
  for (std::thread& t : writers) t.join();
  done = true;
  reader.join();
  EXPECT_EQ(bad_reads.load(), 0);
  EXPECT_EQ(Totals("d").documents, kWriters * kBatches * kDocsPerBatch);
  EXPECT_EQ(corpus()->GetFeatureStats("d", 0)->count, kWriters * kBatches * kDocsPerBatch);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreContractTest, ::testing::Values(kRocksDb, kInMemory),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param.name;
                         });

// --- Both backends, one random workload ---------------------------------------

// Compares every answer of `a` and `b` about the dictionaries and documents
// the workload can have touched.
void ExpectSameAnswers(Store& a, Store& b, const std::vector<std::string>& dicts,
                       const std::vector<std::string>& corpora, uint64_t max_doc, uint32_t d_sae) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<records::v1::DictionaryRecord> ra, a.ListDictionaries());
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<records::v1::DictionaryRecord> rb, b.ListDictionaries());
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) {
    EXPECT_EQ(ra[i].SerializeAsString(), rb[i].SerializeAsString());
  }
  for (const std::string& c : corpora) {
    for (uint64_t doc = 0; doc <= max_doc; ++doc) {
      SCOPED_TRACE(absl::StrCat("corpus ", c, " doc ", doc));
      SAEDICT_ASSERT_OK_AND_ASSIGN(auto da, a.corpus()->GetDocument(c, doc));
      SAEDICT_ASSERT_OK_AND_ASSIGN(auto db, b.corpus()->GetDocument(c, doc));
      ASSERT_EQ(da.has_value(), db.has_value());
      if (da) {
        EXPECT_EQ(da->token_ids, db->token_ids);
        EXPECT_EQ(da->token_strings, db->token_strings);
      }
      for (const std::string& dict : dicts) {
        SAEDICT_ASSERT_OK_AND_ASSIGN(auto ca, a.corpus()->GetCodes(dict, c, doc));
        SAEDICT_ASSERT_OK_AND_ASSIGN(auto cb, b.corpus()->GetCodes(dict, c, doc));
        ASSERT_EQ(ca.has_value(), cb.has_value()) << dict;
        if (ca) {
          EXPECT_EQ(ca->precision, cb->precision);
          EXPECT_EQ(ca->codes.num_rows, cb->codes.num_rows);
          EXPECT_EQ(ca->codes.num_features, cb->codes.num_features);
          EXPECT_EQ(ca->codes.row_offsets, cb->codes.row_offsets);
          EXPECT_EQ(ca->codes.indices, cb->codes.indices);
          EXPECT_EQ(ca->codes.values, cb->codes.values);
        }
      }
    }
  }
  for (const std::string& dict : dicts) {
    SCOPED_TRACE(dict);
    SAEDICT_ASSERT_OK_AND_ASSIGN(DictionaryTotals ta, a.corpus()->GetDictionaryTotals(dict));
    SAEDICT_ASSERT_OK_AND_ASSIGN(DictionaryTotals tb, b.corpus()->GetDictionaryTotals(dict));
    EXPECT_EQ(ta.tokens, tb.tokens);
    EXPECT_EQ(ta.documents, tb.documents);
    for (uint32_t f = 0; f < d_sae; ++f) {
      SCOPED_TRACE(absl::StrCat("feature ", f));
      SAEDICT_ASSERT_OK_AND_ASSIGN(FeatureStatsRecord sa, a.corpus()->GetFeatureStats(dict, f));
      SAEDICT_ASSERT_OK_AND_ASSIGN(FeatureStatsRecord sb, b.corpus()->GetFeatureStats(dict, f));
      EXPECT_EQ(sa.count, sb.count);
      EXPECT_NEAR(sa.sum, sb.sum, 1e-6 + 1e-9 * sa.sum_sq);  // RocksDB adds and subtracts deltas
      EXPECT_NEAR(sa.sum_sq, sb.sum_sq, 1e-6 + 1e-9 * sa.sum_sq);
      EXPECT_EQ(sa.max, sb.max);
      EXPECT_EQ(sa.bins, sb.bins);
      for (int64_t limit : {1, 3, 1000}) {
        for (std::optional<float> start :
             {std::optional<float>(), std::optional<float>(2.0f), std::optional<float>(0.5f)}) {
          SAEDICT_ASSERT_OK_AND_ASSIGN(auto top_a, a.corpus()->TopTokens(dict, f, limit, start));
          SAEDICT_ASSERT_OK_AND_ASSIGN(auto top_b, b.corpus()->TopTokens(dict, f, limit, start));
          EXPECT_EQ(Refs(top_a), Refs(top_b)) << "limit " << limit;
        }
      }
      const std::vector<CorpusStore::ValueRange> ranges = {
          {-8, 0, false}, {0, 1, false}, {1, 1, false}, {1, 3, false}, {3, 8, true}};
      for (int64_t candidates : {2, 5, 100}) {
        SAEDICT_ASSERT_OK_AND_ASSIGN(
            auto sa_r, a.corpus()->SampleTokensInRanges(dict, f, ranges, 2, candidates));
        SAEDICT_ASSERT_OK_AND_ASSIGN(
            auto sb_r, b.corpus()->SampleTokensInRanges(dict, f, ranges, 2, candidates));
        ASSERT_EQ(sa_r.size(), sb_r.size());
        for (size_t i = 0; i < sa_r.size(); ++i) {
          EXPECT_EQ(Refs(sa_r[i]), Refs(sb_r[i])) << "range " << i << " candidates " << candidates;
        }
      }
    }
  }
}

TEST(StoreBackendsTest, BackendsAgreeOnARandomWorkload) {
  ScratchDir dir;
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> rocks, kRocksDb.open(dir.path()));
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> fake, kInMemory.open(dir.path()));
  Store* stores[2] = {rocks.get(), fake.get()};
  constexpr uint32_t kDSae = 12;
  constexpr uint64_t kMaxDoc = 14;
  const std::vector<std::string> dicts = {"d1", "d2", "unregistered"};
  const std::vector<std::string> corpora = {"web", "books", "code"};
  std::mt19937 rng(20240611);
  // Each (corpus, doc) usually keeps its tokens, so re-ingests replace; now
  // and then a document comes with other tokens (refused while another
  // dictionary holds codes for it).
  std::map<std::pair<std::string, uint64_t>, std::vector<int32_t>> tokens_of;
  auto random_doc = [&](const std::string& corpus, uint64_t id) {
    std::vector<int32_t>& tokens = tokens_of[{corpus, id}];
    if (tokens.empty() || rng() % 10 == 0) {
      tokens.assign(1 + rng() % 5, 0);
      for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % 50);
    }
    std::vector<Row> rows;
    for (size_t t = 0; t < tokens.size(); ++t) {
      Row row;
      for (uint32_t f = 0; f < kDSae; ++f) {
        if (rng() % 4 != 0) continue;
        const uint32_t kind = rng() % 10;
        float v = static_cast<float>(rng() % 64) / 8.0f;  // ties are common
        if (kind == 0) v = -v;
        if (kind == 1) v = 0.1f + static_cast<float>(rng() % 1000) / 7.0f;
        row.emplace_back(f, v);
      }
      rows.push_back(row);
    }
    std::vector<std::string> strings;
    if (rng() % 2 == 0) {
      for (int32_t t : tokens) strings.push_back(absl::StrCat("t", t));
    }
    return Doc(id, tokens, rows, strings);
  };
  for (Store* s : stores) {
    ASSERT_THAT(s->PutDictionary(Record("d1", kDSae, "w1")), IsOk());
    ASSERT_THAT(s->PutDictionary(Record("d2", kDSae, "w2")), IsOk());
  }
  int replaced = 0, refused = 0;
  for (int step = 0; step < 120; ++step) {
    SCOPED_TRACE(absl::StrCat("step ", step));
    const uint32_t op = rng() % 20;
    if (op == 0) {
      const std::string& dict = dicts[rng() % 2];
      for (Store* s : stores) ASSERT_THAT(s->corpus()->DeleteDictionaryData(dict), IsOk());
    } else if (op == 1) {
      const std::string& dict = dicts[rng() % 2];
      const std::string sha = absl::StrCat("w", step);
      for (Store* s : stores) ASSERT_THAT(s->ReplaceDictionary(Record(dict, kDSae, sha)), IsOk());
    } else {
      const std::string& dict = dicts[rng() % dicts.size()];
      const std::string& corpus = corpora[rng() % corpora.size()];
      std::vector<IngestDocument> docs;
      std::set<uint64_t> ids;
      for (int i = 1 + rng() % 4; i > 0; --i) ids.insert(rng() % (kMaxDoc + 1));
      for (uint64_t id : ids) docs.push_back(random_doc(corpus, id));
      const IngestBatch batch =
          Batch(dict, corpus, docs, rng() % 3 == 0 ? ValuePrecision::kF16 : ValuePrecision::kF32,
                "", kDSae);
      absl::StatusOr<IngestBatchResult> ra = rocks->corpus()->WriteIngestBatch(batch);
      absl::StatusOr<IngestBatchResult> rf = fake->corpus()->WriteIngestBatch(batch);
      ASSERT_EQ(ra.status(), rf.status());  // same code and message
      if (ra.ok()) {
        EXPECT_EQ(ra->documents, rf->documents);
        EXPECT_EQ(ra->tokens, rf->tokens);
        EXPECT_EQ(ra->replaced_documents, rf->replaced_documents);
        replaced += ra->replaced_documents;
      } else if (ra.status().code() == absl::StatusCode::kFailedPrecondition) {
        ++refused;
      }
    }
    if (step % 40 == 39) ExpectSameAnswers(*rocks, *fake, dicts, corpora, kMaxDoc, kDSae);
  }
  // The workload reached the interesting paths.
  EXPECT_GT(replaced, 10);
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace saedict::storage
