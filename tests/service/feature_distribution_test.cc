// ValueAtQuantile: quantiles estimated from the stored log-spaced histogram
// stay inside [min, max], are monotone in q, and land within one histogram
// bin of the exact quantile.
#include "service/feature_distribution.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "gtest/gtest.h"

namespace saedict::service {
namespace {

storage::FeatureStatsRecord StatsOf(const std::vector<float>& values) {
  storage::FeatureStatsRecord s;
  std::map<int32_t, int64_t> bins;
  for (float v : values) {
    ++s.count;
    s.sum += v;
    s.sum_sq += static_cast<double>(v) * v;
    s.max = s.max.has_value() ? std::max(*s.max, v) : v;
    ++bins[storage::HistogramBin(v)];
  }
  s.bins.assign(bins.begin(), bins.end());
  return s;
}

TEST(FeatureDistributionTest, QuantilesAreMonotoneBoundedAndCloseToExact) {
  std::mt19937 rng(3);
  std::lognormal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> values(5000);
  for (float& v : values) v = dist(rng);
  const storage::FeatureStatsRecord stats = StatsOf(values);
  std::sort(values.begin(), values.end());
  float previous = -1;
  for (double q = 0; q <= 1.0; q += 0.05) {
    const float v = ValueAtQuantile(stats, q);
    EXPECT_GE(v, values.front() / 1.2f);
    EXPECT_LE(v, *stats.max);
    EXPECT_GE(v, previous) << "q " << q;
    previous = v;
    const float exact = values[std::min<size_t>(values.size() - 1, q * values.size())];
    auto [lower, upper] = storage::HistogramBinRange(storage::HistogramBin(exact));
    // Within the exact quantile's bin, or its neighbours.
    EXPECT_GE(v, lower / 1.2f) << "q " << q;
    EXPECT_LE(v, upper * 1.2f) << "q " << q;
  }
  auto [lowest, unused] = storage::HistogramBinRange(storage::HistogramBin(values.front()));
  EXPECT_EQ(ValueAtQuantile(stats, 0.0), lowest);
  EXPECT_EQ(ValueAtQuantile(stats, 1.0), *stats.max);
}

TEST(FeatureDistributionTest, SingleValue) {
  const storage::FeatureStatsRecord stats = StatsOf({2.5f, 2.5f, 2.5f});
  EXPECT_LE(ValueAtQuantile(stats, 0.3), 2.5f);
  EXPECT_GE(ValueAtQuantile(stats, 0.3), 2.5f / 1.2f);
  EXPECT_EQ(ValueAtQuantile(stats, 1.0), 2.5f);
}

TEST(FeatureDistributionTest, HistogramBinsCoverTheirValues) {
  for (float v : {1e-6f, 0.01f, 0.5f, 1.0f, 1.5f, 3.0f, 1000.0f, -0.3f, -7.0f}) {
    auto [lower, upper] = storage::HistogramBinRange(storage::HistogramBin(v));
    EXPECT_LE(lower, v) << v;
    EXPECT_LT(v, upper) << v;
  }
}

}  // namespace
}  // namespace saedict::service
