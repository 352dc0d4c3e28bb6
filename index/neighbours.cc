// PrecomputeNeighbours (see neighbours.h).
#include "index/neighbours.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/invariant_gemm.h"
#include "engine/parallel.h"
#include "util/status_macros.h"

namespace saedict::index {

namespace {

// The exact index: the unit rows packed once for engine::InvariantGemm (the
// engine's own fixed-order kernel, on the same thread pool as the selection,
// so no BLAS threads spin against it), one Multiply per block of queries,
// then SelectExact per query with the float32 bound.
absl::Status PrecomputeExact(const FeatureIndex& index, const NeighbourOptions& options,
                             const SearchOptions& search, const NeighbourSink& sink,
                             const std::function<bool()>& cancelled) {
  const Directions& directions = index.directions();
  const int64_t n = index.size(), d = index.dim();
  const std::vector<float> unit = directions.UnitRows();
  const std::unique_ptr<engine::InvariantGemm> gemm = engine::InvariantGemm::Create(
      unit.data(), d, n, engine::InvariantGemm::Layout::kNByK);
  const double bound = FeatureIndex::Float32Bound(d);
  std::vector<float> scores;
  for (int64_t first = 0; first < n; first += options.block) {
    if (cancelled && cancelled()) {
      return absl::CancelledError(absl::StrCat("neighbour precompute cancelled at feature ", first));
    }
    const int64_t rows = std::min(n, first + options.block) - first;
    scores.resize(static_cast<size_t>(rows * n));
    gemm->Multiply(unit.data() + first * d, rows, d, scores.data(), n);
    std::vector<std::vector<Hit>> lists(rows);
    engine::ParallelFor(rows, 4, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t feature = first + r;
        if (directions.norm(feature) == 0 || n < 2) continue;
        lists[r] = index.SelectExact(directions.UnitDirection(feature), scores.data() + r * n,
                                     bound, search, feature);
      }
    });
    SAEDICT_RETURN_IF_ERROR(sink(first, std::move(lists)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PrecomputeNeighbours(const FeatureIndex& index, const NeighbourOptions& options,
                                  const NeighbourSink& sink,
                                  const std::function<bool()>& cancelled) {
  if (options.top_n < 1 || options.block < 1) {
    return absl::InvalidArgumentError(absl::StrCat("neighbour precompute: top_n ", options.top_n,
                                                   " and block ", options.block,
                                                   " must be >= 1"));
  }
  const Directions& directions = index.directions();
  const int64_t n = index.size();
  const SearchOptions search{std::min<int>(options.top_n, std::max<int64_t>(1, n - 1))};
  if (index.exact()) return PrecomputeExact(index, options, search, sink, cancelled);
  for (int64_t first = 0; first < n; first += options.block) {
    if (cancelled && cancelled()) {
      return absl::CancelledError(absl::StrCat("neighbour precompute cancelled at feature ", first));
    }
    const int64_t end = std::min(n, first + options.block);
    std::vector<std::vector<double>> queries;
    std::vector<int64_t> exclude, asked;
    for (int64_t i = first; i < end; ++i) {
      if (directions.norm(i) == 0) continue;
      queries.push_back(directions.UnitDirection(i));
      exclude.push_back(i);
      asked.push_back(i);
    }
    std::vector<std::vector<Hit>> lists(end - first);
    if (!queries.empty() && n > 1) {
      SAEDICT_ASSIGN_OR_RETURN(std::vector<std::vector<Hit>> found,
                               index.Search(queries, search, exclude));
      for (size_t q = 0; q < asked.size(); ++q) lists[asked[q] - first] = std::move(found[q]);
    }
    SAEDICT_RETURN_IF_ERROR(sink(first, std::move(lists)));
  }
  return absl::OkStatus();
}

}  // namespace saedict::index
