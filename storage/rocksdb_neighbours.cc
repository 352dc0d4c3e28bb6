// RocksDbCorpusStore: the codes scan behind co-occurrence counts and the
// precomputed-neighbours records (see corpus_store.h).
#include <memory>

#include "absl/strings/str_cat.h"
#include "rocksdb/snapshot.h"
#include "rocksdb/write_batch.h"
#include "storage/codes_codec.h"
#include "storage/keys.h"
#include "storage/rocksdb_corpus_store.h"
#include "storage/rocksdb_status.h"
#include "util/status_macros.h"

namespace saedict::storage {
namespace {

rocksdb::WriteOptions SyncWrite() {
  rocksdb::WriteOptions w;
  w.sync = true;
  return w;
}

template <typename Record>
absl::StatusOr<std::optional<Record>> GetRecord(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                                                const std::string& key, const std::string& what) {
  std::string bytes;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf, key, &bytes);
  if (s.IsNotFound()) return std::nullopt;
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("get ", what)));
  Record record;
  if (!record.ParseFromString(bytes)) {
    return absl::InternalError(absl::StrCat("storage: ", what, " is corrupt"));
  }
  return record;
}

}  // namespace

absl::Status RocksDbCorpusStore::ScanCodes(
    const std::string& dictionary_id, const std::function<absl::Status(const StoredCodes&)>& fn) {
  const std::optional<uint32_t> d = DictNumber(dictionary_id);
  if (!d) return absl::OkStatus();
  rocksdb::ManagedSnapshot snapshot(db_);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.snapshot();
  const std::string prefix = keys::DictPrefix(*d);
  const std::string end = keys::PrefixSuccessor(prefix);
  const rocksdb::Slice lower(prefix), upper(end);
  ro.iterate_lower_bound = &lower;
  ro.iterate_upper_bound = &upper;
  ro.fill_cache = false;  // one pass over everything: keep the cache for queries
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_.forward));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    SAEDICT_ASSIGN_OR_RETURN(
        StoredCodes codes,
        DecodeCodes(absl::string_view(it->value().data(), it->value().size()),
                    absl::StrCat("of dictionary '", dictionary_id, "' (scan)")));
    SAEDICT_RETURN_IF_ERROR(fn(codes));
  }
  return FromRocksDb(it->status(), absl::StrCat("scan codes of dictionary '", dictionary_id, "'"));
}

absl::Status RocksDbCorpusStore::PutNeighbours(
    const std::string& dictionary_id, uint32_t first_feature,
    const std::vector<records::v1::NeighboursRecord>& records) {
  rocksdb::WriteBatch wb;
  for (size_t i = 0; i < records.size(); ++i) {
    SAEDICT_RETURN_IF_ERROR(FromRocksDb(
        wb.Put(cf_.neighbours,
               keys::NeighboursKey(dictionary_id, first_feature + static_cast<uint32_t>(i)),
               records[i].SerializeAsString()),
        "batch put"));
  }
  return FromRocksDb(db_->Write(SyncWrite(), &wb),
                     absl::StrCat("put neighbours of dictionary '", dictionary_id, "'"));
}

absl::StatusOr<std::optional<records::v1::NeighboursRecord>> RocksDbCorpusStore::GetNeighbours(
    const std::string& dictionary_id, uint32_t feature) {
  return GetRecord<records::v1::NeighboursRecord>(
      db_, cf_.neighbours, keys::NeighboursKey(dictionary_id, feature),
      absl::StrCat("neighbours of dictionary '", dictionary_id, "' feature ", feature));
}

absl::Status RocksDbCorpusStore::PutNeighboursManifest(
    const std::string& dictionary_id, const records::v1::NeighboursManifest& manifest) {
  return FromRocksDb(db_->Put(SyncWrite(), cf_.neighbours, keys::NeighboursManifestKey(dictionary_id),
                              manifest.SerializeAsString()),
                     absl::StrCat("put neighbours manifest of dictionary '", dictionary_id, "'"));
}

absl::StatusOr<std::optional<records::v1::NeighboursManifest>>
RocksDbCorpusStore::GetNeighboursManifest(const std::string& dictionary_id) {
  return GetRecord<records::v1::NeighboursManifest>(
      db_, cf_.neighbours, keys::NeighboursManifestKey(dictionary_id),
      absl::StrCat("neighbours manifest of dictionary '", dictionary_id, "'"));
}

absl::Status RocksDbCorpusStore::DeleteNeighbours(const std::string& dictionary_id) {
  rocksdb::WriteBatch wb;
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(wb.DeleteRange(cf_.neighbours,
                                                     keys::NeighboursBegin(dictionary_id),
                                                     keys::NeighboursEnd(dictionary_id)),
                                      "batch delete range"));
  return FromRocksDb(db_->Write(SyncWrite(), &wb),
                     absl::StrCat("delete neighbours of dictionary '", dictionary_id, "'"));
}

}  // namespace saedict::storage
