// Per-row activation and top-k selection for the non-iterative architectures
// (standard, topk, jumprelu, gated). The encoder runs this over each row of a
// GEMM tile while the tile is still in cache. Internal to the engine.
//
// Every activation here is >= 0, so a feature is active iff its value > 0,
// and "keep the k largest, then relu" equals "keep the k largest positives".
// Ties are broken towards the lower feature index.
//
// ActivatedValue is the same arithmetic as ActivateRow for one feature (the
// engine compiles with -ffp-contract=off, so the vectorized loop and the
// scalar function round identically). Its positive part max(v, 0) is a
// non-decreasing function of the GEMM output c for every architecture here
// (bias adds and scales by >= 0 are monotone in float arithmetic, the
// JumpReLU and gate steps only switch from 0 to a value above 0 as c rises),
// which is what lets the fast exact mode (engine/fast_exact.h) bound a
// feature's activation from an interval of c.
//
// Thread safety: pure functions; SelectTopK uses a thread_local scratch.
#ifndef SAEDICT_ENGINE_ACTIVATION_H_
#define SAEDICT_ENGINE_ACTIVATION_H_

#include <cstdint>
#include <vector>

#include "engine/dictionary.h"

namespace saedict::engine {

struct ActivationParams {
  Architecture architecture = Architecture::kStandard;  // not kMatchingPursuit
  int64_t d_sae = 0;
  const float* b_enc = nullptr;      // standard, topk, jumprelu
  const float* threshold = nullptr;  // jumprelu
  const float* scale = nullptr;      // topk: ||W_dec_i|| (or null); gated: exp(r_mag)
  const float* b_gate = nullptr;     // gated
  const float* b_mag = nullptr;      // gated
  // Features kept per row: 0 keeps every active feature.
  int32_t k = 0;
};

// The activation of feature j for GEMM output c, exactly as ActivateRow
// computes it (<= 0 means inactive). kScaled: topk with p.scale set.
template <Architecture A, bool kScaled = false>
inline float ActivatedValueOf(const ActivationParams& p, int64_t j, float c) {
  if constexpr (A == Architecture::kStandard) {
    return c + p.b_enc[j];
  } else if constexpr (A == Architecture::kTopK) {
    if constexpr (kScaled) {
      return (c + p.b_enc[j]) * p.scale[j];
    } else {
      return c + p.b_enc[j];
    }
  } else if constexpr (A == Architecture::kJumpReLU) {
    const float h = c + p.b_enc[j];
    return h > p.threshold[j] ? h : 0.0f;
  } else if constexpr (A == Architecture::kGated) {
    const float magnitude = c * p.scale[j] + p.b_mag[j];
    return c + p.b_gate[j] > 0.0f ? magnitude : 0.0f;
  } else {
    return 0.0f;
  }
}

inline float ActivatedValue(const ActivationParams& p, int64_t j, float c) {
  switch (p.architecture) {
    case Architecture::kStandard:
      return ActivatedValueOf<Architecture::kStandard>(p, j, c);
    case Architecture::kTopK:
      return p.scale != nullptr ? ActivatedValueOf<Architecture::kTopK, true>(p, j, c)
                                : ActivatedValueOf<Architecture::kTopK>(p, j, c);
    case Architecture::kJumpReLU:
      return ActivatedValueOf<Architecture::kJumpReLU>(p, j, c);
    case Architecture::kGated:
      return ActivatedValueOf<Architecture::kGated>(p, j, c);
    case Architecture::kMatchingPursuit:
      break;
  }
  return 0.0f;
}

// `row` holds x' W_enc for one token; it is overwritten with the activation
// values (inactive features become <= 0). The active (index, value) pairs are
// appended to `indices` / `values` in ascending index order. Returns how many.
int64_t ActivateRow(const ActivationParams& params, float* row, std::vector<uint32_t>* indices,
                    std::vector<float>* values);

// Appends the k largest strictly positive entries of v[0, d) (fewer when
// fewer are positive) in ascending index order; ties go to the lower index.
// k <= 0 appends every positive entry. Returns how many were appended.
int64_t SelectTopK(const float* v, int64_t d, int32_t k, std::vector<uint32_t>* indices,
                   std::vector<float>* values);

// ActivateRow for a row whose GEMM outputs are known only at `features`
// (ascending, `c[e]` the output of feature features[e]), every other feature
// being known to lose: appends the same (index, value) pairs ActivateRow
// would, provided every feature ActivateRow selects is listed.
int64_t ActivateListed(const ActivationParams& params, const uint32_t* features, const float* c,
                       int64_t count, std::vector<uint32_t>* indices, std::vector<float>* values);

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_ACTIVATION_H_
