// Feature families: a parent/child forest from two signals (DESIGN.md §6).
//
//   geometry      — candidate pairs are decoder neighbours (the precomputed
//                   top-N lists) with cosine >= min_decoder_cosine;
//   co-occurrence — counted over stored tokens: c_i (tokens where i fires)
//                   and n_ij (tokens where both fire) for candidate pairs.
//
// j is a child of i when all hold: the pair is a geometric candidate,
// c_j >= min_child_count, coverage P(i | j) = n_ij / c_j >= min_coverage,
// and c_i > c_j (the parent fires more often). Coverage alone would pair
// unrelated features (a frequent feature covers many rare ones); geometry
// alone pairs features that never fire together. Among several possible
// parents the most specific one (smallest c_i) wins, then higher coverage,
// higher cosine, lower id. Since c strictly grows along a parent chain, the
// relation is a forest; a family is a root with at least one child plus all
// its descendants. Scores per relation: decoder cosine, coverage, Jaccard
// n_ij / (c_i + c_j - n_ij) and phi (the correlation of the two firing
// indicators over all T tokens).
//
// Thread safety: CooccurrenceCounter is a plain value (one thread);
// BuildFamilies is a pure function.
#ifndef SAEDICT_INDEX_FAMILIES_H_
#define SAEDICT_INDEX_FAMILIES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "index/feature_index.h"

namespace saedict::index {

struct FamilyOptions {
  double min_decoder_cosine = 0.3;
  double min_coverage = 0.8;
  int64_t min_child_count = 5;
};

// Counts c_i and n_ij over tokens for the candidate pairs of `neighbours`.
class CooccurrenceCounter {
 public:
  CooccurrenceCounter(const std::vector<std::vector<Hit>>& neighbours, double min_decoder_cosine);
  // One token's active features (any order, no duplicates, each < d_sae).
  void AddToken(absl::Span<const uint32_t> active);
  int64_t tokens() const { return tokens_; }
  int64_t count(uint32_t i) const { return count_[i]; }
  // n_ij; 0 when (i, j) is not a candidate pair.
  int64_t pair_count(uint32_t i, uint32_t j) const;
  // cos(i, j) of a candidate pair; NaN when (i, j) is not one.
  double pair_cosine(uint32_t i, uint32_t j) const;
  // Candidate partners of i (both directions), ascending.
  absl::Span<const uint32_t> partners(uint32_t i) const;
  int64_t size() const { return static_cast<int64_t>(count_.size()); }

 private:
  int64_t Find(uint32_t i, uint32_t j) const;  // position in partners_ of j among i's, or -1
  std::vector<int64_t> offsets_;   // CSR over features
  std::vector<uint32_t> partners_;
  std::vector<double> cosines_;
  std::vector<int64_t> pairs_;     // n_ij aligned with partners_
  std::vector<int64_t> count_;
  std::vector<uint8_t> active_;    // scratch: marks of the current token
  int64_t tokens_ = 0;
};

struct Relation {
  uint32_t parent = 0;
  uint32_t child = 0;
  double decoder_cosine = 0;
  double coverage = 0;  // P(parent | child)
  double jaccard = 0;
  double phi = 0;
  int64_t parent_count = 0;
  int64_t child_count = 0;
  int64_t both_count = 0;
};

// Why `r` was kept, in words with its numbers and the thresholds.
std::string ExplainRelation(const Relation& r, const FamilyOptions& options);

struct Family {
  uint32_t root = 0;
  std::vector<uint32_t> members;  // root first, then descendants ascending
  int depth = 0;                  // longest parent chain below the root
};

struct FamilyForest {
  std::vector<int64_t> parent;          // per feature; -1 when none
  std::vector<Relation> link;           // per feature; its relation to parent (when any)
  std::vector<std::vector<uint32_t>> children;  // per feature, ascending
  std::vector<Family> families;         // by size descending, then root ascending
  std::vector<int64_t> family_of;       // per feature: index into families, or -1
};

FamilyForest BuildFamilies(const CooccurrenceCounter& counts, const FamilyOptions& options);

// The relation scores of (parent, child) from the counts (no thresholds).
Relation ScorePair(const CooccurrenceCounter& counts, uint32_t parent, uint32_t child);

}  // namespace saedict::index

#endif  // SAEDICT_INDEX_FAMILIES_H_
