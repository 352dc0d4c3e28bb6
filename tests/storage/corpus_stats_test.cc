// Feature statistics maintained by merge operands equal the statistics
// recomputed from the stored codes, after random ingest and re-ingest (with
// changed codes and, where no other dictionary holds a document, changed
// tokens), across reopen, and after concurrent re-ingest from 4 threads.
#include <atomic>
#include <random>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/column_families.h"
#include "storage/store.h"
#include "tests/storage/corpus_test_util.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::storage {
namespace {

using ::saedict::storage::testing::DictRecord;
using ::saedict::storage::testing::ExpectStatsMatch;
using ::saedict::storage::testing::RandomDocument;
using ::saedict::storage::testing::Recompute;
using ::saedict::testing::IsOk;
using ::saedict::testing::ScratchDir;

constexpr uint32_t kDSae = 48;

IngestBatch RandomBatch(std::mt19937& rng, const std::string& dict, const std::string& corpus,
                        ValuePrecision precision, const std::vector<uint64_t>& ids) {
  IngestBatch b;
  b.dictionary_id = dict;
  b.corpus = corpus;
  b.d_sae = kDSae;
  b.precision = precision;
  for (uint64_t id : ids) {
    b.documents.push_back(RandomDocument(rng, id, 1 + static_cast<int>(rng() % 12), kDSae, 6,
                                         /*strings=*/rng() % 2 == 0));
  }
  return b;
}

// `count` distinct ids drawn from [lo, hi).
std::vector<uint64_t> PickIds(std::mt19937& rng, uint64_t lo, uint64_t hi, size_t count) {
  std::vector<uint64_t> all;
  for (uint64_t id = lo; id < hi; ++id) all.push_back(id);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(std::min(count, all.size()));
  return all;
}

std::vector<uint64_t> Range(uint64_t lo, uint64_t hi) {
  std::vector<uint64_t> out;
  for (uint64_t id = lo; id < hi; ++id) out.push_back(id);
  return out;
}

TEST(CorpusStatsTest, RandomIngestAndReingestMatchRecomputation) {
  ScratchDir dir;
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto store, Store::Open({dir.path() / "db"}));
  ASSERT_THAT(store->PutDictionary(DictRecord("a", kDSae)), IsOk());
  ASSERT_THAT(store->PutDictionary(DictRecord("b", kDSae)), IsOk());
  CorpusStore* corpus = store->corpus();
  std::mt19937 rng(2024);
  // "a" (f16) holds docs 0..29 of corpus "x"; "b" (f32) holds docs 20..39 of
  // "x" and 0..9 of "y". Docs 20..29 of "x" are shared.
  for (uint64_t lo = 0; lo < 30; lo += 10) {
    ASSERT_THAT(corpus->WriteIngestBatch(
                    RandomBatch(rng, "a", "x", ValuePrecision::kF16, Range(lo, lo + 10))),
                IsOk());
  }
  // "b" must reuse the tokens of the shared docs: same ids, same token ids.
  for (uint64_t lo = 20; lo < 40; lo += 10) {
    IngestBatch b = RandomBatch(rng, "b", "x", ValuePrecision::kF32, Range(lo, lo + 10));
    for (IngestDocument& doc : b.documents) {
      SAEDICT_ASSERT_OK_AND_ASSIGN(auto stored, corpus->GetDocument("x", doc.doc_id));
      if (!stored.has_value()) continue;
      doc = RandomDocument(rng, doc.doc_id, static_cast<int>(stored->token_ids.size()), kDSae, 6,
                           false);
      doc.token_ids = stored->token_ids;
    }
    ASSERT_THAT(corpus->WriteIngestBatch(b), IsOk());
  }
  ASSERT_THAT(
      corpus->WriteIngestBatch(RandomBatch(rng, "b", "y", ValuePrecision::kF32, Range(0, 10))),
      IsOk());

  // Re-ingest: "a" changes docs 0..19 freely (tokens too: only "a" holds them),
  // "b" changes codes of 30..39 (tokens too) and of 20..29 with the same tokens.
  int64_t replaced = 0;
  for (int round = 0; round < 5; ++round) {
    SAEDICT_ASSERT_OK_AND_ASSIGN(
        auto r, corpus->WriteIngestBatch(RandomBatch(
                    rng, "a", "x", round % 2 ? ValuePrecision::kF16 : ValuePrecision::kF32,
                    PickIds(rng, 0, 20, 7))));
    replaced += r.replaced_documents;
    SAEDICT_ASSERT_OK_AND_ASSIGN(
        r, corpus->WriteIngestBatch(
               RandomBatch(rng, "b", "x", ValuePrecision::kF32, PickIds(rng, 30, 40, 5))));
    replaced += r.replaced_documents;
    IngestBatch shared = RandomBatch(rng, "b", "x", ValuePrecision::kF16, PickIds(rng, 20, 30, 4));
    for (IngestDocument& doc : shared.documents) {
      SAEDICT_ASSERT_OK_AND_ASSIGN(auto stored, corpus->GetDocument("x", doc.doc_id));
      ASSERT_TRUE(stored.has_value());
      doc = RandomDocument(rng, doc.doc_id, static_cast<int>(stored->token_ids.size()), kDSae, 6,
                           false);
      doc.token_ids = stored->token_ids;
    }
    SAEDICT_ASSERT_OK_AND_ASSIGN(r, corpus->WriteIngestBatch(shared));
    replaced += r.replaced_documents;
  }
  EXPECT_EQ(replaced, 5 * (7 + 5 + 4));

  auto check = [&](CorpusStore* c) {
    SCOPED_TRACE("dictionary a");
    ExpectStatsMatch(c, "a", kDSae, Recompute(c, "a", "x", Range(0, 40)));
    auto b = Recompute(c, "b", "x", Range(0, 40));
    auto by = Recompute(c, "b", "y", Range(0, 10));
    // Merge corpus y into b's expectation.
    for (auto& [f, s] : by.features) {
      auto& t = b.features[f];
      t.count += s.count;
      t.sum += s.sum;
      t.sum_abs += s.sum_abs;
      t.sum_sq += s.sum_sq;
      t.max = t.max ? std::max(*t.max, *s.max) : s.max;
      t.min = t.min ? std::min(*t.min, *s.min) : s.min;
      for (auto [bin, n] : s.bins) t.bins[bin] += n;
    }
    b.totals.tokens += by.totals.tokens;
    b.totals.documents += by.totals.documents;
    SCOPED_TRACE("dictionary b");
    ExpectStatsMatch(c, "b", kDSae, b);
  };
  check(corpus);
  // After a reopen, then after a flush and full compaction (merge operands
  // folded by the operator inside compaction).
  store.reset();
  SAEDICT_ASSERT_OK_AND_ASSIGN(store, Store::Open({dir.path() / "db"}));
  check(store->corpus());
  store.reset();
  {
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(StoreDbOptions(), (dir.path() / "db").string(),
                                  StoreColumnFamilies(), &handles, &db)
                    .ok());
    ASSERT_TRUE(db->Flush(rocksdb::FlushOptions(), handles).ok());
    for (auto* h : handles) {
      ASSERT_TRUE(db->CompactRange(rocksdb::CompactRangeOptions(), h, nullptr, nullptr).ok());
      db->DestroyColumnFamilyHandle(h);
    }
    delete db;
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(store, Store::Open({dir.path() / "db"}));
  check(store->corpus());
}

TEST(CorpusStatsTest, ConcurrentReingestFromFourThreadsMatchesRecomputation) {
  ScratchDir dir;
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto store, Store::Open({dir.path() / "db"}));
  ASSERT_THAT(store->PutDictionary(DictRecord("a", kDSae)), IsOk());
  CorpusStore* corpus = store->corpus();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(100 + t);
      for (int round = 0; round < 15; ++round) {
        IngestBatch b = RandomBatch(rng, "a", "x",
                                    (round + t) % 2 ? ValuePrecision::kF16 : ValuePrecision::kF32,
                                    PickIds(rng, 0, 20, 6));
        if (!corpus->WriteIngestBatch(b).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const auto expected = Recompute(corpus, "a", "x", Range(0, 20));
  EXPECT_EQ(expected.totals.documents, 20);
  ExpectStatsMatch(corpus, "a", kDSae, expected);
}

}  // namespace
}  // namespace saedict::storage
