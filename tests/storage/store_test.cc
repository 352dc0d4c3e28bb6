// Store against a real RocksDB directory: round trips, persistence across
// reopen, opening a database from before the corpus families, and the error
// codes for a locked directory and a corrupt record.
#include "storage/store.h"

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/column_families.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::storage {
namespace {

using ::saedict::testing::IsOk;
using ::saedict::testing::ScratchDir;
using ::saedict::testing::StatusIs;
using ::testing::HasSubstr;

records::v1::DictionaryRecord Record(const std::string& id, int64_t d_sae) {
  records::v1::DictionaryRecord r;
  r.mutable_info()->set_id(id);
  r.mutable_info()->set_d_sae(d_sae);
  r.set_weights_file(id + ".safetensors");
  return r;
}

TEST(StoreTest, PutGetListDeleteRoundTrip) {
  ScratchDir dir;
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto store, Store::Open({dir.path() / "db"}));
  ASSERT_THAT(store->PutDictionary(Record("b", 2)), IsOk());
  ASSERT_THAT(store->PutDictionary(Record("a", 1)), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto got, store->GetDictionary("a"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->info().d_sae(), 1);
  EXPECT_EQ(got->weights_file(), "a.safetensors");
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto all, store->ListDictionaries());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].info().id(), "a");  // id order
  EXPECT_EQ(all[1].info().id(), "b");
  ASSERT_THAT(store->PutDictionary(Record("a", 7)), IsOk());  // replace
  SAEDICT_ASSERT_OK_AND_ASSIGN(got, store->GetDictionary("a"));
  EXPECT_EQ(got->info().d_sae(), 7);
  ASSERT_THAT(store->DeleteDictionary("a"), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(got, store->GetDictionary("a"));
  EXPECT_FALSE(got.has_value());
  EXPECT_THAT(store->DeleteDictionary("never-there"), IsOk());
}

TEST(StoreTest, RecordWithoutIdIsRejected) {
  ScratchDir dir;
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto store, Store::Open({dir.path() / "db"}));
  EXPECT_THAT(store->PutDictionary(records::v1::DictionaryRecord()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no id")));
}

TEST(StoreTest, RecordsSurviveReopen) {
  ScratchDir dir;
  {
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto store, Store::Open({dir.path() / "db"}));
    ASSERT_THAT(store->PutDictionary(Record("kept", 3)), IsOk());
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto store, Store::Open({dir.path() / "db"}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto got, store->GetDictionary("kept"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->info().d_sae(), 3);
}

TEST(StoreTest, SecondOpenOfLockedDirectoryIsUnavailable) {
  ScratchDir dir;
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto store, Store::Open({dir.path() / "db"}));
  EXPECT_THAT(Store::Open({dir.path() / "db"}),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("lock")));
}

TEST(StoreTest, OpensDatabaseFromBeforeTheCorpusFamilies) {
  ScratchDir dir;
  {  // Only the families of the first release: default and dictionaries.
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"dictionaries", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(
        rocksdb::DB::Open(options, (dir.path() / "db").string(), families, &handles, &db).ok());
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), handles[1], "old", Record("old", 4).SerializeAsString())
            .ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto store, Store::Open({dir.path() / "db"}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto got, store->GetDictionary("old"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->info().d_sae(), 4);
  ASSERT_NE(store->corpus(), nullptr);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto totals, store->corpus()->GetDictionaryTotals("old"));
  EXPECT_EQ(totals.documents, 0);
}

TEST(StoreTest, CorruptRecordIsInternal) {
  ScratchDir dir;
  { SAEDICT_ASSERT_OK_AND_ASSIGN(auto store, Store::Open({dir.path() / "db"})); }
  {  // Write bytes that are not a DictionaryRecord behind the Store's back.
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(StoreDbOptions(), (dir.path() / "db").string(),
                                  StoreColumnFamilies(), &handles, &db)
                    .ok());
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), handles[kDictionariesFamily], "bad", "\xff\xff\xff").ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto store, Store::Open({dir.path() / "db"}));
  EXPECT_THAT(store->GetDictionary("bad"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("corrupt")));
  EXPECT_THAT(store->ListDictionaries(), StatusIs(absl::StatusCode::kInternal, HasSubstr("bad")));
}

}  // namespace
}  // namespace saedict::storage
