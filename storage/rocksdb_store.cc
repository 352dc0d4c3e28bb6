// RocksDbStore: the RocksDB implementation of Store (see store.h).
#include <utility>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "storage/rocksdb_status.h"
#include "storage/store.h"
#include "util/status_macros.h"

namespace saedict::storage {
namespace {

constexpr char kDictionariesFamily[] = "dictionaries";

class RocksDbStore final : public Store {
 public:
  RocksDbStore(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> handles)
      : db_(std::move(db)), handles_(std::move(handles)) {}

  ~RocksDbStore() override {
    for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
    db_->Close();
  }

  absl::Status PutDictionary(const v1::DictionaryRecord& record) override {
    const std::string& id = record.info().id();
    if (id.empty()) return absl::InvalidArgumentError("storage: dictionary record has no id");
    return FromRocksDb(db_->Put(SyncWrite(), dictionaries(), id, record.SerializeAsString()),
                       absl::StrCat("put dictionary '", id, "'"));
  }

  absl::StatusOr<std::optional<v1::DictionaryRecord>> GetDictionary(
      const std::string& id) override {
    std::string bytes;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), dictionaries(), id, &bytes);
    if (s.IsNotFound()) return std::nullopt;
    SAEDICT_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("get dictionary '", id, "'")));
    v1::DictionaryRecord record;
    if (!record.ParseFromString(bytes)) {
      return absl::InternalError(absl::StrCat("storage: dictionary record '", id, "' is corrupt (",
                                              bytes.size(), " bytes do not parse)"));
    }
    return record;
  }

  absl::StatusOr<std::vector<v1::DictionaryRecord>> ListDictionaries() override {
    std::vector<v1::DictionaryRecord> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dictionaries()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      v1::DictionaryRecord record;
      if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return absl::InternalError(
            absl::StrCat("storage: dictionary record '", it->key().ToString(), "' is corrupt"));
      }
      out.push_back(std::move(record));
    }
    SAEDICT_RETURN_IF_ERROR(FromRocksDb(it->status(), "list dictionaries"));
    return out;
  }

  absl::Status DeleteDictionary(const std::string& id) override {
    return FromRocksDb(db_->Delete(SyncWrite(), dictionaries(), id),
                       absl::StrCat("delete dictionary '", id, "'"));
  }

 private:
  static rocksdb::WriteOptions SyncWrite() {
    rocksdb::WriteOptions w;
    w.sync = true;
    return w;
  }
  rocksdb::ColumnFamilyHandle* dictionaries() const { return handles_[1]; }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // [default, dictionaries]
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kDictionariesFamily, rocksdb::ColumnFamilyOptions()},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(db_options, options.path.string(), families, &handles, &raw);
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("open ", options.path.string())));
  return std::make_unique<RocksDbStore>(std::unique_ptr<rocksdb::DB>(raw), std::move(handles));
}

}  // namespace saedict::storage
