#include "service/feature_distribution.h"

#include <algorithm>
#include <vector>

namespace saedict::service {

float ValueAtQuantile(const storage::FeatureStatsRecord& stats, double q) {
  struct Bin {
    float lower, upper;
    int64_t count;
  };
  std::vector<Bin> bins;
  int64_t total = 0;
  for (const auto& [index, count] : stats.bins) {
    if (count <= 0) continue;
    auto [lower, upper] = storage::HistogramBinRange(index);
    bins.push_back({lower, upper, count});
    total += count;
  }
  const float hi = *stats.max;
  if (total == 0) return hi;
  std::sort(bins.begin(), bins.end(), [](const Bin& a, const Bin& b) { return a.lower < b.lower; });
  const float lo = std::min(bins.front().lower, hi);
  const double target = std::clamp(q, 0.0, 1.0) * static_cast<double>(total);
  double seen = 0;
  for (const Bin& bin : bins) {
    if (seen + static_cast<double>(bin.count) >= target) {
      const double frac = (target - seen) / static_cast<double>(bin.count);
      const float lower = std::max(bin.lower, lo), upper = std::min(bin.upper, hi);
      return std::clamp(static_cast<float>(lower + frac * (upper - lower)), lo, hi);
    }
    seen += static_cast<double>(bin.count);
  }
  return hi;
}

}  // namespace saedict::service
