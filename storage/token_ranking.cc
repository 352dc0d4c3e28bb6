// Shared ranking and sampling rules of the corpus stores (see token_ranking.h).
#include "storage/token_ranking.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace saedict::storage {

bool RanksBefore(const RankedToken& a, const RankedToken& b) {
  if (a.value != b.value) return a.value > b.value;
  return std::tie(a.corpus, a.doc, a.pos) < std::tie(b.corpus, b.doc, b.pos);
}

absl::Status CheckTopTokensArguments(int64_t limit, std::optional<float> start_at_or_below) {
  if (limit < 0) {
    return absl::InvalidArgumentError(absl::StrCat("storage: top tokens limit ", limit, " < 0"));
  }
  if (start_at_or_below && std::isnan(*start_at_or_below)) {
    return absl::InvalidArgumentError("storage: top tokens start_at_or_below is NaN");
  }
  return absl::OkStatus();
}

absl::Status CheckSampleArguments(const std::vector<CorpusStore::ValueRange>& ranges,
                                  int64_t per_range, int64_t candidates_per_range) {
  for (size_t i = 0; i < ranges.size(); ++i) {
    const CorpusStore::ValueRange& r = ranges[i];
    if (std::isnan(r.lower) || std::isnan(r.upper) || r.lower > r.upper) {
      return absl::InvalidArgumentError(absl::StrCat("storage: sample range ", i, " [", r.lower,
                                                     ", ", r.upper, "] is not an interval"));
    }
  }
  if (per_range < 0 || candidates_per_range < per_range) {
    return absl::InvalidArgumentError(absl::StrCat("storage: sample per_range ", per_range,
                                                   ", candidates ", candidates_per_range));
  }
  return absl::OkStatus();
}

bool InValueRange(const CorpusStore::ValueRange& r, float v) {
  return v >= r.lower &&
         (v < r.upper || (v == r.upper && (r.upper_inclusive || r.lower == r.upper)));
}

bool CanStillFill(const std::vector<CorpusStore::ValueRange>& ranges,
                  const std::vector<std::vector<RankedToken>>& found, size_t enough, float peak) {
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (found[i].size() < enough && ranges[i].lower <= peak) return true;
  }
  return false;
}

absl::StatusOr<std::vector<std::vector<RankedToken>>> CollectRangeCandidates(
    PeakOrderedDocuments& documents, const std::vector<CorpusStore::ValueRange>& ranges,
    size_t enough) {
  std::vector<std::vector<RankedToken>> found(ranges.size());
  std::set<std::pair<uint32_t, uint64_t>> read;
  auto take = [&](const PeakOrderedDocuments::Entry& e) -> absl::Status {
    if (!read.emplace(e.corpus, e.doc).second) return absl::OkStatus();
    SAEDICT_ASSIGN_OR_RETURN(const std::vector<float>* values, documents.FeatureValues(e));
    for (size_t t = 0; t < values->size(); ++t) {
      const float v = (*values)[t];
      if (v == 0) continue;
      for (size_t i = 0; i < ranges.size(); ++i) {
        if (found[i].size() < enough && InValueRange(ranges[i], v)) {
          found[i].push_back({v, e.corpus, e.doc, static_cast<uint32_t>(t)});
        }
      }
    }
    return absl::OkStatus();
  };
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (found[i].size() >= enough) continue;
    documents.Seek(ranges[i].upper);
    while (found[i].size() < enough) {
      SAEDICT_ASSIGN_OR_RETURN(std::optional<PeakOrderedDocuments::Entry> e, documents.Next());
      if (!e || e->peak < ranges[i].lower) break;
      if (InValueRange(ranges[i], e->peak)) SAEDICT_RETURN_IF_ERROR(take(*e));
    }
  }
  documents.Seek(std::nullopt);
  for (;;) {
    SAEDICT_ASSIGN_OR_RETURN(std::optional<PeakOrderedDocuments::Entry> e, documents.Next());
    if (!e || !CanStillFill(ranges, found, enough, e->peak)) break;
    SAEDICT_RETURN_IF_ERROR(take(*e));
  }
  return found;
}

std::vector<RankedToken> EvenlySpacedPicks(std::vector<RankedToken> candidates, size_t per_range) {
  std::sort(candidates.begin(), candidates.end(), RanksBefore);
  const size_t take = std::min(candidates.size(), per_range);
  std::vector<RankedToken> picked;
  picked.reserve(take);
  for (size_t j = 0; j < take; ++j) {
    picked.push_back(candidates[(2 * j + 1) * candidates.size() / (2 * take)]);
  }
  return picked;
}

}  // namespace saedict::storage
