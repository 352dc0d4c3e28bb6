// ExplanationStore: feature explanations and their BM25 inverted index, in
// two column families of the Store's RocksDB database.
//
// Layout (integers big-endian):
//   explanations:      <dict id> 0x00 <feature u32> <id, 16 hex digits>
//                      -> records::v1::ExplanationRecord
//   explanation_terms: <term> 0x00 <dict id> 0x00 <feature u32> <id>
//                      -> <term frequency u32><document length u32>  (a posting)
//                      "\x01totals" -> <explanations u64><terms u64>
// Terms never contain 0x00 and never start with 0x01 (explanation_terms.h);
// dictionary ids never contain 0x00 (resource_name.h), so every prefix scan
// is unambiguous. One Write() changes records, postings and totals in one
// synced WriteBatch: the search index never disagrees with the records, and
// a crash leaves either all of a write or none of it.
//
// Search ranks by BM25 (k1 = 1.2, b = 0.75) with Lucene's non-negative IDF
// ln(1 + (N - df + 0.5) / (df + 0.5)), N and df over all dictionaries, the
// average document length from the totals.
//
// Thread safety: every method may be called concurrently; writes are
// serialised by one mutex (they read the old postings and the totals), reads
// use a RocksDB snapshot.
#ifndef SAEDICT_STORAGE_EXPLANATION_STORE_H_
#define SAEDICT_STORAGE_EXPLANATION_STORE_H_

#include <cstdint>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "saedict/records/v1/records.pb.h"
#include "storage/disk_space.h"

namespace saedict::storage {

struct ExplanationKey {
  std::string dictionary_id;
  uint32_t feature = 0;
  std::string id;  // 16 lowercase hex digits

  bool operator==(const ExplanationKey& o) const {
    return feature == o.feature && dictionary_id == o.dictionary_id && id == o.id;
  }
  bool operator<(const ExplanationKey& o) const;  // dictionary, feature, id
};

struct StoredExplanation {
  ExplanationKey key;
  records::v1::ExplanationRecord record;
};

struct ExplanationMatch {
  ExplanationKey key;
  double score = 0;
  std::vector<std::string> matched_terms;  // in query order
};

struct ExplanationTotals {
  uint64_t explanations = 0;
  uint64_t terms = 0;
};

class ExplanationStore {
 public:
  // REQUIRES: db and the two handles outlive the store.
  ExplanationStore(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* explanations,
                   rocksdb::ColumnFamilyHandle* terms, DiskSpaceGuard guard = DiskSpaceGuard({}, 0));

  // Removes the records of `remove` (absent ones are skipped) and writes
  // those of `put` (replacing one with the same key; record.term_count is
  // set here), with their postings and the totals, as one WriteBatch. A key
  // may appear in both: it is replaced. INVALID_ARGUMENT for a malformed
  // key, RESOURCE_EXHAUSTED when `put` is non-empty and the disk is full.
  absl::Status Write(const std::vector<ExplanationKey>& remove,
                     const std::vector<StoredExplanation>& put);

  // nullopt when absent; INTERNAL when the stored bytes do not parse.
  absl::StatusOr<std::optional<records::v1::ExplanationRecord>> Get(const ExplanationKey& key);
  // The feature's explanations in id order.
  absl::StatusOr<std::vector<StoredExplanation>> List(const std::string& dictionary_id,
                                                      uint32_t feature);
  // Every explanation of the dictionary (all of them when empty), in key order.
  absl::Status ForEach(const std::string& dictionary_id,
                       const std::function<absl::Status(const StoredExplanation&)>& fn);
  // Removes every explanation of the dictionary and its postings.
  absl::Status DeleteDictionary(const std::string& dictionary_id);

  // Explanations containing at least one of `terms` (query terms, repeats
  // ignored; at most kMaxQueryTerms distinct ones count), best BM25 score
  // first, ties in key order; only those of `dictionary_ids` unless it is
  // empty. Only the best `limit` are returned; `total` (when given) gets how
  // many matched.
  static constexpr size_t kMaxQueryTerms = 64;
  absl::StatusOr<std::vector<ExplanationMatch>> Search(
      const std::vector<std::string>& terms, const std::vector<std::string>& dictionary_ids,
      size_t limit = SIZE_MAX, size_t* total = nullptr);
  absl::StatusOr<ExplanationTotals> Totals();

 private:
  absl::StatusOr<ExplanationTotals> ReadTotals(const rocksdb::ReadOptions& ro);

  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const records_;
  rocksdb::ColumnFamilyHandle* const terms_;
  const DiskSpaceGuard guard_;
  absl::Mutex write_mu_;
};

}  // namespace saedict::storage

#endif  // SAEDICT_STORAGE_EXPLANATION_STORE_H_
