// Per-row input normalization of DESIGN.md §2, as SAELens runs it:
//   constant_norm_rescale: x * sqrt(d_in) / ||x||; undone by * ||x|| / sqrt(d_in)
//   layer_norm: (x - mu) / (sigma + 1e-5), sigma the unbiased (n - 1) standard
//     deviation as torch.std computes it; undone by * sigma + mu (SAELens
//     undoes with sigma, not sigma + 1e-5).
// An all-zero row under constant_norm_rescale keeps scale 1 (SAELens would
// produce NaN). Internal to the engine; pure functions.
#ifndef SAEDICT_ENGINE_NORMALIZATION_H_
#define SAEDICT_ENGINE_NORMALIZATION_H_

#include <cstdint>

#include "engine/dictionary.h"

namespace saedict::engine {

// normalized = (x - in_shift) * in_scale; undone = y * out_scale + out_shift.
struct RowNorm {
  float in_shift = 0.0f;
  float in_scale = 1.0f;
  float out_scale = 1.0f;
  float out_shift = 0.0f;
};

RowNorm ComputeRowNorm(Normalization normalization, const float* x, int64_t d_in);

// out[j] = (x[j] - norm.in_shift) * norm.in_scale - (b_dec ? b_dec[j] : 0).
void PreprocessRow(const RowNorm& norm, const float* x, const float* b_dec, int64_t d_in,
                   float* out);

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_NORMALIZATION_H_
