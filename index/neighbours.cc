// PrecomputeNeighbours (see neighbours.h).
#include "index/neighbours.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace saedict::index {

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
