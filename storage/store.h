// Store: saedict's durable state in one RocksDB directory.
//
// One column family per kind of record (DESIGN.md §4); this file covers
// dictionary metadata ("dictionaries": id -> DictionaryRecord) and hands out
// the CorpusStore (corpus_store.h) that keeps documents, latents, inverted
// index and feature statistics in the same RocksDB instance. Writes are
// synced to the WAL before they return, so an acknowledged write survives
// kill -9. RocksDB errors become absl::Status here and nowhere else:
// corruption -> INTERNAL, I/O errors -> UNAVAILABLE, a full disk ->
// RESOURCE_EXHAUSTED (checked before the write, see disk_space.h).
//
// Thread safety: every method may be called concurrently (RocksDB is).
#ifndef SAEDICT_STORAGE_STORE_H_
#define SAEDICT_STORAGE_STORE_H_

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "saedict/records/v1/records.pb.h"
#include "storage/corpus_store.h"
#include "storage/explanation_store.h"

namespace saedict::storage {

// Size of one column family, for metrics (RocksDB's own estimates).
struct FamilySize {
  std::string name;             // the column family ("docs", "forward", ...)
  uint64_t sst_bytes = 0;       // rocksdb.total-sst-files-size
  uint64_t memtable_bytes = 0;  // rocksdb.size-all-mem-tables
  uint64_t estimated_keys = 0;  // rocksdb.estimate-num-keys
};

struct StoreOptions {
  std::filesystem::path path;  // RocksDB directory; created when missing
  bool create_if_missing = true;
  // Writes that add data fail with RESOURCE_EXHAUSTED while the directory's
  // filesystem has fewer bytes available (disk_space.h); 0: never refused.
  uint64_t min_free_bytes = 0;
};

class Store {
 public:
  // UNAVAILABLE when the directory cannot be opened (e.g. locked by another
  // process), INTERNAL when it is corrupt.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);
  virtual ~Store() = default;

  // Inserts or replaces the record keyed by record.info().id().
  virtual absl::Status PutDictionary(const records::v1::DictionaryRecord& record) = 0;
  // nullopt when absent; INTERNAL when the stored bytes do not parse.
  virtual absl::StatusOr<std::optional<records::v1::DictionaryRecord>> GetDictionary(
      const std::string& id) = 0;
  // All records in id order.
  virtual absl::StatusOr<std::vector<records::v1::DictionaryRecord>> ListDictionaries() = 0;
  // Removes the dictionary's explanations, then the record and every corpus
  // record of the dictionary (forward, inverted, stats; see
  // CorpusStore::DeleteDictionaryData), serialised with ingest writes so no
  // batch lands after it. OK whether or not it existed.
  virtual absl::Status DeleteDictionary(const std::string& id) = 0;
  // Writes `record` in place of the existing one and drops every corpus
  // record of the dictionary (latents of the old weights), atomically and
  // serialised with ingest writes. Explanations stay (each names the
  // weights it was written for).
  virtual absl::Status ReplaceDictionary(const records::v1::DictionaryRecord& record) = 0;

  // Documents, latents, statistics. Owned by the Store; valid while it lives.
  virtual CorpusStore* corpus() = 0;
  // Feature explanations and their search index. Owned by the Store.
  virtual ExplanationStore* explanations() = 0;

  // A consistent RocksDB checkpoint (hard links where possible) of the whole
  // database in `dir`, which must not exist yet (ALREADY_EXISTS otherwise).
  virtual absl::Status Checkpoint(const std::filesystem::path& dir) = 0;

  // Every column family's size, in FamilyIndex order (none for a store
  // without column families).
  virtual std::vector<FamilySize> FamilySizes() = 0;
};

}  // namespace saedict::storage

#endif  // SAEDICT_STORAGE_STORE_H_
