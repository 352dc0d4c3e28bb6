// Per-row activation and top-k selection for the non-iterative architectures
// (standard, topk, jumprelu, gated). The encoder runs this over each row of a
// GEMM tile while the tile is still in cache. Internal to the engine.
//
// Every activation here is >= 0, so a feature is active iff its value > 0,
// and "keep the k largest, then relu" equals "keep the k largest positives".
// Ties are broken towards the lower feature index.
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

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_ACTIVATION_H_
