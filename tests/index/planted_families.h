// A generated dictionary with planted families, and tokens that fire its
// features the way the plant says (used by the index and service tests).
//
// Features (d = 64, n = 40):
//   0..3    parents (random directions), each fires on 20% of tokens;
//   4..11   children: two per parent p (4+2p, 5+2p), direction = parent +
//           0.6 x an orthogonal offset (cosine ~0.86), fire on 30% of the
//           tokens where their parent fires, never without it;
//   12      grandchild of 4 (4's direction + 0.5 x offset), fires on 30% of
//           the tokens where 4 fires;
//   13      decoy: close to parent 0 (cosine ~0.93) but fires only where 0
//           does not — geometry without co-occurrence;
//   14      decoy: orthogonal to parent 1, fires only where 1 fires —
//           co-occurrence without geometry;
//   15..39  noise: random directions, each fires on 5% of tokens.
#ifndef SAEDICT_TESTS_INDEX_PLANTED_FAMILIES_H_
#define SAEDICT_TESTS_INDEX_PLANTED_FAMILIES_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace saedict::testing {

struct PlantedFamilies {
  static constexpr int64_t kD = 64;
  static constexpr int64_t kN = 40;
  std::vector<float> rows;                    // [kN, kD] decoder directions
  std::vector<std::vector<uint32_t>> tokens;  // active features per token, ascending
};

inline PlantedFamilies MakePlantedFamilies(int64_t num_tokens, uint32_t seed = 5) {
  constexpr int64_t d = PlantedFamilies::kD, n = PlantedFamilies::kN;
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform;
  // Gram-Schmidt over random vectors: every planted direction and offset is
  // orthogonal to the others, so the cosines are exactly as designed.
  std::vector<std::vector<double>> basis;
  auto fresh = [&] {
    std::vector<double> v(d);
    for (double& x : v) x = normal(rng);
    for (const auto& b : basis) {
      double dot = 0;
      for (int64_t j = 0; j < d; ++j) dot += v[j] * b[j];
      for (int64_t j = 0; j < d; ++j) v[j] -= dot * b[j];
    }
    double norm = 0;
    for (double x : v) norm += x * x;
    for (double& x : v) x /= std::sqrt(norm);
    basis.push_back(v);
    return v;
  };
  std::vector<std::vector<double>> dir(n);
  for (int p = 0; p < 4; ++p) dir[p] = fresh();
  auto plus = [&](const std::vector<double>& base, double scale) {
    std::vector<double> offset = fresh(), v(d);
    for (int64_t j = 0; j < d; ++j) v[j] = base[j] + scale * offset[j];
    return v;
  };
  for (int p = 0; p < 4; ++p) {
    dir[4 + 2 * p] = plus(dir[p], 0.6);
    dir[5 + 2 * p] = plus(dir[p], 0.6);
  }
  dir[12] = plus(dir[4], 0.5);
  dir[13] = plus(dir[0], 0.4);
  dir[14] = fresh();
  for (int64_t f = 15; f < n; ++f) {
    dir[f].resize(d);
    for (double& x : dir[f]) x = normal(rng);
  }
  PlantedFamilies out;
  out.rows.resize(n * d);
  for (int64_t f = 0; f < n; ++f) {
    for (int64_t j = 0; j < d; ++j) out.rows[f * d + j] = static_cast<float>(dir[f][j]);
  }
  for (int64_t t = 0; t < num_tokens; ++t) {
    std::vector<bool> on(n, false);
    for (int p = 0; p < 4; ++p) {
      if (uniform(rng) >= 0.2) continue;
      on[p] = true;
      for (int c : {4 + 2 * p, 5 + 2 * p}) on[c] = uniform(rng) < 0.3;
    }
    if (on[4] && uniform(rng) < 0.3) on[12] = true;
    if (!on[0] && uniform(rng) < 0.1) on[13] = true;
    if (on[1] && uniform(rng) < 0.3) on[14] = true;
    for (int64_t f = 15; f < n; ++f) on[f] = uniform(rng) < 0.05;
    std::vector<uint32_t> active;
    for (int64_t f = 0; f < n; ++f) {
      if (on[f]) active.push_back(static_cast<uint32_t>(f));
    }
    out.tokens.push_back(std::move(active));
  }
  return out;
}

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_INDEX_PLANTED_FAMILIES_H_
