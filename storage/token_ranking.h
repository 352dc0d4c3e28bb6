// The ranking and sampling rules of CorpusStore::TopTokens and
// SampleTokensInRanges (corpus_store.h), shared by every implementation so
// they cannot drift: argument checks, the order of activations, value-range
// membership, when a peak-ordered scan can stop, and the evenly spaced picks.
//
// Thread safety: pure functions.
#ifndef SAEDICT_STORAGE_TOKEN_RANKING_H_
#define SAEDICT_STORAGE_TOKEN_RANKING_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/corpus_store.h"

namespace saedict::storage {

// One activation of a feature, with the corpus number that orders ties.
struct RankedToken {
  float value = 0;
  uint32_t corpus = 0;
  uint64_t doc = 0;
  uint32_t pos = 0;
};

// Value descending; ties: corpus number, document, position ascending.
bool RanksBefore(const RankedToken& a, const RankedToken& b);

// INVALID_ARGUMENT for a negative limit or a NaN start.
absl::Status CheckTopTokensArguments(int64_t limit, std::optional<float> start_at_or_below);
// INVALID_ARGUMENT for a NaN bound, lower > upper, a negative per_range or
// candidates_per_range < per_range.
absl::Status CheckSampleArguments(const std::vector<CorpusStore::ValueRange>& ranges,
                                  int64_t per_range, int64_t candidates_per_range);

// Whether `value` lies in `range` ([lower, upper), upper included when
// upper_inclusive or lower == upper).
bool InValueRange(const CorpusStore::ValueRange& range, float value);

// Whether a document whose peak is `peak` (so all its values are <= peak)
// can add to a range that holds fewer than `enough` candidates.
bool CanStillFill(const std::vector<CorpusStore::ValueRange>& ranges,
                  const std::vector<std::vector<RankedToken>>& found, size_t enough, float peak);

// A feature's active documents in inverted-index order (peak descending;
// ties: corpus number, document ascending), as a store reads them.
class PeakOrderedDocuments {
 public:
  struct Entry {
    float peak = 0;
    uint32_t corpus = 0;
    uint64_t doc = 0;
  };
  virtual ~PeakOrderedDocuments() = default;
  // Positions before the first document whose peak is <= *at_or_below (all
  // documents without it).
  virtual void Seek(std::optional<float> at_or_below) = 0;
  // The next document; nullopt at the end.
  virtual absl::StatusOr<std::optional<Entry>> Next() = 0;
  // The feature's value at every row of the document (0 where inactive).
  virtual absl::StatusOr<const std::vector<float>*> FeatureValues(const Entry& entry) = 0;
};

// Up to `enough` candidates per range, the rule behind SampleTokensInRanges:
//  1. for each range still short, the documents whose peak lies in it, from
//     its upper bound down (each holds at least one value of the range: its
//     peak), until the range is full;
//  2. then every document not yet read, from the highest peak down, until no
//     range still short can gain (CanStillFill).
// A document's values count for every range they fall in, once.
absl::StatusOr<std::vector<std::vector<RankedToken>>> CollectRangeCandidates(
    PeakOrderedDocuments& documents, const std::vector<CorpusStore::ValueRange>& ranges,
    size_t enough);

// Sorts `candidates` by RanksBefore and keeps min(size, per_range) of them at
// evenly spaced ranks, so the sample spans the range.
std::vector<RankedToken> EvenlySpacedPicks(std::vector<RankedToken> candidates, size_t per_range);

}  // namespace saedict::storage

#endif  // SAEDICT_STORAGE_TOKEN_RANKING_H_
