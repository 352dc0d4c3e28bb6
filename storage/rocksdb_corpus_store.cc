// RocksDbCorpusStore: opening, names and numbers, the ingest write path and
// deletes (see rocksdb_corpus_store.h and corpus_store.h); the reads are in
// rocksdb_corpus_reads.cc.
#include "storage/rocksdb_corpus_store.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/write_batch.h"
#include "saedict/records/v1/records.pb.h"
#include "storage/codes_codec.h"
#include "storage/ingest_prep.h"
#include "storage/keys.h"
#include "storage/rocksdb_status.h"
#include "util/log.h"
#include "util/status_macros.h"

namespace saedict::storage {
namespace {

// Attempts of an ingest whose dictionary number was deleted (by
// DeleteDictionaryData) between allocation and commit.
constexpr int kIngestAttempts = 3;

rocksdb::WriteOptions SyncWrite() {
  rocksdb::WriteOptions w;
  w.sync = true;
  return w;
}

std::string U32Value(uint32_t v) {
  std::string s;
  keys::AppendU32(&s, v);
  return s;
}

uint32_t Load32(const char* p) {
  uint32_t w;
  std::memcpy(&w, p, sizeof(w));
  return w;
}

// Views of the kInvertedKeySize-byte keys in `concatenated`, in key order.
std::vector<rocksdb::Slice> SortedInvertedKeys(const std::string& concatenated) {
  std::vector<rocksdb::Slice> out;
  out.reserve(concatenated.size() / keys::kInvertedKeySize);
  for (size_t k = 0; k < concatenated.size(); k += keys::kInvertedKeySize) {
    out.emplace_back(concatenated.data() + k, keys::kInvertedKeySize);
  }
  // Byte order of fixed-size keys = order of their big-endian words.
  auto word = [](const char* p) {
    uint64_t w;
    std::memcpy(&w, p, sizeof(w));
    return __builtin_bswap64(w);
  };
  static_assert(keys::kInvertedKeySize == 28);
  std::sort(out.begin(), out.end(), [&](const rocksdb::Slice& a, const rocksdb::Slice& b) {
    for (size_t offset : {0, 8, 16}) {
      const uint64_t x = word(a.data() + offset), y = word(b.data() + offset);
      if (x != y) return x < y;
    }
    return __builtin_bswap32(Load32(a.data() + 24)) < __builtin_bswap32(Load32(b.data() + 24));
  });
  return out;
}

}  // namespace

std::string RocksDbCorpusStore::DocName(const std::string& corpus, uint64_t doc) {
  return absl::StrCat("corpus '", corpus, "' document ", doc);
}

std::string RocksDbCorpusStore::CodesName(const std::string& dict, const std::string& corpus,
                                          uint64_t doc) {
  return absl::StrCat("of dictionary '", dict, "' for ", DocName(corpus, doc));
}

absl::StatusOr<std::unique_ptr<RocksDbCorpusStore>> RocksDbCorpusStore::Open(
    rocksdb::DB* db, const CorpusFamilies& families, DiskSpaceGuard guard) {
  std::unique_ptr<RocksDbCorpusStore> store(
      new RocksDbCorpusStore(db, families, std::move(guard)));
  SAEDICT_RETURN_IF_ERROR(store->LoadNames());
  return store;
}

absl::Status RocksDbCorpusStore::LoadNames() {
  absl::MutexLock write(&write_mu_);
  absl::MutexLock names(&names_mu_);
  uint32_t next = 1;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_.names));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string key = it->key().ToString();
    if (it->value().size() != 4 || key.empty()) {
      return absl::InternalError(absl::StrCat("storage: names entry '", key, "' is corrupt"));
    }
    const uint32_t number = keys::ReadU32(it->value().data());
    if (key == keys::kNextNumberKey) {
      next = std::max(next, number);
      continue;
    }
    if (number == 0 || number == 0xFFFFFFFFu || (key[0] != 'd' && key[0] != 'c')) {
      return absl::InternalError(absl::StrCat("storage: names entry '", key, "' is corrupt"));
    }
    next = std::max(next, number + 1);
    if (key[0] == 'd') {
      dict_numbers_[key.substr(1)] = number;
    } else {
      corpus_numbers_[key.substr(1)] = number;
      corpus_names_[number] = key.substr(1);
    }
  }
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(it->status(), "load names"));
  next_number_ = next;
  return absl::OkStatus();
}

std::optional<uint32_t> RocksDbCorpusStore::DictNumber(const std::string& id) const {
  absl::ReaderMutexLock lock(&names_mu_);
  auto it = dict_numbers_.find(id);
  if (it == dict_numbers_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint32_t> RocksDbCorpusStore::CorpusNumber(const std::string& corpus) const {
  absl::ReaderMutexLock lock(&names_mu_);
  auto it = corpus_numbers_.find(corpus);
  if (it == corpus_numbers_.end()) return std::nullopt;
  return it->second;
}

absl::Status RocksDbCorpusStore::CheckDictionaryRecord(const std::string& id,
                                                       const std::string& weights_sha256) {
  rocksdb::PinnableSlice value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_.dictionaries, id, &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(
        absl::StrCat("storage: dictionary '", id, "' has no record (never loaded or deleted)"));
  }
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("get dictionary '", id, "'")));
  if (weights_sha256.empty()) return absl::OkStatus();
  records::v1::DictionaryRecord record;
  if (!record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::InternalError(absl::StrCat("storage: dictionary record '", id, "' is corrupt"));
  }
  if (record.info().weights_sha256() != weights_sha256) {
    return absl::FailedPreconditionError(
        absl::StrCat("dictionary '", id,
                     "' was replaced during the ingest: this batch was encoded with "
                     "weights sha256 ",
                     weights_sha256, ", the dictionary now has ", record.info().weights_sha256(),
                     "; nothing of this batch was stored, start a new stream"));
  }
  return absl::OkStatus();
}

absl::Mutex* RocksDbCorpusStore::DictionaryLock(const std::string& id) {
  absl::MutexLock lock(&locks_mu_);
  std::unique_ptr<absl::Mutex>& mu = dictionary_locks_[id];
  if (mu == nullptr) mu = std::make_unique<absl::Mutex>();
  return mu.get();
}

size_t RocksDbCorpusStore::DocumentStripe(uint32_t corpus, uint64_t doc) {
  return absl::HashOf(corpus, doc) % kDocumentStripes;
}

absl::StatusOr<RocksDbCorpusStore::Numbers> RocksDbCorpusStore::ResolveNumbers(
    const IngestBatch& batch) {
  std::optional<uint32_t> dict = DictNumber(batch.dictionary_id);
  std::optional<uint32_t> corpus = CorpusNumber(batch.corpus);
  if (dict && corpus) return Numbers{*dict, *corpus};

  absl::MutexLock lock(&write_mu_);
  SAEDICT_RETURN_IF_ERROR(CheckDictionaryRecord(batch.dictionary_id, batch.weights_sha256));
  dict = DictNumber(batch.dictionary_id);  // stable now: only changed under write_mu_
  corpus = CorpusNumber(batch.corpus);
  uint32_t next = next_number_;
  rocksdb::WriteBatch wb;
  auto allocate = [&](std::optional<uint32_t>* number, const std::string& key) -> absl::Status {
    if (number->has_value()) return absl::OkStatus();
    if (next == 0xFFFFFFFFu) {
      return absl::ResourceExhaustedError("storage: dictionary and corpus numbers are exhausted");
    }
    *number = next++;
    return FromRocksDb(wb.Put(cf_.names, key, U32Value(**number)), "allocate number");
  };
  SAEDICT_RETURN_IF_ERROR(allocate(&dict, keys::DictionaryNameKey(batch.dictionary_id)));
  SAEDICT_RETURN_IF_ERROR(allocate(&corpus, keys::CorpusNameKey(batch.corpus)));
  if (wb.Count() > 0) {
    SAEDICT_RETURN_IF_ERROR(
        FromRocksDb(wb.Put(cf_.names, keys::kNextNumberKey, U32Value(next)), "allocate number"));
    SAEDICT_RETURN_IF_ERROR(guard_.Check("allocate numbers"));
    SAEDICT_RETURN_IF_ERROR(
        FromRocksDb(db_->Write(SyncWrite(), &wb),
                    absl::StrCat("allocate numbers of dictionary '", batch.dictionary_id,
                                 "' and corpus '", batch.corpus, "'")));
    next_number_ = next;
    absl::MutexLock names(&names_mu_);
    dict_numbers_[batch.dictionary_id] = *dict;
    corpus_numbers_[batch.corpus] = *corpus;
    corpus_names_[*corpus] = batch.corpus;
  }
  return Numbers{*dict, *corpus};
}

absl::StatusOr<IngestBatchResult> RocksDbCorpusStore::WriteIngestBatch(const IngestBatch& batch) {
  SAEDICT_RETURN_IF_ERROR(ValidateIngestBatch(batch));
  IngestBatchResult result;
  std::vector<PreparedDocument> docs;
  docs.reserve(batch.documents.size());
  StatsDeltas deltas;
  for (const IngestDocument& doc : batch.documents) {
    docs.push_back(PrepareDocument(doc, batch.precision));
    deltas.AddCodes(docs.back().stored.codes, +1);
    deltas.AddTotals(docs.back().tokens, 1);
    result.tokens += docs.back().tokens;
  }
  result.documents = static_cast<int64_t>(docs.size());

  for (int attempt = 1;; ++attempt) {
    SAEDICT_ASSIGN_OR_RETURN(const Numbers n, ResolveNumbers(batch));
    // Keys, outside the lock.
    std::vector<std::string> forward_keys, doc_keys;
    forward_keys.reserve(docs.size());
    doc_keys.reserve(docs.size());
    InvertedKeyBuilder new_inverted;
    for (size_t i = 0; i < docs.size(); ++i) {
      forward_keys.push_back(keys::ForwardKey(n.dict, n.corpus, docs[i].doc_id));
      doc_keys.push_back(keys::DocKey(n.corpus, docs[i].doc_id));
      new_inverted.Add(n.dict, n.corpus, docs[i].doc_id, docs[i].stored.codes);
    }
    // Sorted, the memtable inserts land next to each other (much faster).
    const std::vector<rocksdb::Slice> new_sorted = SortedInvertedKeys(new_inverted.keys());

    // This dictionary's lock, then the stripes of the batch's documents.
    absl::MutexLock dictionary_lock(DictionaryLock(batch.dictionary_id));
    std::vector<size_t> stripes;
    for (const PreparedDocument& doc : docs)
      stripes.push_back(DocumentStripe(n.corpus, doc.doc_id));
    std::sort(stripes.begin(), stripes.end());
    stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
    for (size_t stripe : stripes) document_stripes_[stripe].Lock();
    struct Unlock {
      RocksDbCorpusStore* store;
      const std::vector<size_t>* stripes;
      ~Unlock() {
        for (auto it = stripes->rbegin(); it != stripes->rend(); ++it) {
          store->document_stripes_[*it].Unlock();
        }
      }
    } unlock{this, &stripes};
    SAEDICT_RETURN_IF_ERROR(CheckDictionaryRecord(batch.dictionary_id, batch.weights_sha256));
    if (DictNumber(batch.dictionary_id) != n.dict) {  // its data was deleted meanwhile
      if (attempt < kIngestAttempts) continue;
      return absl::AbortedError(absl::StrCat("storage: dictionary '", batch.dictionary_id,
                                             "' data was deleted during the ingest; retry"));
    }
    rocksdb::WriteBatch wb;
    const rocksdb::ReadOptions ro;
    InvertedKeyBuilder old_inverted;  // index entries of the codes being replaced
    for (size_t i = 0; i < docs.size(); ++i) {
      const PreparedDocument& doc = docs[i];
      // Old codes of this (dict, corpus, doc): remove their index entries and statistics.
      std::string old_forward;
      rocksdb::Status s = db_->Get(ro, cf_.forward, forward_keys[i], &old_forward);
      if (s.ok()) {
        SAEDICT_ASSIGN_OR_RETURN(
            StoredCodes old,
            DecodeCodes(old_forward, CodesName(batch.dictionary_id, batch.corpus, doc.doc_id)));
        old_inverted.Add(n.dict, n.corpus, doc.doc_id, old.codes);
        deltas.AddCodes(old.codes, -1);
        deltas.AddTotals(-old.codes.num_rows, -1);
        ++result.replaced_documents;
      } else if (!s.IsNotFound()) {
        return FromRocksDb(s, absl::StrCat("get codes ", CodesName(batch.dictionary_id,
                                                                   batch.corpus, doc.doc_id)));
      }
      // The document itself, shared by every dictionary.
      std::string old_doc;
      s = db_->Get(ro, cf_.docs, doc_keys[i], &old_doc);
      bool put_doc = true;
      if (s.ok()) {
        records::v1::DocumentRecord record;
        if (!record.ParseFromString(old_doc)) {
          return absl::InternalError(absl::StrCat(
              "storage: document record of ", DocName(batch.corpus, doc.doc_id), " is corrupt"));
        }
        if (record.token_ids() != doc.token_ids) {
          std::vector<std::pair<std::string, uint32_t>> others;
          {
            absl::ReaderMutexLock names(&names_mu_);
            for (const auto& [id, number] : dict_numbers_) {
              if (number != n.dict) others.emplace_back(id, number);
            }
          }
          for (const auto& [id, number] : others) {
            rocksdb::PinnableSlice unused;
            s = db_->Get(ro, cf_.forward, keys::ForwardKey(number, n.corpus, doc.doc_id), &unused);
            if (s.ok()) {
              return absl::FailedPreconditionError(absl::StrCat(
                  "storage: ", DocName(batch.corpus, doc.doc_id),
                  " is stored with different tokens and dictionary '", id,
                  "' holds codes for it; use a new doc_id or delete that dictionary's data"));
            }
            if (!s.IsNotFound()) return FromRocksDb(s, "get codes of another dictionary");
          }
        } else {
          // Same tokens: keep stored strings unless this batch brings some.
          put_doc = doc.has_strings || record.token_strings_size() == 0;
        }
      } else if (!s.IsNotFound()) {
        return FromRocksDb(s, absl::StrCat("get ", DocName(batch.corpus, doc.doc_id)));
      }
      if (put_doc) {
        SAEDICT_RETURN_IF_ERROR(
            FromRocksDb(wb.Put(cf_.docs, doc_keys[i], doc.doc_record), "batch put"));
      }
      SAEDICT_RETURN_IF_ERROR(
          FromRocksDb(wb.Put(cf_.forward, forward_keys[i], doc.forward_value), "batch put"));
    }
    // Old entries are deleted before the new ones are put: an entry in both stays.
    for (const rocksdb::Slice& key : SortedInvertedKeys(old_inverted.keys())) {
      SAEDICT_RETURN_IF_ERROR(FromRocksDb(wb.Delete(cf_.inverted, key), "batch delete"));
    }
    for (const rocksdb::Slice& key : new_sorted) {
      SAEDICT_RETURN_IF_ERROR(
          FromRocksDb(wb.Put(cf_.inverted, key, rocksdb::Slice()), "batch put"));
    }
    absl::Status merged;
    deltas.ForEachFeature([&](uint32_t feature, const StatsDeltas::Feature& delta) {
      if (!merged.ok() || StatsDeltas::IsZero(delta)) return;
      merged = FromRocksDb(wb.Merge(cf_.stats, keys::StatsKey(n.dict, feature),
                                    StatsDeltas::ToRecord(delta).SerializeAsString()),
                           "batch merge");
    });
    SAEDICT_RETURN_IF_ERROR(merged);
    if (!deltas.TotalsZero()) {
      SAEDICT_RETURN_IF_ERROR(
          FromRocksDb(wb.Merge(cf_.stats, keys::StatsKey(n.dict, keys::kTotalsFeature),
                               deltas.TotalsRecord().SerializeAsString()),
                      "batch merge"));
    }
    SAEDICT_RETURN_IF_ERROR(guard_.Check("write ingest batch"));
    SAEDICT_RETURN_IF_ERROR(
        FromRocksDb(db_->Write(SyncWrite(), &wb),
                    absl::StrCat("write ingest batch of dictionary '", batch.dictionary_id,
                                 "' corpus '", batch.corpus, "'")));
    return result;
  }
}

absl::Status RocksDbCorpusStore::DeleteDictionaryData(const std::string& dictionary_id) {
  return DeleteDictionaryImpl(dictionary_id, /*delete_record=*/false, nullptr);
}

absl::Status RocksDbCorpusStore::ReplaceDictionary(const records::v1::DictionaryRecord& record) {
  if (record.info().id().empty()) {
    return absl::InvalidArgumentError("storage: dictionary record has no id");
  }
  return DeleteDictionaryImpl(record.info().id(), /*delete_record=*/false, &record);
}

absl::Status RocksDbCorpusStore::DeleteDictionary(const std::string& dictionary_id) {
  return DeleteDictionaryImpl(dictionary_id, /*delete_record=*/true, nullptr);
}

absl::Status RocksDbCorpusStore::DeleteDictionaryImpl(
    const std::string& id, bool delete_record, const records::v1::DictionaryRecord* replacement) {
  std::optional<uint32_t> number;
  {
    absl::MutexLock dictionary_lock(DictionaryLock(id));  // no commit of it runs meanwhile
    absl::MutexLock lock(&write_mu_);
    number = DictNumber(id);
    rocksdb::WriteBatch wb;
    SAEDICT_RETURN_IF_ERROR(FromRocksDb(wb.DeleteRange(cf_.neighbours, keys::NeighboursBegin(id),
                                                       keys::NeighboursEnd(id)),
                                        "batch delete range"));
    if (number) {
      const std::string begin = keys::DictPrefix(*number), end = keys::DictPrefix(*number + 1);
      for (rocksdb::ColumnFamilyHandle* cf : {cf_.forward, cf_.inverted, cf_.stats}) {
        SAEDICT_RETURN_IF_ERROR(FromRocksDb(wb.DeleteRange(cf, begin, end), "batch delete range"));
      }
      SAEDICT_RETURN_IF_ERROR(
          FromRocksDb(wb.Delete(cf_.names, keys::DictionaryNameKey(id)), "batch delete"));
    }
    if (delete_record) {
      SAEDICT_RETURN_IF_ERROR(FromRocksDb(wb.Delete(cf_.dictionaries, id), "batch delete"));
    }
    if (replacement != nullptr) {
      SAEDICT_RETURN_IF_ERROR(
          FromRocksDb(wb.Put(cf_.dictionaries, id, replacement->SerializeAsString()), "batch put"));
    }
    SAEDICT_RETURN_IF_ERROR(
        FromRocksDb(db_->Write(SyncWrite(), &wb), absl::StrCat("delete dictionary '", id, "'")));
    if (number) {
      absl::MutexLock names(&names_mu_);
      dict_numbers_.erase(id);
    }
  }
  if (!number) return absl::OkStatus();
  // Reclaim the space now rather than whenever compaction reaches the range.
  const std::string begin = keys::DictPrefix(*number), end = keys::DictPrefix(*number + 1);
  const rocksdb::Slice b(begin), e(end);
  rocksdb::CompactRangeOptions options;
  options.exclusive_manual_compaction = false;  // automatic compactions go on meanwhile
  for (rocksdb::ColumnFamilyHandle* cf : {cf_.forward, cf_.inverted, cf_.stats}) {
    rocksdb::Status s = db_->CompactRange(options, cf, &b, &e);
    if (!s.ok()) {
      LogWarning(absl::StrCat("storage: compacting deleted dictionary '", id,
                              "' failed (space is reclaimed later): ", s.ToString()));
    }
  }
  return absl::OkStatus();
}

}  // namespace saedict::storage
