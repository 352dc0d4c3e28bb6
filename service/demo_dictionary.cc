#include "service/demo_dictionary.h"

#include <cmath>
#include <random>

namespace saedict::service {

std::shared_ptr<const engine::Dictionary> MakeRandomTopKDictionary(const RandomTopKSpec& spec) {
  const int64_t d_in = spec.d_in, d_sae = spec.d_sae;
  auto d = std::make_shared<engine::Dictionary>();
  d->config.model_name = spec.model_name;
  d->config.hook_name = spec.hook_name;
  d->config.d_in = d_in;
  d->config.d_sae = d_sae;
  d->config.architecture = engine::Architecture::kTopK;
  d->config.k = spec.k;
  std::mt19937_64 rng(spec.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  d->w_dec.resize(d_sae * d_in);
  for (int64_t i = 0; i < d_sae; ++i) {
    float* row = d->w_dec.data() + i * d_in;
    double norm = 0;
    for (int64_t j = 0; j < d_in; ++j) {
      row[j] = normal(rng);
      norm += double(row[j]) * row[j];
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (int64_t j = 0; j < d_in; ++j) row[j] *= inv;
  }
  // Tied initialisation, as SAE trainers start: W_enc = W_dec^T.
  d->w_enc.resize(d_in * d_sae);
  for (int64_t i = 0; i < d_sae; ++i) {
    for (int64_t j = 0; j < d_in; ++j) d->w_enc[j * d_sae + i] = d->w_dec[i * d_in + j];
  }
  d->b_enc.assign(d_sae, 0.0f);
  d->b_dec.assign(d_in, 0.0f);
  if (spec.bias_stddev != 0.0f) {
    for (float& v : d->b_enc) v = spec.bias_stddev * normal(rng);
    for (float& v : d->b_dec) v = spec.bias_stddev * normal(rng);
  }
  return d;
}

std::shared_ptr<const engine::Dictionary> MakeDemoDictionary() {
  return MakeRandomTopKDictionary(RandomTopKSpec{});
}

}  // namespace saedict::service
