// SelectTopK (threshold-based top-k) vs a sort-based brute force, including
// heavy ties, worst-case ascending rows and k at the edges.
#include "engine/activation.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace saedict::engine {
namespace {

// k largest positives, ties to the lower index, returned in index order.
void BruteForce(const std::vector<float>& v, int32_t k, std::vector<uint32_t>* idx,
                std::vector<float>* val) {
  std::vector<uint32_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return v[a] > v[b]; });
  std::vector<uint32_t> keep;
  for (uint32_t i : order) {
    if (!(v[i] > 0.0f)) break;
    if (k > 0 && static_cast<int32_t>(keep.size()) == k) break;
    keep.push_back(i);
  }
  std::sort(keep.begin(), keep.end());
  for (uint32_t i : keep) {
    idx->push_back(i);
    val->push_back(v[i]);
  }
}

void ExpectSameAsBruteForce(const std::vector<float>& v, int32_t k) {
  std::vector<uint32_t> want_idx, got_idx = {99};  // prefilled: SelectTopK appends
  std::vector<float> want_val, got_val = {99.0f};
  BruteForce(v, k, &want_idx, &want_val);
  const int64_t count = SelectTopK(v.data(), static_cast<int64_t>(v.size()), k, &got_idx, &got_val);
  EXPECT_EQ(count, static_cast<int64_t>(want_idx.size()));
  got_idx.erase(got_idx.begin());
  got_val.erase(got_val.begin());
  EXPECT_EQ(got_idx, want_idx) << "d=" << v.size() << " k=" << k;
  EXPECT_EQ(got_val, want_val);
}

TEST(SelectTopKTest, RandomRowsMatchBruteForce) {
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int64_t d : {1, 15, 16, 17, 300, 4099, 16384}) {
    std::vector<float> v(d);
    for (float& x : v) x = dist(rng);
    for (int32_t k : {0, 1, 3, 32, 64, 500}) ExpectSameAsBruteForce(v, k);
  }
}

TEST(SelectTopKTest, HeavyTiesGoToLowerIndices) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> dist(-2, 3);
  for (int64_t d : {50, 1000, 5000}) {
    std::vector<float> v(d);
    for (float& x : v) x = static_cast<float>(dist(rng));
    for (int32_t k : {1, 5, 100, 999}) ExpectSameAsBruteForce(v, k);
  }
  std::vector<float> equal(1000, 1.0f);
  ExpectSameAsBruteForce(equal, 10);
}

TEST(SelectTopKTest, AscendingRowForcesManyCuts) {
  std::vector<float> v(20000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) - 100.0f;
  ExpectSameAsBruteForce(v, 64);
  std::reverse(v.begin(), v.end());
  ExpectSameAsBruteForce(v, 64);
}

TEST(SelectTopKTest, NoPositivesGivesNothing) {
  std::vector<float> v(100, -1.0f);
  v[5] = 0.0f;
  ExpectSameAsBruteForce(v, 10);
  ExpectSameAsBruteForce(v, 0);
}

TEST(ActivateRowTest, JumpReluAndGatedRules) {
  const float b_enc[4] = {0, 0, 0, 0};
  const float threshold[4] = {0.5f, -1.0f, 0.1f, 2.0f};
  float row[4] = {0.6f, -0.5f, 0.1f, 1.0f};
  ActivationParams p{
      .architecture = Architecture::kJumpReLU, .d_sae = 4, .b_enc = b_enc, .threshold = threshold};
  std::vector<uint32_t> idx;
  std::vector<float> val;
  ActivateRow(p, row, &idx, &val);
  // 0.6 > 0.5 kept; -0.5 > -1 but relu'd to 0; 0.1 is not > 0.1; 1 < 2.
  EXPECT_EQ(idx, (std::vector<uint32_t>{0}));

  const float scale[3] = {1.0f, 2.0f, 1.0f};  // exp(r_mag)
  const float b_gate[3] = {0.0f, 0.0f, -5.0f};
  const float b_mag[3] = {0.0f, 1.0f, 0.0f};
  float pre[3] = {-0.5f, 0.5f, 1.0f};
  ActivationParams g{.architecture = Architecture::kGated,
                     .d_sae = 3,
                     .scale = scale,
                     .b_gate = b_gate,
                     .b_mag = b_mag};
  idx.clear();
  val.clear();
  ActivateRow(g, pre, &idx, &val);
  // Feature 0: gate closed. Feature 1: gate open, magnitude 0.5 * 2 + 1. Feature 2: gate closed.
  EXPECT_EQ(idx, (std::vector<uint32_t>{1}));
  EXPECT_EQ(val, (std::vector<float>{2.0f}));
}

}  // namespace
}  // namespace saedict::engine
