// Random TopK dictionaries, initialised the way SAE trainers start one:
// Gaussian decoder rows scaled to unit norm, a tied encoder W_enc = W_dec^T,
// and optionally small Gaussian biases. Deterministic in the seed. The
// embedded demo dictionary (d_in 64, d_sae 512, k 16, zero biases) is one,
// so a fresh `saedictd` has something to encode with before any real SAE is
// loaded; the encode benchmarks build theirs with the same function.
// Thread safety: pure functions.
#ifndef SAEDICT_SERVICE_DEMO_DICTIONARY_H_
#define SAEDICT_SERVICE_DEMO_DICTIONARY_H_

#include <cstdint>
#include <memory>
#include <string>

#include "engine/dictionary.h"

namespace saedict::service {

inline constexpr char kDemoDictionaryId[] = "demo";

struct RandomTopKSpec {
  int64_t d_in = 64;
  int64_t d_sae = 512;
  int32_t k = 16;
  uint64_t seed = 20261122;
  float bias_stddev = 0.0f;  // b_enc and b_dec ~ N(0, bias_stddev²); 0: all zero
  std::string model_name = "saedict-demo";
  std::string hook_name = "blocks.0.hook_resid_pre";
};

std::shared_ptr<const engine::Dictionary> MakeRandomTopKDictionary(const RandomTopKSpec& spec);

// MakeRandomTopKDictionary(RandomTopKSpec{}).
std::shared_ptr<const engine::Dictionary> MakeDemoDictionary();

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_DEMO_DICTIONARY_H_
