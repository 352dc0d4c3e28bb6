// Feature directions of one dictionary, prepared for cosine search: the
// decoder rows W_dec[i] or the encoder columns W_enc[:, i], each divided by
// its norm (float32), plus the float64 norms of the raw directions so a
// candidate's score can be recomputed exactly (ExactCosine) from the
// dictionary's own weights.
//
// A direction of norm 0 stays the zero vector; its cosine with anything is
// defined as 0. Queries must be finite, non-zero and of length dim()
// (UnitQuery says which value is wrong otherwise): d_in, except for a
// transcoder's decoder directions, which live at its output hook (d_out).
//
// Thread safety: immutable after construction; every method is const.
#ifndef SAEDICT_INDEX_DIRECTIONS_H_
#define SAEDICT_INDEX_DIRECTIONS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/dictionary.h"

namespace saedict::index {

enum class DirectionKind { kDecoder, kEncoder };
const char* DirectionKindName(DirectionKind kind);  // "decoder" / "encoder"

// Length of a direction of `kind`: decoder rows have DictionaryConfig::
// decoder_dim() (d_out for a transcoder), encoder columns d_in.
int64_t DirectionDim(const engine::DictionaryConfig& config, DirectionKind kind);

class Directions {
 public:
  Directions(std::shared_ptr<const engine::Dictionary> dictionary, DirectionKind kind);

  int64_t size() const { return n_; }  // d_sae
  int64_t dim() const { return d_; }   // DirectionDim(config, kind)
  DirectionKind kind() const { return kind_; }
  const engine::Dictionary& dictionary() const { return *dictionary_; }

  // The float32 unit vectors, row i = feature i, [size(), dim()] row-major.
  std::vector<float> UnitRows() const;
  // Feature i's unit direction in float64.
  std::vector<double> UnitDirection(int64_t i) const;
  // cos(query, direction i) in float64 from the raw weights; `unit_query`
  // has norm 1 (UnitQuery). 0 for a zero direction.
  double ExactCosine(const double* unit_query, int64_t i) const;
  double norm(int64_t i) const { return norms_[i]; }

 private:
  float Raw(int64_t i, int64_t j) const;  // component j of feature i's direction

  std::shared_ptr<const engine::Dictionary> dictionary_;
  DirectionKind kind_;
  int64_t n_ = 0;
  int64_t d_ = 0;
  std::vector<double> norms_;
};

// Feature i's unit direction of `kind` in float64, straight from the
// weights (no Directions needed). NOT_FOUND when i >= d_sae,
// INVALID_ARGUMENT when the direction is zero.
absl::StatusOr<std::vector<double>> UnitFeatureDirection(const engine::Dictionary& dictionary,
                                                         DirectionKind kind, int64_t feature);

// The query vector divided by its float64 norm. INVALID_ARGUMENT naming
// `field` when its length is not d, a component is not finite, or it is 0.
absl::StatusOr<std::vector<double>> UnitQuery(absl::Span<const float> vector, int64_t d,
                                              const std::string& field);

}  // namespace saedict::index

#endif  // SAEDICT_INDEX_DIRECTIONS_H_
