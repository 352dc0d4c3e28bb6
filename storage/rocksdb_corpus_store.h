// RocksDbCorpusStore: the RocksDB implementation of CorpusStore (contract and
// key layout: corpus_store.h), living in the Store's database.
//
// Dictionary and corpus numbers are kept in memory as well as in "names"
// (loaded at Open; changed only under write_mu_, after the batch that
// persists the change is written), so lookups cost no I/O. Numbers are never
// reused: a deleted dictionary's keys can never be mistaken for a later one's.
//
// Thread safety: all methods may be called concurrently. An ingest commit
// holds its dictionary's lock and the stripes of its documents; a delete or
// replace holds the dictionary's lock; number allocation holds write_mu_.
// Reads take none beyond a short shared lock on the name maps.
#ifndef SAEDICT_STORAGE_ROCKSDB_CORPUS_STORE_H_
#define SAEDICT_STORAGE_ROCKSDB_CORPUS_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "saedict/records/v1/records.pb.h"
#include "storage/corpus_store.h"
#include "storage/disk_space.h"

namespace saedict::storage {

struct CorpusFamilies {
  rocksdb::ColumnFamilyHandle* dictionaries = nullptr;  // Store's records: existence check
  rocksdb::ColumnFamilyHandle* names = nullptr;
  rocksdb::ColumnFamilyHandle* docs = nullptr;
  rocksdb::ColumnFamilyHandle* forward = nullptr;
  rocksdb::ColumnFamilyHandle* inverted = nullptr;
  rocksdb::ColumnFamilyHandle* stats = nullptr;
  rocksdb::ColumnFamilyHandle* neighbours = nullptr;
};

class RocksDbCorpusStore final : public CorpusStore {
 public:
  // Loads the names family; INTERNAL when an entry is malformed.
  // REQUIRES: `db` and the handles outlive the store.
  // `guard` is asked before every write that adds data (disk_space.h); the
  // default never refuses.
  static absl::StatusOr<std::unique_ptr<RocksDbCorpusStore>> Open(
      rocksdb::DB* db, const CorpusFamilies& families,
      DiskSpaceGuard guard = DiskSpaceGuard({}, 0));

  absl::StatusOr<IngestBatchResult> WriteIngestBatch(const IngestBatch& batch) override;
  absl::StatusOr<std::optional<StoredDocument>> GetDocument(const std::string& corpus,
                                                            uint64_t doc_id) override;
  absl::StatusOr<std::optional<StoredCodes>> GetCodes(const std::string& dictionary_id,
                                                      const std::string& corpus,
                                                      uint64_t doc_id) override;
  absl::StatusOr<FeatureStatsRecord> GetFeatureStats(const std::string& dictionary_id,
                                                     uint32_t feature) override;
  absl::StatusOr<DictionaryTotals> GetDictionaryTotals(const std::string& dictionary_id) override;
  absl::StatusOr<std::vector<TokenRef>> TopTokens(const std::string& dictionary_id,
                                                  uint32_t feature, int64_t limit,
                                                  std::optional<float> start_at_or_below) override;
  absl::StatusOr<std::vector<std::vector<TokenRef>>> SampleTokensInRanges(
      const std::string& dictionary_id, uint32_t feature, const std::vector<ValueRange>& ranges,
      int64_t per_range, int64_t candidates_per_range) override;
  absl::Status DeleteDictionaryData(const std::string& dictionary_id) override;
  absl::Status ScanCodes(const std::string& dictionary_id,
                         const std::function<absl::Status(const StoredCodes&)>& fn) override;
  absl::Status ScanCodePairs(const std::string& dictionary_a, const std::string& dictionary_b,
                             const std::string& corpus, const CodePairFn& fn) override;
  absl::Status PutNeighbours(const std::string& dictionary_id, uint32_t first_feature,
                             const std::vector<records::v1::NeighboursRecord>& records) override;
  absl::StatusOr<std::optional<records::v1::NeighboursRecord>> GetNeighbours(
      const std::string& dictionary_id, uint32_t feature) override;
  absl::Status PutNeighboursManifest(const std::string& dictionary_id,
                                     const records::v1::NeighboursManifest& manifest) override;
  absl::StatusOr<std::optional<records::v1::NeighboursManifest>> GetNeighboursManifest(
      const std::string& dictionary_id) override;
  absl::Status DeleteNeighbours(const std::string& dictionary_id) override;

  // Store::DeleteDictionary: DeleteDictionaryData and the "dictionaries"
  // record in one synced batch.
  absl::Status DeleteDictionary(const std::string& dictionary_id);
  // Store::ReplaceDictionary: DeleteDictionaryData and the new record in one
  // synced batch.
  absl::Status ReplaceDictionary(const records::v1::DictionaryRecord& record);

 private:
  struct Numbers {
    uint32_t dict = 0;
    uint32_t corpus = 0;
  };

  RocksDbCorpusStore(rocksdb::DB* db, const CorpusFamilies& families, DiskSpaceGuard guard)
      : db_(db), cf_(families), guard_(std::move(guard)) {}

  absl::Status LoadNames();
  class FeatureScan;  // one feature's index entries under a snapshot (rocksdb_corpus_reads.cc)
  // "corpus 'c' document 7" / "of dictionary 'd' for corpus 'c' document 7", for messages.
  static std::string DocName(const std::string& corpus, uint64_t doc);
  static std::string CodesName(const std::string& dict, const std::string& corpus, uint64_t doc);
  // The document record at `corpus_number`/`doc_id` read with `ro`; nullopt when absent.
  absl::StatusOr<std::optional<StoredDocument>> ReadDocument(const rocksdb::ReadOptions& ro,
                                                             uint32_t corpus_number,
                                                             const std::string& corpus,
                                                             uint64_t doc_id);
  std::optional<uint32_t> DictNumber(const std::string& id) const ABSL_LOCKS_EXCLUDED(names_mu_);
  std::optional<uint32_t> CorpusNumber(const std::string& corpus) const
      ABSL_LOCKS_EXCLUDED(names_mu_);
  // The numbers of the batch's dictionary and corpus, allocating (and
  // persisting, synced) missing ones. NOT_FOUND when the dictionary has no record.
  absl::StatusOr<Numbers> ResolveNumbers(const IngestBatch& batch) ABSL_LOCKS_EXCLUDED(write_mu_);
  // NOT_FOUND without a record; FAILED_PRECONDITION when weights_sha256 is
  // set and the record names other weights (the dictionary was replaced).
  // REQUIRES: the dictionary's lock or write_mu_ (a stable answer needs the former).
  absl::Status CheckDictionaryRecord(const std::string& id, const std::string& weights_sha256);
  // Deletes the dictionary's data; then deletes its record, or (replacement
  // non-null) writes the replacement record, in the same batch.
  absl::Status DeleteDictionaryImpl(const std::string& id, bool delete_record,
                                    const records::v1::DictionaryRecord* replacement)
      ABSL_LOCKS_EXCLUDED(write_mu_);

  rocksdb::DB* const db_;
  const CorpusFamilies cf_;
  const DiskSpaceGuard guard_;

  // Lock order: a dictionary's lock, then document stripes (ascending), then
  // write_mu_, then names_mu_.
  // The writer lock of one dictionary: its ingest commits, deletes and
  // replaces; ingests into other dictionaries run alongside.
  absl::Mutex* DictionaryLock(const std::string& id) ABSL_LOCKS_EXCLUDED(locks_mu_);
  // Stripes over (corpus number, doc id): a document record is shared by
  // every dictionary, so commits touching the same document serialise here.
  static constexpr size_t kDocumentStripes = 64;
  static size_t DocumentStripe(uint32_t corpus, uint64_t doc);
  absl::Mutex locks_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<absl::Mutex>> dictionary_locks_
      ABSL_GUARDED_BY(locks_mu_);
  absl::Mutex document_stripes_[kDocumentStripes];
  absl::Mutex write_mu_;  // number allocation and the names family
  mutable absl::Mutex names_mu_;
  absl::flat_hash_map<std::string, uint32_t> dict_numbers_ ABSL_GUARDED_BY(names_mu_);
  absl::flat_hash_map<std::string, uint32_t> corpus_numbers_ ABSL_GUARDED_BY(names_mu_);
  absl::flat_hash_map<uint32_t, std::string> corpus_names_ ABSL_GUARDED_BY(names_mu_);
  uint32_t next_number_ ABSL_GUARDED_BY(write_mu_) = 1;
};

}  // namespace saedict::storage

#endif  // SAEDICT_STORAGE_ROCKSDB_CORPUS_STORE_H_
