#include "server/demo_dictionary.h"

#include <cmath>
#include <random>

namespace saedict::server {

std::shared_ptr<const engine::Dictionary> MakeDemoDictionary() {
  constexpr int64_t kDIn = 64, kDSae = 512;
  auto d = std::make_shared<engine::Dictionary>();
  d->config.model_name = "saedict-demo";
  d->config.hook_name = "blocks.0.hook_resid_pre";
  d->config.d_in = kDIn;
  d->config.d_sae = kDSae;
  d->config.architecture = engine::Architecture::kTopK;
  d->config.k = 16;
  std::mt19937_64 rng(20261122);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  d->w_dec.resize(kDSae * kDIn);
  for (int64_t i = 0; i < kDSae; ++i) {
    double norm = 0;
    for (int64_t j = 0; j < kDIn; ++j) {
      const float v = normal(rng);
      d->w_dec[i * kDIn + j] = v;
      norm += double(v) * v;
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (int64_t j = 0; j < kDIn; ++j) d->w_dec[i * kDIn + j] *= inv;
  }
  // Tied initialisation, as SAE trainers start: W_enc = W_dec^T.
  d->w_enc.resize(kDIn * kDSae);
  for (int64_t i = 0; i < kDSae; ++i) {
    for (int64_t j = 0; j < kDIn; ++j) d->w_enc[j * kDSae + i] = d->w_dec[i * kDIn + j];
  }
  d->b_enc.assign(kDSae, 0.0f);
  d->b_dec.assign(kDIn, 0.0f);
  return d;
}

}  // namespace saedict::server
