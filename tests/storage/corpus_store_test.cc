// CorpusStore through Store against a real RocksDB directory: round trips of
// every record kind, TopTokens order and seeks, validation errors that leave
// the store unchanged, NOT_FOUND / FAILED_PRECONDITION, DeleteDictionary,
// reopen, checkpoints and a corrupt statistics operand.
#include <cmath>
#include <filesystem>
#include <functional>
#include <random>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/column_families.h"
#include "storage/keys.h"
#include "storage/store.h"
#include "tests/storage/corpus_test_util.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"
#include "util/half.h"

namespace saedict::storage {
namespace {

using ::saedict::storage::testing::Batch;
using ::saedict::storage::testing::DictRecord;
using ::saedict::storage::testing::Doc;
using ::saedict::storage::testing::RandomDocument;
using ::saedict::testing::IsOk;
using ::saedict::testing::ScratchDir;
using ::saedict::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The codes with exact zeros removed (what the store keeps).
DocumentCodes WithoutZeros(const DocumentCodes& in) {
  DocumentCodes out;
  for (int64_t t = 0; t < in.num_rows; ++t) {
    for (uint64_t j = in.row_offsets[t]; j < in.row_offsets[t + 1]; ++j) {
      if (in.values[j] == 0) continue;
      out.indices.push_back(in.indices[j]);
      out.values.push_back(in.values[j]);
    }
    out.row_offsets.push_back(out.indices.size());
    ++out.num_rows;
  }
  return out;
}

class CorpusStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open() {
    auto store = Store::Open({dir_.path() / "db"});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
  }
  void Register(const std::string& id, int64_t d_sae = 64) {
    ASSERT_THAT(store_->PutDictionary(DictRecord(id, d_sae)), IsOk());
  }
  CorpusStore* corpus() { return store_->corpus(); }

  ScratchDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(CorpusStoreTest, DocumentsAndF32CodesRoundTrip) {
  Register("d");
  std::vector<IngestDocument> docs = {
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
  for (const IngestDocument& doc : docs) {
    SCOPED_TRACE(doc.doc_id);
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto got, corpus()->GetDocument("c", doc.doc_id));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->token_ids, doc.token_ids);
    EXPECT_EQ(got->token_strings, doc.token_strings);
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto codes, corpus()->GetCodes("d", "c", doc.doc_id));
    ASSERT_TRUE(codes.has_value());
    EXPECT_EQ(codes->precision, ValuePrecision::kF32);
    const DocumentCodes want = WithoutZeros(doc.codes);
    EXPECT_EQ(codes->codes.row_offsets, want.row_offsets);
    EXPECT_EQ(codes->codes.indices, want.indices);
    EXPECT_EQ(codes->codes.values, want.values);  // exact
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto none, corpus()->GetDocument("c", 10));
  EXPECT_FALSE(none.has_value());
  SAEDICT_ASSERT_OK_AND_ASSIGN(none, corpus()->GetDocument("other", 7));
  EXPECT_FALSE(none.has_value());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto no_codes, corpus()->GetCodes("other", "c", 7));
  EXPECT_FALSE(no_codes.has_value());
  SAEDICT_ASSERT_OK_AND_ASSIGN(no_codes, corpus()->GetCodes("d", "c", 10));
  EXPECT_FALSE(no_codes.has_value());
  // The zero value of feature 5 was dropped everywhere.
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto stats5, corpus()->GetFeatureStats("d", 5));
  EXPECT_EQ(stats5.count, 0);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto top5, corpus()->TopTokens("d", 5, 10));
  EXPECT_TRUE(top5.empty());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto totals, corpus()->GetDictionaryTotals("d"));
  EXPECT_EQ(totals.tokens, 4);
  EXPECT_EQ(totals.documents, 3);
}

TEST_F(CorpusStoreTest, F16ValuesWithinHalfPrecision) {
  Register("d", 1 << 24);
  std::mt19937 rng(3);
  IngestDocument doc = RandomDocument(rng, 1, 50, 1 << 24, 30);
  doc.codes.values[0] = 1e-9f;  // rounds to 0 in half: dropped
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      auto r, corpus()->WriteIngestBatch(
                  Batch("d", "c", {doc}, ValuePrecision::kF16, /*weights_sha256=*/"", 1 << 24)));
  EXPECT_EQ(r.tokens, 50);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto codes, corpus()->GetCodes("d", "c", 1));
  ASSERT_TRUE(codes.has_value());
  EXPECT_EQ(codes->precision, ValuePrecision::kF16);
  doc.codes.values[0] = 0;
  const DocumentCodes want = WithoutZeros(doc.codes);
  EXPECT_EQ(codes->codes.row_offsets, want.row_offsets);
  EXPECT_EQ(codes->codes.indices, want.indices);
  ASSERT_EQ(codes->codes.values.size(), want.values.size());
  for (size_t j = 0; j < want.values.size(); ++j) {
    EXPECT_NEAR(codes->codes.values[j], want.values[j], std::fabs(want.values[j]) * (1.0 / 2048));
    EXPECT_EQ(codes->codes.values[j], F16ToFloat(FloatToF16(want.values[j])));
  }
  // TopTokens reports the stored (rounded) value.
  const uint32_t f = want.indices[0];
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto top, corpus()->TopTokens("d", f, 100));
  ASSERT_FALSE(top.empty());
  for (const TokenRef& t : top) EXPECT_EQ(t.value, F16ToFloat(FloatToF16(t.value)));
}

TEST_F(CorpusStoreTest, F16OverflowFallsBackToF32ForThatDocument) {
  Register("d");
  ASSERT_THAT(
      corpus()->WriteIngestBatch(Batch(
          "d", "c", {Doc(1, {1, 2}, {{{0, 70000.0f}}, {{1, 0.1f}}}), Doc(2, {1}, {{{0, 0.1f}}})},
          ValuePrecision::kF16)),
      IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto big, corpus()->GetCodes("d", "c", 1));
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->precision, ValuePrecision::kF32);
  EXPECT_THAT(big->codes.values, ElementsAre(70000.0f, 0.1f));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto small, corpus()->GetCodes("d", "c", 2));
  ASSERT_TRUE(small.has_value());
  EXPECT_EQ(small->precision, ValuePrecision::kF16);
  EXPECT_THAT(small->codes.values, ElementsAre(F16ToFloat(FloatToF16(0.1f))));
}

std::vector<std::tuple<std::string, uint64_t, uint32_t, float>> Refs(
    const std::vector<TokenRef>& refs) {
  std::vector<std::tuple<std::string, uint64_t, uint32_t, float>> out;
  for (const TokenRef& r : refs) out.emplace_back(r.corpus, r.doc_id, r.position, r.value);
  return out;
}

TEST_F(CorpusStoreTest, TopTokensTiesAcrossManyDocumentsWithEqualPeaks) {
  Register("d");
  // 40 documents whose only activation of feature 3 is 1.0, and document 40
  // with a 5.0 peak and another 1.0 (which ranks after the earlier doc ids).
  std::vector<IngestDocument> docs;
  for (uint64_t id = 0; id < 40; ++id) docs.push_back(Doc(id, {1}, {{{3, 1.0f}}}));
  docs.push_back(Doc(40, {1, 1}, {{{3, 1.0f}}, {{3, 5.0f}}}));
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("d", "c", docs)), IsOk());
  using R = std::tuple<std::string, uint64_t, uint32_t, float>;
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto top, corpus()->TopTokens("d", 3, 3));
  EXPECT_THAT(Refs(top), ElementsAre(R{"c", 40, 1, 5.0f}, R{"c", 0, 0, 1.0f}, R{"c", 1, 0, 1.0f}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto all, corpus()->TopTokens("d", 3, 100));
  ASSERT_EQ(all.size(), 42u);
  EXPECT_EQ(Refs(all).back(), (R{"c", 40, 0, 1.0f}));
}

TEST_F(CorpusStoreTest, TopTokensDescendingWithTiesSeeksAndLimit) {
  Register("d");
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch(
                  "d", "c1",
                  {Doc(5, {1, 1, 1, 1}, {{{3, 2.0f}}, {{3, 3.0f}}, {}, {{3, 2.0f}, {4, 9.0f}}}),
                   Doc(2, {1, 1}, {{{3, -1.0f}}, {{3, 2.0f}}})})),
              IsOk());
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("d", "c0", {Doc(1, {1}, {{{3, 1.0f}}})})), IsOk());
  using R = std::tuple<std::string, uint64_t, uint32_t, float>;
  // Ties: corpus number (c1 was numbered first), doc, position.
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto all, corpus()->TopTokens("d", 3, 100));
  EXPECT_THAT(Refs(all),
              ElementsAre(R{"c1", 5, 1, 3.0f}, R{"c1", 2, 1, 2.0f}, R{"c1", 5, 0, 2.0f},
                          R{"c1", 5, 3, 2.0f}, R{"c0", 1, 0, 1.0f}, R{"c1", 2, 0, -1.0f}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto two, corpus()->TopTokens("d", 3, 2));
  EXPECT_THAT(Refs(two), ElementsAre(R{"c1", 5, 1, 3.0f}, R{"c1", 2, 1, 2.0f}));
  // Seeks start at documents whose peak is <= the start value: c1/5 (peak
  // 3) is skipped with its two 2.0 activations.
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto at2, corpus()->TopTokens("d", 3, 100, 2.0f));
  EXPECT_THAT(Refs(at2),
              ElementsAre(R{"c1", 2, 1, 2.0f}, R{"c0", 1, 0, 1.0f}, R{"c1", 2, 0, -1.0f}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto below25, corpus()->TopTokens("d", 3, 1, 2.5f));
  EXPECT_THAT(Refs(below25), ElementsAre(R{"c1", 2, 1, 2.0f}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto below15, corpus()->TopTokens("d", 3, 100, 1.5f));
  EXPECT_THAT(Refs(below15), ElementsAre(R{"c0", 1, 0, 1.0f}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto below_all, corpus()->TopTokens("d", 3, 100, -5.0f));
  EXPECT_TRUE(below_all.empty());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto above_all, corpus()->TopTokens("d", 3, 100, 1e30f));
  EXPECT_EQ(above_all.size(), 6u);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto none, corpus()->TopTokens("d", 3, 0));
  EXPECT_TRUE(none.empty());
  // The neighbouring feature is not mixed in, and its own scan stops at its end.
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto four, corpus()->TopTokens("d", 4, 100));
  EXPECT_THAT(Refs(four), ElementsAre(R{"c1", 5, 3, 9.0f}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto unknown, corpus()->TopTokens("nope", 3, 100));
  EXPECT_TRUE(unknown.empty());
  EXPECT_THAT(corpus()->TopTokens("d", 3, -1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("limit")));
  EXPECT_THAT(corpus()->TopTokens("d", 3, 1, std::nanf("")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NaN")));

  SAEDICT_ASSERT_OK_AND_ASSIGN(auto stats, corpus()->GetFeatureStats("d", 3));
  EXPECT_EQ(stats.count, 6);
  EXPECT_DOUBLE_EQ(stats.sum, 9.0);
  EXPECT_DOUBLE_EQ(stats.sum_sq, 9 + 4 + 4 + 4 + 1 + 1);
  EXPECT_EQ(stats.max, 3.0f);
  EXPECT_THAT(stats.bins, ElementsAre(std::pair<int32_t, int64_t>{HistogramBin(-1.0f), 1},
                                      std::pair<int32_t, int64_t>{HistogramBin(1.0f), 1},
                                      std::pair<int32_t, int64_t>{HistogramBin(2.0f), 3},
                                      std::pair<int32_t, int64_t>{HistogramBin(3.0f), 1}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto unseen, corpus()->GetFeatureStats("d", 60));
  EXPECT_EQ(unseen.count, 0);
  EXPECT_FALSE(unseen.max.has_value());
}

// Everything observable about dictionary "d" in corpus "c" for docs 0..9.
struct Observed {
  std::vector<std::string> parts;
  bool operator==(const Observed&) const = default;
};

Observed Observe(CorpusStore* store) {
  Observed o;
  for (uint32_t f = 0; f < 64; ++f) {
    auto s = store->GetFeatureStats("d", f);
    EXPECT_TRUE(s.ok());
    std::string line = absl::StrCat("f", f, " ", s->count, " ", s->sum, " ", s->sum_sq, " ",
                                    s->max.value_or(-1), " bins");
    for (auto [b, n] : s->bins) absl::StrAppend(&line, " ", b, ":", n);
    auto top = store->TopTokens("d", f, 1000);
    EXPECT_TRUE(top.ok());
    for (const TokenRef& t : *top)
      absl::StrAppend(&line, " ", t.corpus, t.doc_id, "/", t.position, "=", t.value);
    o.parts.push_back(line);
  }
  auto totals = store->GetDictionaryTotals("d");
  EXPECT_TRUE(totals.ok());
  o.parts.push_back(absl::StrCat("totals ", totals->tokens, " ", totals->documents));
  for (uint64_t doc = 0; doc < 10; ++doc) {
    auto codes = store->GetCodes("d", "c", doc);
    EXPECT_TRUE(codes.ok());
    std::string line = absl::StrCat("doc ", doc);
    if (codes->has_value()) {
      for (float v : (*codes)->codes.values) absl::StrAppend(&line, " ", v);
      for (uint32_t i : (*codes)->codes.indices) absl::StrAppend(&line, " i", i);
    }
    auto d = store->GetDocument("c", doc);
    EXPECT_TRUE(d.ok());
    if (d->has_value()) {
      for (int32_t t : (*d)->token_ids) absl::StrAppend(&line, " t", t);
      for (const auto& s : (*d)->token_strings) absl::StrAppend(&line, " s", s);
    }
    o.parts.push_back(line);
  }
  return o;
}

TEST_F(CorpusStoreTest, InvalidBatchesNameTheProblemAndChangeNothing) {
  Register("d");
  std::mt19937 rng(11);
  std::vector<IngestDocument> base;
  for (uint64_t id = 0; id < 4; ++id) base.push_back(RandomDocument(rng, id, 6, 64, 5));
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("d", "c", base)), IsOk());
  const Observed before = Observe(corpus());

  // Every case re-ingests changed versions of docs 0..3 plus a new doc 4,
  // with one defect in documents[2] (doc_id 2).
  std::vector<IngestDocument> changed;
  for (uint64_t id = 0; id < 5; ++id) changed.push_back(RandomDocument(rng, id, 6, 64, 5));
  changed[2] = Doc(2, {1, 2, 3}, {{{1, 1.0f}, {5, 2.0f}}, {{0, 1.0f}}, {}}, {"a", "b", "c"});
  struct Case {
    const char* name;
    std::function<void(IngestBatch&)> mutate;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"rows", [](IngestBatch& b) { b.documents[2].token_ids.push_back(4); },
       "documents[2] (doc_id 2): codes.num_rows is 3 but there are 4 tokens"},
      {"offsets for other rows",
       [](IngestBatch& b) { b.documents[2].codes.row_offsets.push_back(3); },
       "documents[2] (doc_id 2): codes have 4 rows but 3 tokens"},
      {"no offsets", [](IngestBatch& b) { b.documents[2].codes.row_offsets.clear(); },
       "documents[2] (doc_id 2): codes have no row_offsets"},
      {"strings", [](IngestBatch& b) { b.documents[2].token_strings.pop_back(); },
       "documents[2] (doc_id 2): token_strings has 2 entries"},
      {"index", [](IngestBatch& b) { b.documents[2].codes.indices[1] = 64; },
       "documents[2] (doc_id 2): codes.indices[1] = 64 (token 0) is not below d_sae 64"},
      {"nan", [](IngestBatch& b) { b.documents[2].codes.values[2] = std::nanf(""); },
       "documents[2] (doc_id 2): codes.values[2] (token 1)"},
      {"inf",
       [](IngestBatch& b) {
         b.documents[2].codes.values[0] = std::numeric_limits<float>::infinity();
       },
       "not finite"},
      {"ascending", [](IngestBatch& b) { b.documents[2].codes.indices[1] = 1; },
       "documents[2] (doc_id 2): codes.indices[1] = 1 (token 0) does not ascend"},
      {"offsets end", [](IngestBatch& b) { b.documents[2].codes.row_offsets.back() = 4; },
       "row_offsets ends at 4 but there are 3 indices"},
      {"offsets descend", [](IngestBatch& b) { b.documents[2].codes.row_offsets[2] = 1; },
       "codes.row_offsets[2] = 1 is below row_offsets[1] = 2"},
      {"offsets start", [](IngestBatch& b) { b.documents[2].codes.row_offsets[0] = 1; },
       "row_offsets[0] is 1"},
      {"values", [](IngestBatch& b) { b.documents[2].codes.values.pop_back(); },
       "codes have 3 indices but 2 values"},
      {"duplicate", [](IngestBatch& b) { b.documents[3].doc_id = 2; },
       "documents[3] (doc_id 2): duplicate doc_id (also documents[2])"},
      {"dictionary", [](IngestBatch& b) { b.dictionary_id.clear(); }, "empty dictionary id"},
      {"corpus", [](IngestBatch& b) { b.corpus.clear(); }, "empty corpus"},
      {"d_sae", [](IngestBatch& b) { b.d_sae = 0; }, "d_sae 0"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    IngestBatch batch = Batch("d", "c", changed);
    c.mutate(batch);
    EXPECT_THAT(corpus()->WriteIngestBatch(batch),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
    EXPECT_TRUE(Observe(corpus()) == before);
  }
  // The undamaged batch goes through.
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto r, corpus()->WriteIngestBatch(Batch("d", "c", changed)));
  EXPECT_EQ(r.replaced_documents, 4);
  EXPECT_FALSE(Observe(corpus()) == before);
}

TEST_F(CorpusStoreTest, NotFoundWithoutRecordAndAfterDelete) {
  const IngestBatch batch = Batch("d", "c", {Doc(1, {1}, {{{0, 1.0f}}})});
  EXPECT_THAT(corpus()->WriteIngestBatch(batch),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'d'")));
  Register("d");
  ASSERT_THAT(corpus()->WriteIngestBatch(batch), IsOk());
  ASSERT_THAT(store_->DeleteDictionary("d"), IsOk());
  EXPECT_THAT(corpus()->WriteIngestBatch(batch),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'d'")));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto totals, corpus()->GetDictionaryTotals("d"));
  EXPECT_EQ(totals.tokens, 0);
}

TEST_F(CorpusStoreTest, DifferentTokensRejectedWhileAnotherDictionaryHoldsTheDocument) {
  Register("a");
  Register("b");
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "c", {Doc(1, {1, 2}, {{{0, 1.0f}}, {}})})),
              IsOk());
  // Same tokens through another dictionary: fine, strings kept.
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("b", "c", {Doc(1, {1, 2}, {{{3, 2.0f}}, {}})})),
              IsOk());
  // Different tokens, while the other dictionary holds codes: refused, nothing written.
  const IngestBatch changed =
      Batch("a", "c", {Doc(0, {9}, {{{1, 1.0f}}}), Doc(1, {5, 6, 7}, {{{0, 4.0f}}, {}, {}})});
  EXPECT_THAT(corpus()->WriteIngestBatch(changed),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr("corpus 'c' document 1"), HasSubstr("'b'"))));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto doc0, corpus()->GetDocument("c", 0));
  EXPECT_FALSE(doc0.has_value());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto doc1, corpus()->GetDocument("c", 1));
  EXPECT_THAT(doc1->token_ids, ElementsAre(1, 2));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto totals, corpus()->GetDictionaryTotals("a"));
  EXPECT_EQ(totals.tokens, 2);
  // Re-ingest through the dictionary that holds it alone: allowed.
  ASSERT_THAT(store_->DeleteDictionary("b"), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto r, corpus()->WriteIngestBatch(changed));
  EXPECT_EQ(r.replaced_documents, 1);
  SAEDICT_ASSERT_OK_AND_ASSIGN(doc1, corpus()->GetDocument("c", 1));
  EXPECT_THAT(doc1->token_ids, ElementsAre(5, 6, 7));
  SAEDICT_ASSERT_OK_AND_ASSIGN(totals, corpus()->GetDictionaryTotals("a"));
  EXPECT_EQ(totals.tokens, 4);
  EXPECT_EQ(totals.documents, 2);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto top, corpus()->TopTokens("a", 0, 10));
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].value, 4.0f);
}

TEST_F(CorpusStoreTest, SameTokensKeepStoredStringsUnlessNewOnesCome) {
  Register("a");
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "c", {Doc(1, {1, 2}, {{}, {}}, {"x", "y"})})),
              IsOk());
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "c", {Doc(1, {1, 2}, {{}, {}})})), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto doc, corpus()->GetDocument("c", 1));
  EXPECT_THAT(doc->token_strings, ElementsAre("x", "y"));
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "c", {Doc(1, {1, 2}, {{}, {}}, {"X", "Y"})})),
              IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(doc, corpus()->GetDocument("c", 1));
  EXPECT_THAT(doc->token_strings, ElementsAre("X", "Y"));
}

TEST_F(CorpusStoreTest, DeleteDictionaryRemovesOnlyItsRecords) {
  Register("a");
  Register("b");
  std::mt19937 rng(4);
  std::vector<IngestDocument> docs;
  for (uint64_t id = 0; id < 6; ++id) docs.push_back(RandomDocument(rng, id, 8, 64, 6));
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "c", docs)), IsOk());
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("b", "c", docs, ValuePrecision::kF16)), IsOk());
  std::vector<uint64_t> ids = {0, 1, 2, 3, 4, 5};
  const auto b_before = testing::Recompute(corpus(), "b", "c", ids);
  ASSERT_GT(b_before.totals.tokens, 0);

  ASSERT_THAT(store_->DeleteDictionary("a"), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto record, store_->GetDictionary("a"));
  EXPECT_FALSE(record.has_value());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto b_record, store_->GetDictionary("b"));
  EXPECT_TRUE(b_record.has_value());
  for (uint64_t id : ids) {
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto codes, corpus()->GetCodes("a", "c", id));
    EXPECT_FALSE(codes.has_value());
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto doc, corpus()->GetDocument("c", id));
    ASSERT_TRUE(doc.has_value());  // documents belong to the corpus
    EXPECT_EQ(doc->token_ids, docs[id].token_ids);
  }
  testing::ExpectStatsMatch(corpus(), "a", 64, testing::Recomputed{});
  for (uint32_t f = 0; f < 64; ++f) {
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto top, corpus()->TopTokens("a", f, 10));
    EXPECT_TRUE(top.empty());
  }
  testing::ExpectStatsMatch(corpus(), "b", 64, b_before);

  // Same id again: a fresh number, none of the old data visible.
  Register("a");
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "c", {docs[0]})), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto totals, corpus()->GetDictionaryTotals("a"));
  EXPECT_EQ(totals.documents, 1);
  testing::ExpectStatsMatch(corpus(), "a", 64, testing::Recompute(corpus(), "a", "c", ids));
  EXPECT_THAT(store_->DeleteDictionary("never"), IsOk());
}

TEST_F(CorpusStoreTest, DeleteDictionaryDataKeepsTheRecord) {
  Register("a");
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "c", {Doc(1, {1}, {{{2, 1.0f}}})})), IsOk());
  ASSERT_THAT(corpus()->DeleteDictionaryData("a"), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto record, store_->GetDictionary("a"));
  EXPECT_TRUE(record.has_value());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto codes, corpus()->GetCodes("a", "c", 1));
  EXPECT_FALSE(codes.has_value());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto r,
                               corpus()->WriteIngestBatch(Batch("a", "c", {Doc(1, {1}, {{}})})));
  EXPECT_EQ(r.replaced_documents, 0);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto stats, corpus()->GetFeatureStats("a", 2));
  EXPECT_EQ(stats.count, 0);
  EXPECT_THAT(corpus()->DeleteDictionaryData("unknown"), IsOk());
}

TEST_F(CorpusStoreTest, DataSurvivesReopenAndNumbersStayUnique) {
  Register("a");
  ASSERT_THAT(corpus()->WriteIngestBatch(
                  Batch("a", "c1", {Doc(1, {1}, {{{2, 5.0f}}}, {"x"})}, ValuePrecision::kF16)),
              IsOk());
  store_.reset();
  Open();
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto doc, corpus()->GetDocument("c1", 1));
  ASSERT_TRUE(doc.has_value());
  EXPECT_THAT(doc->token_strings, ElementsAre("x"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto codes, corpus()->GetCodes("a", "c1", 1));
  ASSERT_TRUE(codes.has_value());
  EXPECT_EQ(codes->precision, ValuePrecision::kF16);
  // A new corpus after reopen gets a new number: both stay distinguishable.
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "c2", {Doc(1, {1}, {{{2, 4.0f}}})})), IsOk());
  Register("b");
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("b", "c1", {Doc(1, {1}, {{{2, 3.0f}}})})), IsOk());
  store_.reset();
  Open();
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto top, corpus()->TopTokens("a", 2, 10));
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].corpus, "c1");
  EXPECT_EQ(top[0].value, 5.0f);
  EXPECT_EQ(top[1].corpus, "c2");
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto top_b, corpus()->TopTokens("b", 2, 10));
  ASSERT_EQ(top_b.size(), 1u);
  EXPECT_EQ(top_b[0].value, 3.0f);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto totals, corpus()->GetDictionaryTotals("a"));
  EXPECT_EQ(totals.documents, 2);
}

TEST_F(CorpusStoreTest, CheckpointOpensWithTheSameData) {
  Register("a");
  std::mt19937 rng(9);
  std::vector<IngestDocument> docs;
  for (uint64_t id = 0; id < 5; ++id) docs.push_back(RandomDocument(rng, id, 10, 64, 6));
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "c", docs)), IsOk());
  const std::filesystem::path ckpt = dir_.path() / "ckpt";
  ASSERT_THAT(store_->Checkpoint(ckpt), IsOk());
  EXPECT_THAT(store_->Checkpoint(ckpt),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("ckpt")));
  // Later writes do not reach the checkpoint.
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "c", {RandomDocument(rng, 9, 3, 64, 3)})),
              IsOk());
  const std::vector<uint64_t> ids = {0, 1, 2, 3, 4};
  const auto expected = testing::Recompute(corpus(), "a", "c", ids);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto copy, Store::Open({ckpt}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto record, copy->GetDictionary("a"));
  EXPECT_TRUE(record.has_value());
  for (uint64_t id : ids) {
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto a, corpus()->GetCodes("a", "c", id));
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto b, copy->corpus()->GetCodes("a", "c", id));
    ASSERT_TRUE(a.has_value() && b.has_value());
    EXPECT_EQ(a->codes.values, b->codes.values);
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto d, copy->corpus()->GetDocument("c", id));
    EXPECT_TRUE(d.has_value());
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto missing, copy->corpus()->GetCodes("a", "c", 9));
  EXPECT_FALSE(missing.has_value());
  testing::ExpectStatsMatch(copy->corpus(), "a", 64, expected);
}

TEST_F(CorpusStoreTest, CorruptStatsOperandIsInternal) {
  Register("a");
  ASSERT_THAT(corpus()->WriteIngestBatch(Batch("a", "c", {Doc(1, {1}, {{{2, 1.0f}}})})), IsOk());
  store_.reset();
  {  // A bad merge operand behind the Store's back (dictionary "a" is number 1).
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(StoreDbOptions(), (dir_.path() / "db").string(),
                                  StoreColumnFamilies(), &handles, &db)
                    .ok());
    ASSERT_TRUE(
        db->Merge(rocksdb::WriteOptions(), handles[kStatsFamily], keys::StatsKey(1, 2), "\xff\xff")
            .ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  Open();
  EXPECT_THAT(corpus()->GetFeatureStats("a", 2),
              StatusIs(absl::StatusCode::kInternal, ::testing::_));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto other, corpus()->GetFeatureStats("a", 3));
  EXPECT_EQ(other.count, 0);
}

}  // namespace
}  // namespace saedict::storage
