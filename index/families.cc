// Feature families (see families.h).
#include "index/families.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <utility>

#include "absl/strings/str_format.h"

namespace saedict::index {

CooccurrenceCounter::CooccurrenceCounter(const std::vector<std::vector<Hit>>& neighbours,
                                         double min_decoder_cosine) {
  const int64_t n = static_cast<int64_t>(neighbours.size());
  std::vector<std::vector<std::pair<uint32_t, double>>> lists(n);
  for (int64_t i = 0; i < n; ++i) {
    for (const Hit& h : neighbours[i]) {
      if (h.cosine < min_decoder_cosine || h.feature >= n || h.feature == i) continue;
      lists[i].push_back({h.feature, h.cosine});
      lists[h.feature].push_back({static_cast<uint32_t>(i), h.cosine});
    }
  }
  offsets_.assign(n + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    auto& l = lists[i];
    std::sort(l.begin(), l.end());
    l.erase(std::unique(l.begin(), l.end(),
                        [](const auto& a, const auto& b) { return a.first == b.first; }),
            l.end());
    for (const auto& [j, c] : l) {
      partners_.push_back(j);
      cosines_.push_back(c);
    }
    offsets_[i + 1] = static_cast<int64_t>(partners_.size());
  }
  pairs_.assign(partners_.size(), 0);
  count_.assign(n, 0);
  active_.assign(n, 0);
}

void CooccurrenceCounter::AddToken(absl::Span<const uint32_t> active) {
  ++tokens_;
  for (uint32_t a : active) active_[a] = 1;
  for (uint32_t a : active) {
    ++count_[a];
    for (int64_t p = offsets_[a]; p < offsets_[a + 1]; ++p) pairs_[p] += active_[partners_[p]];
  }
  for (uint32_t a : active) active_[a] = 0;
}

int64_t CooccurrenceCounter::Find(uint32_t i, uint32_t j) const {
  const auto begin = partners_.begin() + offsets_[i], end = partners_.begin() + offsets_[i + 1];
  const auto it = std::lower_bound(begin, end, j);
  return it != end && *it == j ? it - partners_.begin() : -1;
}

int64_t CooccurrenceCounter::pair_count(uint32_t i, uint32_t j) const {
  const int64_t p = Find(i, j);
  return p < 0 ? 0 : pairs_[p];
}

double CooccurrenceCounter::pair_cosine(uint32_t i, uint32_t j) const {
  const int64_t p = Find(i, j);
  return p < 0 ? std::numeric_limits<double>::quiet_NaN() : cosines_[p];
}

absl::Span<const uint32_t> CooccurrenceCounter::partners(uint32_t i) const {
  return absl::MakeConstSpan(partners_.data() + offsets_[i], offsets_[i + 1] - offsets_[i]);
}

Relation ScorePair(const CooccurrenceCounter& counts, uint32_t parent, uint32_t child) {
  Relation r;
  r.parent = parent;
  r.child = child;
  r.decoder_cosine = counts.pair_cosine(parent, child);
  r.parent_count = counts.count(parent);
  r.child_count = counts.count(child);
  r.both_count = counts.pair_count(parent, child);
  const double ci = static_cast<double>(r.parent_count), cj = static_cast<double>(r.child_count);
  const double nij = static_cast<double>(r.both_count), t = static_cast<double>(counts.tokens());
  r.coverage = cj > 0 ? nij / cj : 0;
  const double unions = ci + cj - nij;
  r.jaccard = unions > 0 ? nij / unions : 0;
  const double denominator = ci * cj * (t - ci) * (t - cj);
  r.phi = denominator > 0 ? (t * nij - ci * cj) / std::sqrt(denominator) : 0;
  return r;
}

std::string ExplainRelation(const Relation& r, const FamilyOptions& options) {
  return absl::StrFormat(
      "%u is a child of %u: it fires with %u on %d of its %d tokens (coverage %.3f >= %.2f), "
      "%u fires more often (%d tokens), and their decoder cosine %.3f >= %.2f",
      r.child, r.parent, r.parent, r.both_count, r.child_count, r.coverage, options.min_coverage,
      r.parent, r.parent_count, r.decoder_cosine, options.min_decoder_cosine);
}

FamilyForest BuildFamilies(const CooccurrenceCounter& counts, const FamilyOptions& options) {
  const int64_t n = counts.size();
  FamilyForest forest;
  forest.parent.assign(n, -1);
  forest.link.assign(n, Relation{});
  forest.children.assign(n, {});
  forest.family_of.assign(n, -1);
  for (int64_t j = 0; j < n; ++j) {
    const auto child = static_cast<uint32_t>(j);
    if (counts.count(child) < options.min_child_count) continue;
    bool found = false;
    Relation best;
    for (uint32_t i : counts.partners(child)) {
      if (counts.count(i) <= counts.count(child)) continue;
      const Relation r = ScorePair(counts, i, child);
      if (r.coverage < options.min_coverage || !(r.decoder_cosine >= options.min_decoder_cosine)) {
        continue;
      }
      const bool better =
          !found || r.parent_count < best.parent_count ||
          (r.parent_count == best.parent_count &&
           (r.coverage > best.coverage ||
            (r.coverage == best.coverage &&
             (r.decoder_cosine > best.decoder_cosine ||
              (r.decoder_cosine == best.decoder_cosine && r.parent < best.parent)))));
      if (better) {
        best = r;
        found = true;
      }
    }
    if (found) {
      forest.parent[j] = best.parent;
      forest.link[j] = best;
      forest.children[best.parent].push_back(child);
    }
  }
  // Children were appended in ascending child order already.
  for (int64_t root = 0; root < n; ++root) {
    if (forest.parent[root] >= 0 || forest.children[root].empty()) continue;
    Family family;
    family.root = static_cast<uint32_t>(root);
    std::vector<std::pair<uint32_t, int>> stack = {{family.root, 0}};
    std::vector<uint32_t> descendants;
    while (!stack.empty()) {
      auto [f, depth] = stack.back();
      stack.pop_back();
      family.depth = std::max(family.depth, depth);
      if (f != family.root) descendants.push_back(f);
      for (uint32_t c : forest.children[f]) stack.push_back({c, depth + 1});
    }
    std::sort(descendants.begin(), descendants.end());
    family.members.push_back(family.root);
    family.members.insert(family.members.end(), descendants.begin(), descendants.end());
    forest.families.push_back(std::move(family));
  }
  std::sort(forest.families.begin(), forest.families.end(), [](const Family& a, const Family& b) {
    return a.members.size() != b.members.size() ? a.members.size() > b.members.size()
                                                : a.root < b.root;
  });
  for (size_t f = 0; f < forest.families.size(); ++f) {
    for (uint32_t m : forest.families[f].members) forest.family_of[m] = static_cast<int64_t>(f);
  }
  return forest;
}

}  // namespace saedict::index
