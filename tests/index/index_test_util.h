// Dictionaries for the index tests: only the directions matter (W_dec and
// W_enc), so these are built directly instead of through a file format.
#ifndef SAEDICT_TESTS_INDEX_INDEX_TEST_UTIL_H_
#define SAEDICT_TESTS_INDEX_INDEX_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "engine/dictionary.h"

namespace saedict::testing {

// n random-normal directions of d (decoder rows; the encoder is their transpose).
inline std::shared_ptr<engine::Dictionary> DirectionsDictionary(const std::vector<float>& rows,
                                                                int64_t n, int64_t d) {
  auto dict = std::make_shared<engine::Dictionary>();
  dict->config.d_in = d;
  dict->config.d_sae = n;
  dict->config.architecture = engine::Architecture::kStandard;
  dict->w_dec = rows;
  dict->w_enc.assign(static_cast<size_t>(n * d), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) dict->w_enc[j * n + i] = rows[i * d + j];
  }
  dict->b_enc.assign(n, 0.0f);
  dict->b_dec.assign(d, 0.0f);
  return dict;
}

inline std::vector<float> RandomRows(int64_t n, int64_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> rows(static_cast<size_t>(n * d));
  for (float& v : rows) v = normal(rng);
  return rows;
}

// `clusters` random centres; each row = its centre + noise of relative size
// `spread` (the structured set of the recall tests and the benchmark).
inline std::vector<float> ClusteredRows(int64_t n, int64_t d, int64_t clusters, float spread,
                                        uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> centres(static_cast<size_t>(clusters * d));
  for (float& v : centres) v = normal(rng);
  std::vector<float> rows(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = static_cast<int64_t>(rng() % clusters);
    for (int64_t j = 0; j < d; ++j) rows[i * d + j] = centres[c * d + j] + spread * normal(rng);
  }
  return rows;
}

// Brute-force float64 cosine of two float rows.
inline double Cosine64(const float* a, const float* b, int64_t d) {
  double dot = 0, na = 0, nb = 0;
  for (int64_t j = 0; j < d; ++j) {
    dot += static_cast<double>(a[j]) * b[j];
    na += static_cast<double>(a[j]) * a[j];
    nb += static_cast<double>(b[j]) * b[j];
  }
  return na == 0 || nb == 0 ? 0 : dot / std::sqrt(na * nb);
}

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_INDEX_INDEX_TEST_UTIL_H_
