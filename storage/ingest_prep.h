// The CPU work of an ingest batch that needs no lock and no dictionary or
// corpus number: validation (INVALID_ARGUMENT naming the document and
// field), the values as they will be stored (zeros dropped, f16 rounding or
// the f32 fallback), forward record bytes, DocumentRecord bytes, inverted
// keys and per-feature statistics deltas.
//
// Thread safety: free functions are pure; a StatsDeltas is a plain value
// (not synchronised).
#ifndef SAEDICT_STORAGE_INGEST_PREP_H_
#define SAEDICT_STORAGE_INGEST_PREP_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "saedict/records/v1/records.pb.h"
#include "storage/corpus_store.h"

namespace saedict::storage {

// Everything the batch must satisfy before anything is written: non-empty
// dictionary id and corpus, 0 < d_sae < 2^32, per document the CSR shape
// (rows == tokens, offsets from 0 ascending to indices.size() ==
// values.size()), token_strings empty or one per token, indices < d_sae and
// strictly ascending within a row, finite values, unique doc ids.
absl::Status ValidateIngestBatch(const IngestBatch& batch);

struct PreparedDocument {
  uint64_t doc_id = 0;
  int64_t tokens = 0;
  StoredCodes stored;         // exactly what GetCodes will return
  std::string forward_value;  // EncodeCodes(stored)
  std::string token_ids;      // DocumentRecord.token_ids (LE int32)
  bool has_strings = false;
  std::string doc_record;  // serialized DocumentRecord
};

// REQUIRES: `doc` passed ValidateIngestBatch. Values of exactly 0 (also
// after rounding to f16) are dropped; kF16 becomes kF32 for the document when
// a value overflows half.
PreparedDocument PrepareDocument(const IngestDocument& doc, ValuePrecision precision);

// The kInvertedKeySize-byte inverted keys of documents, one per feature
// active in a document: [dict][feature][~peak value][corpus][doc][peak
// position], the peak being the feature's largest value in the document and
// the first position holding it. Linear in the document's non-zeros (a
// per-feature scratch, reused across documents, instead of a sort).
class InvertedKeyBuilder {
 public:
  // REQUIRES: `codes` is a valid CSR (ValidateIngestBatch or decoded codes).
  void Add(uint32_t dict, uint32_t corpus, uint64_t doc, const DocumentCodes& codes);
  // The keys added so far, concatenated; within a document in feature order.
  const std::string& keys() const { return keys_; }

 private:
  struct Peak {
    float value;
    uint32_t pos;
  };
  static constexpr uint32_t kUntouched = 0xFFFFFFFFu;
  // Features below this use the dense scratch (8 bytes each, 32 MiB at most).
  static constexpr uint32_t kDenseFeatures = 1u << 22;
  // Keeps `value` at `pos` as f's peak unless an earlier position holds one as large.
  void Offer(Peak& peak, uint32_t f, float value, uint32_t pos);
  std::string keys_;
  std::vector<Peak> dense_;                            // pos == kUntouched between documents
  absl::flat_hash_map<uint32_t, Peak> sparse_;         // features >= kDenseFeatures
  std::vector<uint32_t> touched_;                      // features of the current document
};

// Per-feature statistics changes of one batch, plus the totals change.
class StatsDeltas {
 public:
  struct Feature {
    int64_t count = 0;
    double sum = 0;
    double sum_sq = 0;
    std::vector<std::pair<int32_t, int64_t>> bins;  // (HistogramBin, change), unordered
  };
  // sign +1 adds a document's codes, -1 removes them. REQUIRES: valid CSR.
  void AddCodes(const DocumentCodes& codes, int sign);
  void AddTotals(int64_t tokens, int64_t documents) {
    total_tokens_ += tokens;
    total_documents_ += documents;
  }
  // Calls fn(feature, delta) for every feature touched, ascending.
  template <typename Fn>
  void ForEachFeature(Fn fn) const {
    std::vector<std::pair<uint32_t, uint32_t>> order;  // (feature, slot)
    order.reserve(features_.size());
    for (uint32_t slot = 0; slot < features_.size(); ++slot) {
      order.emplace_back(features_[slot].feature, slot);
    }
    std::sort(order.begin(), order.end());
    for (const auto& [feature, slot] : order) fn(feature, features_[slot].delta);
  }
  // The merge operand of one feature (zero bins dropped, bins ascending).
  static records::v1::StatsRecord ToRecord(const Feature& f);
  // True when merging `f` would change nothing (e.g. codes replaced by equal ones).
  static bool IsZero(const Feature& f);
  // The operand of the totals key: count = tokens, documents.
  records::v1::StatsRecord TotalsRecord() const;
  bool TotalsZero() const { return total_tokens_ == 0 && total_documents_ == 0; }

 private:
  // features_ is dense by slot. A feature's slot comes from a dense table
  // for features below kDenseFeatures, from a hash map above; (slot, bin)
  // maps to the index in that feature's `bins`.
  static constexpr uint32_t kDenseFeatures = 1u << 22;  // 16 MiB of slot table at most
  static constexpr uint32_t kNoSlot = 0xFFFFFFFFu;
  struct Slot {
    uint32_t feature;
    Feature delta;
  };
  uint32_t SlotOf(uint32_t feature);
  std::vector<uint32_t> dense_slot_;
  absl::flat_hash_map<uint32_t, uint32_t> sparse_slot_;
  std::vector<Slot> features_;
  absl::flat_hash_map<uint64_t, uint32_t> bin_index_;
  int64_t total_tokens_ = 0;
  int64_t total_documents_ = 0;
};

}  // namespace saedict::storage

#endif  // SAEDICT_STORAGE_INGEST_PREP_H_
