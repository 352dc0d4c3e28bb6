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

#include <cstdint>
#include <string>

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

// Appends the kInvertedKeySize-byte inverted key of every feature active in
// the document: [dict][feature][~peak value][corpus][doc][peak position].
void AppendInvertedKeys(std::string* out, uint32_t dict, uint32_t corpus, uint64_t doc,
                        const DocumentCodes& codes);

// Per-feature statistics changes of one batch, plus the totals change.
class StatsDeltas {
 public:
  struct Feature {
    int64_t count = 0;
    double sum = 0;
    double sum_sq = 0;
    absl::flat_hash_map<int32_t, int64_t> bins;
  };
  // sign +1 adds a document's codes, -1 removes them.
  void AddCodes(const DocumentCodes& codes, int sign);
  void AddTotals(int64_t tokens, int64_t documents) {
    total_tokens_ += tokens;
    total_documents_ += documents;
  }
  const absl::flat_hash_map<uint32_t, Feature>& features() const { return features_; }
  // The merge operand of one feature (zero bins dropped).
  static records::v1::StatsRecord ToRecord(const Feature& f);
  // True when merging `f` would change nothing (e.g. codes replaced by equal ones).
  static bool IsZero(const Feature& f);
  // The operand of the totals key: count = tokens, documents.
  records::v1::StatsRecord TotalsRecord() const;
  bool TotalsZero() const { return total_tokens_ == 0 && total_documents_ == 0; }

 private:
  absl::flat_hash_map<uint32_t, Feature> features_;
  int64_t total_tokens_ = 0;
  int64_t total_documents_ = 0;
};

}  // namespace saedict::storage

#endif  // SAEDICT_STORAGE_INGEST_PREP_H_
