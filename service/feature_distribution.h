// Quantiles of a feature's activation distribution, estimated from its
// stored log-spaced histogram (storage::HistogramBin) by linear
// interpolation inside a bin, and clamped to the exact max (the low end is
// the lowest non-empty bin's lower edge: the exact minimum is not stored).
//
// Thread safety: pure functions.
#ifndef SAEDICT_SERVICE_FEATURE_DISTRIBUTION_H_
#define SAEDICT_SERVICE_FEATURE_DISTRIBUTION_H_

#include "storage/corpus_store.h"

namespace saedict::service {

// REQUIRES: stats.count > 0 and stats.max set. q in [0, 1].
float ValueAtQuantile(const storage::FeatureStatsRecord& stats, double q);

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_FEATURE_DISTRIBUTION_H_
