// Per-row input normalization (see normalization.h).
#include "engine/normalization.h"

#include <cmath>

namespace saedict::engine {

RowNorm ComputeRowNorm(Normalization normalization, const float* x, int64_t d_in) {
  RowNorm norm;
  switch (normalization) {
    case Normalization::kNone:
      break;
    case Normalization::kConstantNormRescale: {
      double sq = 0.0;
      for (int64_t j = 0; j < d_in; ++j) sq += static_cast<double>(x[j]) * x[j];
      const double length = std::sqrt(sq);
      if (length > 0.0) {
        const double target = std::sqrt(static_cast<double>(d_in));
        norm.in_scale = static_cast<float>(target / length);
        norm.out_scale = static_cast<float>(length / target);
      }
      break;
    }
    case Normalization::kLayerNorm: {
      double sum = 0.0;
      for (int64_t j = 0; j < d_in; ++j) sum += x[j];
      const double mu = sum / static_cast<double>(d_in);
      double sq = 0.0;
      for (int64_t j = 0; j < d_in; ++j) {
        const double c = x[j] - mu;
        sq += c * c;
      }
      const double sigma = d_in > 1 ? std::sqrt(sq / static_cast<double>(d_in - 1)) : 0.0;
      constexpr double kEps = 1e-5;
      norm.in_shift = static_cast<float>(mu);
      norm.in_scale = static_cast<float>(1.0 / (sigma + kEps));
      norm.out_scale = static_cast<float>(sigma);
      norm.out_shift = static_cast<float>(mu);
      break;
    }
  }
  return norm;
}

void PreprocessRow(const RowNorm& norm, const float* x, const float* b_dec, int64_t d_in,
                   float* out) {
  const float shift = norm.in_shift;
  const float scale = norm.in_scale;
  if (b_dec != nullptr) {
    for (int64_t j = 0; j < d_in; ++j) out[j] = (x[j] - shift) * scale - b_dec[j];
  } else {
    for (int64_t j = 0; j < d_in; ++j) out[j] = (x[j] - shift) * scale;
  }
}

}  // namespace saedict::engine
