// RocksDbStore: the RocksDB implementation of Store (see store.h). Opens every
// column family (column_families.h), keeps dictionary records itself and
// delegates corpus records to RocksDbCorpusStore, which also serialises
// DeleteDictionary with ingest writes.
//
// Thread safety: every method may be called concurrently.
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/utilities/checkpoint.h"
#include "storage/column_families.h"
#include "storage/disk_space.h"
#include "storage/rocksdb_corpus_store.h"
#include "storage/rocksdb_status.h"
#include "storage/store.h"
#include "util/status_macros.h"

namespace saedict::storage {
namespace {

class RocksDbStore final : public Store {
 public:
  RocksDbStore(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
               DiskSpaceGuard guard)
      : db_(std::move(db)), handles_(std::move(handles)), guard_(std::move(guard)) {}

  ~RocksDbStore() override {
    corpus_.reset();
    explanations_.reset();
    for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
    db_->Close();
  }

  absl::Status Init() {
    CorpusFamilies families;
    families.dictionaries = handles_[kDictionariesFamily];
    families.names = handles_[kNamesFamily];
    families.docs = handles_[kDocsFamily];
    families.forward = handles_[kForwardFamily];
    families.inverted = handles_[kInvertedFamily];
    families.stats = handles_[kStatsFamily];
    families.neighbours = handles_[kNeighboursFamily];
    SAEDICT_ASSIGN_OR_RETURN(corpus_, RocksDbCorpusStore::Open(db_.get(), families, guard_));
    explanations_ = std::make_unique<ExplanationStore>(
        db_.get(), handles_[kExplanationsFamily], handles_[kExplanationTermsFamily], guard_);
    return absl::OkStatus();
  }

  absl::Status PutDictionary(const records::v1::DictionaryRecord& record) override {
    const std::string& id = record.info().id();
    if (id.empty()) return absl::InvalidArgumentError("storage: dictionary record has no id");
    SAEDICT_RETURN_IF_ERROR(guard_.Check(absl::StrCat("put dictionary '", id, "'")));
    return FromRocksDb(db_->Put(SyncWrite(), dictionaries(), id, record.SerializeAsString()),
                       absl::StrCat("put dictionary '", id, "'"));
  }

  absl::StatusOr<std::optional<records::v1::DictionaryRecord>> GetDictionary(
      const std::string& id) override {
    std::string bytes;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), dictionaries(), id, &bytes);
    if (s.IsNotFound()) return std::nullopt;
    SAEDICT_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("get dictionary '", id, "'")));
    records::v1::DictionaryRecord record;
    if (!record.ParseFromString(bytes)) {
      return absl::InternalError(absl::StrCat("storage: dictionary record '", id, "' is corrupt (",
                                              bytes.size(), " bytes do not parse)"));
    }
    return record;
  }

  absl::StatusOr<std::vector<records::v1::DictionaryRecord>> ListDictionaries() override {
    std::vector<records::v1::DictionaryRecord> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dictionaries()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      records::v1::DictionaryRecord record;
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
    SAEDICT_RETURN_IF_ERROR(explanations_->DeleteDictionary(id));
    return corpus_->DeleteDictionary(id);
  }

  absl::Status ReplaceDictionary(const records::v1::DictionaryRecord& record) override {
    return corpus_->ReplaceDictionary(record);
  }

  CorpusStore* corpus() override { return corpus_.get(); }
  ExplanationStore* explanations() override { return explanations_.get(); }

  absl::Status Checkpoint(const std::filesystem::path& dir) override {
    std::error_code ec;
    const std::filesystem::path target = std::filesystem::absolute(dir, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("storage: checkpoint directory ", dir.string(), ": ", ec.message()));
    }
    if (std::filesystem::exists(target, ec)) {
      return absl::AlreadyExistsError(
          absl::StrCat("storage: checkpoint directory ", target.string(), " already exists"));
    }
    rocksdb::Checkpoint* raw = nullptr;
    SAEDICT_RETURN_IF_ERROR(
        FromRocksDb(rocksdb::Checkpoint::Create(db_.get(), &raw), "create checkpoint object"));
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    return FromRocksDb(checkpoint->CreateCheckpoint(target.string()),
                       absl::StrCat("checkpoint to ", target.string()));
  }

  std::vector<FamilySize> FamilySizes() override {
    std::vector<FamilySize> sizes;
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      FamilySize& size = sizes.emplace_back();
      size.name = h->GetName();
      db_->GetIntProperty(h, rocksdb::DB::Properties::kTotalSstFilesSize, &size.sst_bytes);
      db_->GetIntProperty(h, rocksdb::DB::Properties::kSizeAllMemTables, &size.memtable_bytes);
      db_->GetIntProperty(h, rocksdb::DB::Properties::kEstimateNumKeys, &size.estimated_keys);
    }
    return sizes;
  }

 private:
  static rocksdb::WriteOptions SyncWrite() {
    rocksdb::WriteOptions w;
    w.sync = true;
    return w;
  }
  rocksdb::ColumnFamilyHandle* dictionaries() const { return handles_[kDictionariesFamily]; }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // indexed by FamilyIndex
  const DiskSpaceGuard guard_;
  std::unique_ptr<RocksDbCorpusStore> corpus_;
  std::unique_ptr<ExplanationStore> explanations_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  rocksdb::DBOptions db_options = StoreDbOptions();
  db_options.create_if_missing = options.create_if_missing;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(db_options, options.path.string(), StoreColumnFamilies(), &handles, &raw);
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("open ", options.path.string())));
  auto store = std::make_unique<RocksDbStore>(std::unique_ptr<rocksdb::DB>(raw), std::move(handles),
                                              DiskSpaceGuard(options.path, options.min_free_bytes));
  SAEDICT_RETURN_IF_ERROR(store->Init());
  return store;
}

}  // namespace saedict::storage
