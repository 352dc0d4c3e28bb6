// CorpusStore: documents, their sparse latents per dictionary, running
// feature statistics and the value-ordered inverted index, in the same
// RocksDB instance as Store (DESIGN.md §4). Obtained from Store::corpus().
//
// Column families and keys (all integers big-endian, so scans come out
// ordered; dictionaries and corpora are named by a u32 "number" allocated in
// the "names" family so keys stay short):
//   names    : 'd' <dict id> -> u32 | 'c' <corpus> -> u32 | "next" -> u32
//   docs     : [corpus u32][doc u64]                 -> DocumentRecord
//   forward  : [dict u32][corpus u32][doc u64]       -> codes of every token
//              (varint token count, per token varint nnz, delta-coded varint
//              indices, then all values as f16 or f32; see codes_codec.h)
//   inverted : [dict u32][feature u32][~ordered(peak) u32][corpus u32]
//              [doc u64][peak pos u32] -> empty: one key per (feature,
//              document the feature is active in), ordered by the feature's
//              largest value in that document, descending. Top-N is a prefix
//              scan that stops once N activations from the documents read
//              (their forward records) beat the next document's peak;
//              quantile sampling is a seek. One key per document instead of
//              per activation keeps ingest to a few memtable inserts per
//              token (a 256-token document with k=16 has ~4096 activations
//              but only a few hundred active features).
//   stats    : [dict u32][feature u32] -> StatsRecord (merge operator:
//              field-wise add) and [dict u32][0xFFFFFFFF] -> totals
//
// Writes: one ingest batch is one WriteBatch, synced to the WAL before
// WriteIngestBatch returns, so an acknowledged batch survives kill -9 and a
// half-written batch is never visible. Re-ingesting (dict, corpus, doc)
// replaces its forward record, deletes its old inverted keys and merges
// the negated old statistics in the same batch. Batches of one dictionary
// are applied one at a time (a writer lock per dictionary), and batches that
// touch the same document (whose record every dictionary shares) one at a
// time, which makes re-ingest through concurrent streams consistent; ingests
// into different dictionaries run alongside, and the expensive key building
// happens outside the locks.
//
// Thread safety: all methods may be called concurrently.
#ifndef SAEDICT_STORAGE_CORPUS_STORE_H_
#define SAEDICT_STORAGE_CORPUS_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "saedict/records/v1/records.pb.h"
#include "util/sparse_codes.h"

namespace saedict::storage {

enum class ValuePrecision { kF32, kF16 };

// CSR codes of the tokens of one document: the shared type
// (util/sparse_codes.h), one row per token. Codes read back from the store
// have num_features 0 (the store does not keep d_sae).
using DocumentCodes = ::saedict::SparseCodes;

struct IngestDocument {
  uint64_t doc_id = 0;
  std::vector<int32_t> token_ids;
  std::vector<std::string> token_strings;  // empty or token_ids.size()
  DocumentCodes codes;                     // num_rows == token_ids.size()
};

struct IngestBatch {
  std::string dictionary_id;
  // The content hash of the weights that encoded the batch; when set, the
  // write is refused (FAILED_PRECONDITION) unless the dictionary's record
  // names the same weights, so a replace during an ingest never mixes weights.
  std::string weights_sha256;
  int64_t d_sae = 0;  // every index must be < d_sae
  std::string corpus;
  // kF16 falls back to kF32 for a document with a value f16 cannot hold.
  ValuePrecision precision = ValuePrecision::kF32;
  std::vector<IngestDocument> documents;
};

struct IngestBatchResult {
  int64_t documents = 0;
  int64_t tokens = 0;
  int64_t replaced_documents = 0;
};

struct StoredDocument {
  std::vector<int32_t> token_ids;
  std::vector<std::string> token_strings;
};

struct StoredCodes {
  DocumentCodes codes;
  ValuePrecision precision = ValuePrecision::kF32;
};

// One activation of a feature: a token of a stored document.
struct TokenRef {
  std::string corpus;
  uint64_t doc_id = 0;
  uint32_t position = 0;
  float value = 0;
  // The document and the feature's value at each of its rows (0 where
  // inactive), as read under the same snapshot as the index entry (shared by
  // the refs of one document), so an example's context needs no second read
  // and cannot disagree with the entry. Set by TopTokens and
  // SampleTokensInRanges of the RocksDB store; null when a store leaves them
  // out (the caller then reads them itself).
  std::shared_ptr<const StoredDocument> document;
  std::shared_ptr<const std::vector<float>> feature_values;
};

struct FeatureStatsRecord {
  int64_t count = 0;  // active tokens
  double sum = 0;
  double sum_sq = 0;
  std::optional<float> max;  // from the first inverted key; nullopt when count == 0
  std::vector<std::pair<int32_t, int64_t>> bins;  // (HistogramBin index, count), ascending
};

struct DictionaryTotals {
  int64_t tokens = 0;
  int64_t documents = 0;
};

// Quarter-octave log bins over |value|, signed for negative values:
// bin b > 0 covers [2^((b-1-kBinOffset)/4), 2^((b-kBinOffset)/4)); -b mirrors
// it for negative values. Values of exactly 0 are never stored.
// kBinOffset = 600 puts every finite non-zero |value| in bins 5..1112.
inline constexpr int32_t kBinOffset = 600;
int32_t HistogramBin(float value);
std::pair<float, float> HistogramBinRange(int32_t bin);  // [lower, upper)
// HistogramBin's defining frexp formula, slower; for tests of the fast path.
int32_t HistogramBinReferenceForTest(float value);

class CorpusStore {
 public:
  virtual ~CorpusStore() = default;

  // Validates the whole batch first (INVALID_ARGUMENT naming the document and
  // field: codes/token count mismatch, strings count, index >= d_sae, non
  // finite value, duplicate doc id in the batch), then writes it atomically
  // and synced. NOT_FOUND when the dictionary has no record in Store (e.g.
  // deleted while an ingest was running). FAILED_PRECONDITION when the
  // record names other weights than batch.weights_sha256, or when the
  // document is stored with different tokens and another dictionary holds
  // codes for it. Values of exactly 0 are dropped.
  virtual absl::StatusOr<IngestBatchResult> WriteIngestBatch(const IngestBatch& batch) = 0;

  // nullopt when absent.
  virtual absl::StatusOr<std::optional<StoredDocument>> GetDocument(const std::string& corpus,
                                                                    uint64_t doc_id) = 0;
  virtual absl::StatusOr<std::optional<StoredCodes>> GetCodes(const std::string& dictionary_id,
                                                              const std::string& corpus,
                                                              uint64_t doc_id) = 0;

  // Zero stats (count 0, no max) for a feature never seen.
  virtual absl::StatusOr<FeatureStatsRecord> GetFeatureStats(const std::string& dictionary_id,
                                                             uint32_t feature) = 0;
  virtual absl::StatusOr<DictionaryTotals> GetDictionaryTotals(
      const std::string& dictionary_id) = 0;

  // Activations of `feature`, at most `limit`, in descending value order
  // (ties: corpus number, document, position ascending). Without
  // start_at_or_below: the exact top `limit` over every stored token. With
  // it: the highest activations <= *start_at_or_below among the documents
  // whose peak for the feature is <= *start_at_or_below (a seek in the
  // inverted index; what quantile sampling needs, not an exact ranking).
  virtual absl::StatusOr<std::vector<TokenRef>> TopTokens(
      const std::string& dictionary_id, uint32_t feature, int64_t limit,
      std::optional<float> start_at_or_below = std::nullopt) = 0;

  // A value interval [lower, upper) of a feature's activations; `upper` is
  // included when upper_inclusive (the top bin, or a degenerate lower == upper).
  struct ValueRange {
    float lower = 0;
    float upper = 0;
    bool upper_inclusive = false;
  };
  // Up to `per_range` activations of `feature` inside each range, spread
  // over the range's values (evenly spaced by rank among the candidates
  // found, ascending order of value within a range is not promised: they come
  // sorted descending). Documents are read under one snapshot by the rule of
  // CollectRangeCandidates (token_ranking.h): first each range's own
  // documents (peak inside it), then the rest in descending peak order, until
  // every range holds candidates_per_range candidates or no document left
  // can hold a value of a range still short (its peak is below the range):
  // a range with matching activations never comes back empty.
  // INVALID_ARGUMENT for a NaN bound or lower > upper.
  virtual absl::StatusOr<std::vector<std::vector<TokenRef>>> SampleTokensInRanges(
      const std::string& dictionary_id, uint32_t feature, const std::vector<ValueRange>& ranges,
      int64_t per_range, int64_t candidates_per_range) = 0;

  // Calls fn with the stored codes of every document of the dictionary (all
  // corpora), under one snapshot, in key order; stops at fn's first error
  // and returns it. What co-occurrence counts read.
  virtual absl::Status ScanCodes(const std::string& dictionary_id,
                                 const std::function<absl::Status(const StoredCodes&)>& fn) = 0;

  // Calls fn(doc_id, codes under A, codes under B) for every document of
  // `corpus` that both dictionaries hold codes for, in document order,
  // under one snapshot; stops at fn's first error and returns it. Unknown
  // dictionaries or corpus: no calls. What the activation comparison reads.
  using CodePairFn =
      std::function<absl::Status(uint64_t doc_id, const StoredCodes& a, const StoredCodes& b)>;
  virtual absl::Status ScanCodePairs(const std::string& dictionary_a,
                                     const std::string& dictionary_b, const std::string& corpus,
                                     const CodePairFn& fn) = 0;

  // Precomputed neighbours (the index builder's output), keyed by dictionary
  // id. PutNeighbours writes records first_feature, first_feature + 1, ...
  // in one batch; the manifest marks a complete run. Removed with the
  // dictionary's data (DeleteDictionaryData, replace, delete).
  virtual absl::Status PutNeighbours(const std::string& dictionary_id, uint32_t first_feature,
                                     const std::vector<records::v1::NeighboursRecord>& records) = 0;
  virtual absl::StatusOr<std::optional<records::v1::NeighboursRecord>> GetNeighbours(
      const std::string& dictionary_id, uint32_t feature) = 0;
  virtual absl::Status PutNeighboursManifest(const std::string& dictionary_id,
                                             const records::v1::NeighboursManifest& manifest) = 0;
  virtual absl::StatusOr<std::optional<records::v1::NeighboursManifest>> GetNeighboursManifest(
      const std::string& dictionary_id) = 0;
  virtual absl::Status DeleteNeighbours(const std::string& dictionary_id) = 0;

  // Removes every forward, inverted, stats and neighbours record of the
  // dictionary and its number (documents stay: they belong to their
  // corpus). OK when it has none.
  virtual absl::Status DeleteDictionaryData(const std::string& dictionary_id) = 0;
};

}  // namespace saedict::storage

#endif  // SAEDICT_STORAGE_CORPUS_STORE_H_
