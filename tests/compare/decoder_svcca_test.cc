// DecoderSvcca (compare/decoder_svcca.h): the decoder rows of paired
// features compared by SVCCA — invariant to a rotation of one model's space,
// low for unrelated directions, pairs collapsed one per B feature and
// filtered by correlation.
#include "compare/decoder_svcca.h"

#include <cmath>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::compare {
namespace {

using ::saedict::testing::StatusIs;
using ::testing::HasSubstr;

engine::Dictionary WithDecoder(std::vector<float> w_dec, int64_t n, int64_t d) {
  engine::Dictionary dict;
  dict.config.d_in = d;
  dict.config.d_sae = n;
  dict.w_dec = std::move(w_dec);
  return dict;
}

std::vector<float> Gaussian(int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> out(count);
  for (float& v : out) v = g(rng);
  return out;
}

std::vector<CorrelationMatch> Identity(int64_t n, double correlation = 0.9) {
  std::vector<CorrelationMatch> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = {i, correlation};
  return out;
}

TEST(DecoderSvccaTest, ARotatedAndScaledSpaceScoresOne) {
  const int64_t n = 200, d = 8, d2 = 12;
  const std::vector<float> a = Gaussian(n * d, 1);
  // B lives in a 12-dim space: a random linear map of A's rows (full rank 8).
  const std::vector<float> map = Gaussian(d * d2, 2);
  std::vector<float> b(n * d2, 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < d; ++k) {
      for (int64_t j = 0; j < d2; ++j) b[i * d2 + j] += a[i * d + k] * map[k * d2 + j];
    }
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      DecoderSvccaResult r,
      DecoderSvcca(WithDecoder(a, n, d), WithDecoder(b, n, d2), Identity(n), 0.5,
                   /*variance_kept=*/1.0));  // a skewing map reorders the spectrum: keep all
  EXPECT_EQ(r.pairs, n);
  EXPECT_EQ(r.svcca.dims_a, d);
  EXPECT_EQ(r.svcca.dims_b, d);  // the map adds no new directions
  EXPECT_NEAR(r.svcca.mean, 1.0, 1e-6);
}

TEST(DecoderSvccaTest, UnrelatedDirectionsScoreLow) {
  const int64_t n = 2000, d = 6;
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      DecoderSvccaResult r, DecoderSvcca(WithDecoder(Gaussian(n * d, 3), n, d),
                                         WithDecoder(Gaussian(n * d, 4), n, d), Identity(n), 0.5));
  EXPECT_LT(r.svcca.mean, 0.1);
}

TEST(DecoderSvccaTest, PairsCollapsePerBFeatureAndFollowTheThreshold) {
  const int64_t n = 6, d = 2;
  const std::vector<float> rows = Gaussian(n * d, 5);
  std::vector<CorrelationMatch> m = {{0, 0.9}, {0, 0.95}, {1, 0.2}, {2, 0.8}, {-1, 0}, {3, 0.7}};
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      DecoderSvccaResult r, DecoderSvcca(WithDecoder(rows, n, d), WithDecoder(rows, n, d), m, 0.5));
  EXPECT_EQ(r.pairs, 3);  // B 0 (from A 1), B 2, B 3; B 1 is below 0.5
  EXPECT_THAT(DecoderSvcca(WithDecoder(rows, n, d), WithDecoder(rows, n, d), m, 0.99),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("0 found")));
}

}  // namespace
}  // namespace saedict::compare
