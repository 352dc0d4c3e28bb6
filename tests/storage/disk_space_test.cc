// DiskSpaceGuard on a real directory, and a RocksDB Store whose reserve
// cannot be met: writes that add data fail with RESOURCE_EXHAUSTED naming the
// directory and write nothing; deletions still work; the same store with a
// reserve it meets takes the writes.
#include "storage/disk_space.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/store.h"
#include "tests/storage/corpus_test_util.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::storage {
namespace {

using ::saedict::storage::testing::DictRecord;
using ::saedict::storage::testing::RandomDocument;
using ::saedict::testing::IsOk;
using ::saedict::testing::ScratchDir;
using ::saedict::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr uint64_t kUnmeetable = uint64_t{1} << 62;  // 4 EiB

TEST(DiskSpaceGuardTest, PassesWithNoReserveOrEnoughSpaceAndRefusesOtherwise) {
  ScratchDir dir;
  EXPECT_THAT(DiskSpaceGuard(dir.path(), 0).Check("w"), IsOk());
  EXPECT_THAT(DiskSpaceGuard(dir.path(), 1).Check("w"), IsOk());
  EXPECT_THAT(DiskSpaceGuard(dir.path(), kUnmeetable).Check("write x"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("write x"), HasSubstr(dir.path().string()),
                             HasSubstr("is full"), HasSubstr("--min_free_disk_mb"))));
  EXPECT_THAT(DiskSpaceGuard(dir.path() / "missing", 1).Check("w"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("missing")));
  // No reserve: not even a missing directory is looked at.
  EXPECT_THAT(DiskSpaceGuard(dir.path() / "missing", 0).Check("w"), IsOk());
}

IngestBatch OneDocBatch(uint64_t id) {
  std::mt19937 rng(static_cast<uint32_t>(id));
  IngestBatch b;
  b.dictionary_id = "a";
  b.corpus = "c";
  b.d_sae = 32;
  b.documents.push_back(RandomDocument(rng, id, 5, 32, 4, /*strings=*/false));
  return b;
}

TEST(DiskSpaceGuardTest, StoreRefusesWritesThatAddDataAndKeepsWhatItHas) {
  ScratchDir dir;
  {
    StoreOptions options;
    options.path = dir.path() / "db";
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_THAT((*store)->PutDictionary(DictRecord("a", 32)), IsOk());
    ASSERT_THAT((*store)->corpus()->WriteIngestBatch(OneDocBatch(1)).status(), IsOk());
  }
  StoreOptions full;
  full.path = dir.path() / "db";
  full.min_free_bytes = kUnmeetable;
  auto store = Store::Open(full);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_THAT((*store)->PutDictionary(DictRecord("b", 32)),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("put dictionary 'b'")));
  EXPECT_THAT((*store)->corpus()->WriteIngestBatch(OneDocBatch(2)).status(),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("is full")));
  // Nothing of the refused writes is there; what was there still is.
  auto b = (*store)->GetDictionary("b");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->has_value());
  auto doc2 = (*store)->corpus()->GetDocument("c", 2);
  ASSERT_TRUE(doc2.ok()) << doc2.status();
  EXPECT_FALSE(doc2->has_value());
  auto doc1 = (*store)->corpus()->GetDocument("c", 1);
  ASSERT_TRUE(doc1.ok()) << doc1.status();
  EXPECT_TRUE(doc1->has_value());
  // Deleting frees space, so it is never refused.
  EXPECT_THAT((*store)->DeleteDictionary("a"), IsOk());
  auto a = (*store)->GetDictionary("a");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->has_value());
}

}  // namespace
}  // namespace saedict::storage
