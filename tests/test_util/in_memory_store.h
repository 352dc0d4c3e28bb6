// InMemoryStore / InMemoryCorpusStore: fakes of storage::Store and
// storage::CorpusStore (storage/store.h, storage/corpus_store.h) that keep
// everything in memory, for tests of the layers above storage/ (the service
// core, the gRPC front end, the client) that need no RocksDB directory.
//
// Contract: each method honours the comment of the interface method it
// implements, with the same status codes and orderings as the RocksDB store;
// tests/storage/store_contract_test.cc runs one suite against both backends
// and a random workload comparing their answers. In particular:
//  - WriteIngestBatch validates with storage's ValidateIngestBatch and keeps
//    exactly the values RocksDB keeps (storage's PrepareDocument: zeros
//    dropped, f16 rounding or the per-document f32 fallback); NOT_FOUND
//    without a record, FAILED_PRECONDITION on a weights_sha256 mismatch or a
//    document stored with other tokens that another dictionary holds codes
//    for; re-ingest replaces codes and statistics; nothing of a failed batch
//    is visible.
//  - Codes read back have num_features 0 (the store does not keep d_sae).
//  - TopTokens / SampleTokensInRanges order documents like the inverted
//    index (peak descending, then corpus number, document ascending) and
//    break ties by corpus number, document, position; corpus numbers are
//    handed out in order of first ingest, as RocksDB does. Like RocksDB's,
//    their TokenRefs carry the document and codes they were found in (the
//    stored objects themselves, shared: stored values are immutable).
//  - Feature statistics are recomputed from the stored codes on each call
//    (RocksDB keeps running sums: sums may differ in the last bits).
//  - explanations() is the real storage::ExplanationStore over a RocksDB
//    database in RocksDB's in-memory Env (no files), so explanation search
//    is never reimplemented; a delete removes the dictionary's explanations.
//  - Checkpoint(dir) writes a real RocksDB database at `dir` (through
//    storage::Store::Open) holding the same records, documents and codes, so
//    service::CreateCheckpoint and a restore with Store::Open work on it.
//    Corpus numbers keep their order; the checkpoint's statistics are
//    RocksDB's recomputation of the same codes.
// Queries scan every stored document of the dictionary: meant for test-sized
// corpora, not for benchmarks.
//
// Thread safety: every method may be called concurrently; one mutex guards
// all state of a store and its corpus store, so each write is atomic and
// every read sees a consistent state. Checkpoint copies the state under the
// mutex and writes the copy without it.
#ifndef SAEDICT_TESTS_TEST_UTIL_IN_MEMORY_STORE_H_
#define SAEDICT_TESTS_TEST_UTIL_IN_MEMORY_STORE_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "saedict/records/v1/records.pb.h"
#include "storage/corpus_store.h"
#include "storage/store.h"

namespace saedict::testing {

struct InMemoryState;  // in_memory_store.cc
struct MemoryEnvExplanations;

class InMemoryCorpusStore final : public storage::CorpusStore {
 public:
  // REQUIRES: `state` outlives the corpus store (InMemoryStore owns both).
  explicit InMemoryCorpusStore(InMemoryState* state) : state_(state) {}

  absl::StatusOr<storage::IngestBatchResult> WriteIngestBatch(
      const storage::IngestBatch& batch) override;
  absl::StatusOr<std::optional<storage::StoredDocument>> GetDocument(const std::string& corpus,
                                                                     uint64_t doc_id) override;
  absl::StatusOr<std::optional<storage::StoredCodes>> GetCodes(const std::string& dictionary_id,
                                                               const std::string& corpus,
                                                               uint64_t doc_id) override;
  absl::StatusOr<storage::FeatureStatsRecord> GetFeatureStats(const std::string& dictionary_id,
                                                              uint32_t feature) override;
  absl::StatusOr<storage::DictionaryTotals> GetDictionaryTotals(
      const std::string& dictionary_id) override;
  absl::StatusOr<std::vector<storage::TokenRef>> TopTokens(
      const std::string& dictionary_id, uint32_t feature, int64_t limit,
      std::optional<float> start_at_or_below) override;
  absl::StatusOr<std::vector<std::vector<storage::TokenRef>>> SampleTokensInRanges(
      const std::string& dictionary_id, uint32_t feature, const std::vector<ValueRange>& ranges,
      int64_t per_range, int64_t candidates_per_range) override;
  absl::Status DeleteDictionaryData(const std::string& dictionary_id) override;
  absl::Status ScanCodes(const std::string& dictionary_id,
                         const std::function<absl::Status(const storage::StoredCodes&)>& fn) override;
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

 private:
  InMemoryState* const state_;
};

class InMemoryStore final : public storage::Store {
 public:
  InMemoryStore();
  ~InMemoryStore() override;
  InMemoryStore(const InMemoryStore&) = delete;
  InMemoryStore& operator=(const InMemoryStore&) = delete;

  absl::Status PutDictionary(const records::v1::DictionaryRecord& record) override;
  absl::StatusOr<std::optional<records::v1::DictionaryRecord>> GetDictionary(
      const std::string& id) override;
  absl::StatusOr<std::vector<records::v1::DictionaryRecord>> ListDictionaries() override;
  absl::Status DeleteDictionary(const std::string& id) override;
  absl::Status ReplaceDictionary(const records::v1::DictionaryRecord& record) override;
  storage::CorpusStore* corpus() override { return &corpus_; }
  storage::ExplanationStore* explanations() override;
  absl::Status Checkpoint(const std::filesystem::path& dir) override;
  // No column families in memory: none to report.
  std::vector<storage::FamilySize> FamilySizes() override { return {}; }

 private:
  std::unique_ptr<InMemoryState> state_;
  InMemoryCorpusStore corpus_;
  std::unique_ptr<MemoryEnvExplanations> explanations_;
};

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_TEST_UTIL_IN_MEMORY_STORE_H_
