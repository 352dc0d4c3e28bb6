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
        StoredCodes codes, DecodeCodes(absl::string_view(it->value().data(), it->value().size()),
                                       absl::StrCat("of dictionary '", dictionary_id, "' (scan)")));
    SAEDICT_RETURN_IF_ERROR(fn(codes));
  }
  return FromRocksDb(it->status(), absl::StrCat("scan codes of dictionary '", dictionary_id, "'"));
}

absl::Status RocksDbCorpusStore::ScanCodePairs(const std::string& dictionary_a,
                                               const std::string& dictionary_b,
                                               const std::string& corpus, const CodePairFn& fn) {
  const std::optional<uint32_t> da = DictNumber(dictionary_a), db = DictNumber(dictionary_b);
  const std::optional<uint32_t> c = CorpusNumber(corpus);
  if (!da || !db || !c) return absl::OkStatus();
  rocksdb::ManagedSnapshot snapshot(db_);
  const std::string what = absl::StrCat("codes of '", dictionary_a, "' and '", dictionary_b,
                                        "' on corpus '", corpus, "'");
  // One iterator per dictionary over its (dict, corpus) prefix, merged by doc.
  struct Side {
    std::string prefix, end;
    rocksdb::Slice lower, upper;
    std::unique_ptr<rocksdb::Iterator> it;
  };
  auto open = [&](uint32_t dict, Side* side) {
    side->prefix = keys::ForwardKey(dict, *c, 0).substr(0, 8);  // dict u32, corpus u32
    side->end = keys::PrefixSuccessor(side->prefix);
    side->lower = rocksdb::Slice(side->prefix);
    side->upper = rocksdb::Slice(side->end);
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot.snapshot();
    ro.iterate_lower_bound = &side->lower;
    ro.iterate_upper_bound = &side->upper;
    ro.fill_cache = false;
    side->it.reset(db_->NewIterator(ro, cf_.forward));
    side->it->SeekToFirst();
  };
  auto doc_of = [&](const rocksdb::Iterator& it) -> absl::StatusOr<uint64_t> {
    const rocksdb::Slice key = it.key();
    if (key.size() != 16)
      return absl::InternalError(absl::StrCat("storage: forward key of ", what, " is corrupt"));
    uint64_t doc = 0;
    for (int i = 8; i < 16; ++i) doc = (doc << 8) | static_cast<unsigned char>(key[i]);
    return doc;
  };
  Side a, b;
  open(*da, &a);
  if (*da == *db) {  // one dictionary against itself: read and decode each record once
    for (; a.it->Valid(); a.it->Next()) {
      SAEDICT_ASSIGN_OR_RETURN(const uint64_t doc, doc_of(*a.it));
      SAEDICT_ASSIGN_OR_RETURN(
          StoredCodes codes,
          DecodeCodes(absl::string_view(a.it->value().data(), a.it->value().size()), what));
      SAEDICT_RETURN_IF_ERROR(fn(doc, codes, codes));
    }
    return FromRocksDb(a.it->status(), absl::StrCat("scan ", what));
  }
  open(*db, &b);

  while (a.it->Valid() && b.it->Valid()) {
    SAEDICT_ASSIGN_OR_RETURN(const uint64_t doc_a, doc_of(*a.it));
    SAEDICT_ASSIGN_OR_RETURN(const uint64_t doc_b, doc_of(*b.it));
    if (doc_a < doc_b) {
      a.it->Next();
    } else if (doc_b < doc_a) {
      b.it->Next();
    } else {
      SAEDICT_ASSIGN_OR_RETURN(
          StoredCodes codes_a,
          DecodeCodes(absl::string_view(a.it->value().data(), a.it->value().size()), what));
      SAEDICT_ASSIGN_OR_RETURN(
          StoredCodes codes_b,
          DecodeCodes(absl::string_view(b.it->value().data(), b.it->value().size()), what));
      SAEDICT_RETURN_IF_ERROR(fn(doc_a, codes_a, codes_b));
      a.it->Next();
      b.it->Next();
    }
  }
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(a.it->status(), absl::StrCat("scan ", what)));
  return FromRocksDb(b.it->status(), absl::StrCat("scan ", what));
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
  SAEDICT_RETURN_IF_ERROR(guard_.Check("put neighbours"));
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
  SAEDICT_RETURN_IF_ERROR(guard_.Check("put neighbours manifest"));
  return FromRocksDb(
      db_->Put(SyncWrite(), cf_.neighbours, keys::NeighboursManifestKey(dictionary_id),
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
  SAEDICT_RETURN_IF_ERROR(
      FromRocksDb(wb.DeleteRange(cf_.neighbours, keys::NeighboursBegin(dictionary_id),
                                 keys::NeighboursEnd(dictionary_id)),
                  "batch delete range"));
  return FromRocksDb(db_->Write(SyncWrite(), &wb),
                     absl::StrCat("delete neighbours of dictionary '", dictionary_id, "'"));
}

}  // namespace saedict::storage
