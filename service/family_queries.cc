// FamilyQueries (see family_queries.h).
#include "service/family_queries.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "util/status_macros.h"

namespace saedict::service {
namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;

absl::StatusOr<index::FamilyOptions> Resolve(const v1::FamilyOptions& o) {
  index::FamilyOptions out;
  if (o.has_min_decoder_cosine()) {
    if (!std::isfinite(o.min_decoder_cosine()) || o.min_decoder_cosine() < -1 ||
        o.min_decoder_cosine() > 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "options.min_decoder_cosine: ", o.min_decoder_cosine(), " is not in [-1, 1]"));
    }
    out.min_decoder_cosine = o.min_decoder_cosine();
  }
  if (o.has_min_coverage()) {
    if (!std::isfinite(o.min_coverage()) || o.min_coverage() <= 0 || o.min_coverage() > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("options.min_coverage: ", o.min_coverage(), " is not in (0, 1]"));
    }
    out.min_coverage = o.min_coverage();
  }
  if (o.has_min_child_count()) {
    if (o.min_child_count() < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("options.min_child_count: ", o.min_child_count(), "; expected >= 1"));
    }
    out.min_child_count = o.min_child_count();
  }
  return out;
}

v1::FamilyMember Member(uint32_t feature, v1::FamilyRelation relation, const index::Relation& link,
                        int64_t count, const index::FamilyOptions& options) {
  v1::FamilyMember m;
  m.set_feature(feature);
  m.set_relation(relation);
  m.set_pair_parent(link.parent);
  m.set_pair_child(link.child);
  m.set_decoder_cosine(link.decoder_cosine);
  m.set_coverage(link.coverage);
  m.set_jaccard(link.jaccard);
  m.set_phi(link.phi);
  m.set_count(count);
  m.set_reason(index::ExplainRelation(link, options));
  return m;
}

// 1 + the index of the smallest Matryoshka prefix holding `feature`; 0 without widths.
int32_t NestingLevel(const std::vector<int64_t>& widths, uint32_t feature) {
  for (size_t i = 0; i < widths.size(); ++i) {
    if (feature < widths[i]) return static_cast<int32_t>(i + 1);
  }
  return 0;
}

void ByCoverage(google::protobuf::RepeatedPtrField<v1::FamilyMember>* members) {
  std::sort(members->begin(), members->end(),
            [](const v1::FamilyMember& a, const v1::FamilyMember& b) {
              return a.coverage() != b.coverage() ? a.coverage() > b.coverage()
                                                  : a.feature() < b.feature();
            });
}

}  // namespace

FamilyQueries::~FamilyQueries() {
  absl::MutexLock lock(&refresh_mu_);
  if (refresher_.joinable()) refresher_.join();
}

void FamilyQueries::RefreshInBackground(const std::string& id, const v1::FamilyOptions& options) {
  if (refreshing_.exchange(true)) return;  // one recount at a time
  absl::MutexLock lock(&refresh_mu_);
  if (refresher_.joinable()) refresher_.join();  // the previous one has finished
  refresher_ = std::thread([this, id, options] {
    (void)Families(id, options);  // errors show on the next exact ask
    refreshing_.store(false);
  });
}

absl::StatusOr<std::shared_ptr<const FamilyQueries::Computed>> FamilyQueries::Families(
    const std::string& id, const v1::FamilyOptions& requested, bool allow_stale) {
  if (id.empty()) return absl::InvalidArgumentError("dictionary_id: empty");
  SAEDICT_RETURN_IF_ERROR(registry_->GetEncoder(id).status());
  SAEDICT_ASSIGN_OR_RETURN(index::FamilyOptions options, Resolve(requested));
  SAEDICT_ASSIGN_OR_RETURN(std::string sha, similarity_->NeighboursReadyFor(id));
  const CacheKey key{id, options.min_decoder_cosine, options.min_coverage, options.min_child_count};
  auto cached = [&]() -> std::shared_ptr<const Computed> {
    absl::MutexLock lock(&cache_mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second->weights_sha256 == sha &&
        it->second->corpus_generation == corpus_generation_.load()) {
      return it->second;
    }
    return nullptr;
  };
  if (auto hit = cached()) return hit;
  if (allow_stale) {
    std::shared_ptr<const Computed> earlier;
    {
      absl::MutexLock lock(&cache_mu_);
      auto it = cache_.find(key);
      if (it != cache_.end() && it->second->weights_sha256 == sha) earlier = it->second;
    }
    if (earlier != nullptr) {
      RefreshInBackground(id, requested);
      return earlier;
    }
  }
  absl::MutexLock computing(&compute_mu_);
  if (auto hit = cached()) return hit;  // computed while we waited
  const uint64_t generation = corpus_generation_.load();
  SAEDICT_ASSIGN_OR_RETURN(std::shared_ptr<const Computed> computed,
                           Compute(id, options, sha, generation));
  absl::MutexLock lock(&cache_mu_);
  cache_[key] = computed;
  return computed;
}

absl::StatusOr<std::shared_ptr<const FamilyQueries::Computed>> FamilyQueries::Compute(
    const std::string& id, const index::FamilyOptions& options, const std::string& sha,
    uint64_t generation) {
  const absl::Time start = absl::Now();
  SAEDICT_ASSIGN_OR_RETURN(std::shared_ptr<const engine::Encoder> encoder,
                           registry_->GetEncoder(id));
  const int64_t n = encoder->dictionary().config.d_sae;
  std::vector<std::vector<index::Hit>> neighbours(n);
  int per_feature = 0;
  for (int64_t f = 0; f < n; ++f) {
    SAEDICT_ASSIGN_OR_RETURN(records::v1::NeighboursRecord record,
                             similarity_->StoredNeighbours(id, static_cast<uint32_t>(f)));
    if (record.weights_sha256() != sha) {
      return absl::FailedPreconditionError(absl::StrCat("the neighbours of dictionary '", id,
                                                        "' changed during the computation; retry"));
    }
    per_feature = std::max(per_feature, record.features_size());
    for (int k = 0; k < record.features_size() && k < record.cosines_size(); ++k) {
      neighbours[f].push_back({record.features(k), record.cosines(k)});
    }
  }
  auto out = std::make_shared<Computed>();
  out->options = options;
  out->weights_sha256 = sha;
  out->corpus_generation = generation;
  out->counts =
      std::make_unique<index::CooccurrenceCounter>(neighbours, options.min_decoder_cosine);
  int64_t documents = 0;
  SAEDICT_RETURN_IF_ERROR(store_->ScanCodes(id, [&](const storage::StoredCodes& stored) {
    const SparseCodes& c = stored.codes;
    for (int64_t t = 0; t < c.num_rows; ++t) {
      for (uint64_t j = c.row_offsets[t]; j < c.row_offsets[t + 1]; ++j) {
        if (c.indices[j] >= n) {
          return absl::InternalError(absl::StrCat("stored codes of dictionary '", id,
                                                  "' name feature ", c.indices[j], " >= d_sae ",
                                                  n));
        }
      }
      out->counts->AddToken(absl::MakeConstSpan(c.indices.data() + c.row_offsets[t],
                                                c.row_offsets[t + 1] - c.row_offsets[t]));
    }
    ++documents;
    return absl::OkStatus();
  }));
  out->forest = index::BuildFamilies(*out->counts, options);
  v1::FamilyProvenance& p = out->provenance;
  *p.mutable_computed_at() =
      google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(absl::Now()));
  p.set_tokens(out->counts->tokens());
  p.set_documents(documents);
  p.set_min_decoder_cosine(options.min_decoder_cosine);
  p.set_min_coverage(options.min_coverage);
  p.set_min_child_count(options.min_child_count);
  p.set_neighbours_per_feature(per_feature);
  p.set_seconds(absl::ToDoubleSeconds(absl::Now() - start));
  return std::shared_ptr<const Computed>(std::move(out));
}

absl::StatusOr<v1::FeatureFamilyResponse> FamilyQueries::FeatureFamily(
    const v1::FeatureFamilyRequest& r) {
  return Answer(r, /*allow_stale=*/false);
}

absl::StatusOr<v1::FeatureFamilyResponse> FamilyQueries::RecentFamily(
    const v1::FeatureFamilyRequest& r) {
  return Answer(r, /*allow_stale=*/true);
}

absl::StatusOr<v1::FeatureFamilyResponse> FamilyQueries::Answer(const v1::FeatureFamilyRequest& r,
                                                                bool allow_stale) {
  SAEDICT_ASSIGN_OR_RETURN(std::shared_ptr<const engine::Encoder> encoder,
                           registry_->GetEncoder(r.dictionary_id()));
  const int64_t n = encoder->dictionary().config.d_sae;
  if (r.feature() >= n) {
    return absl::NotFoundError(absl::StrCat("feature: ", r.feature(), " is not below d_sae = ", n,
                                            " of dictionary '", r.dictionary_id(), "'"));
  }
  SAEDICT_ASSIGN_OR_RETURN(std::shared_ptr<const Computed> families,
                           Families(r.dictionary_id(), r.options(), allow_stale));
  const index::FamilyForest& forest = families->forest;
  const index::CooccurrenceCounter& counts = *families->counts;
  const uint32_t f = r.feature();
  v1::FeatureFamilyResponse out;
  out.set_dictionary_id(r.dictionary_id());
  out.set_feature(f);
  out.set_count(counts.count(f));
  uint32_t below = f;
  for (int64_t p = forest.parent[f]; p >= 0; p = forest.parent[p]) {
    *out.add_parents() = Member(static_cast<uint32_t>(p), v1::FAMILY_RELATION_PARENT,
                                forest.link[below], counts.count(p), families->options);
    below = static_cast<uint32_t>(p);
  }
  out.set_root(below);
  for (uint32_t c : forest.children[f]) {
    *out.add_children() =
        Member(c, v1::FAMILY_RELATION_CHILD, forest.link[c], counts.count(c), families->options);
  }
  if (forest.parent[f] >= 0) {
    for (uint32_t s : forest.children[forest.parent[f]]) {
      if (s == f) continue;
      *out.add_siblings() = Member(s, v1::FAMILY_RELATION_SIBLING, forest.link[s], counts.count(s),
                                   families->options);
    }
  }
  ByCoverage(out.mutable_children());
  ByCoverage(out.mutable_siblings());
  const std::vector<int64_t>& widths = encoder->dictionary().config.matryoshka_widths;
  out.set_nesting_level(NestingLevel(widths, f));
  for (auto* members : {out.mutable_parents(), out.mutable_children(), out.mutable_siblings()}) {
    for (v1::FamilyMember& m : *members) m.set_nesting_level(NestingLevel(widths, m.feature()));
  }
  const int64_t family = forest.family_of[f];
  out.set_family_size(family < 0 ? 1
                                 : static_cast<int64_t>(forest.families[family].members.size()));
  *out.mutable_provenance() = families->provenance;
  out.mutable_provenance()->set_stale(families->corpus_generation != corpus_generation_.load());
  return out;
}

absl::StatusOr<v1::ListFamiliesResponse> FamilyQueries::ListFamilies(
    const v1::ListFamiliesRequest& r) {
  if (r.page_size() < 0 || r.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size: ", r.page_size(),
                                                   " is out of range; expected 0 (default ",
                                                   kDefaultPageSize, ") or 1..", kMaxPageSize));
  }
  const int page_size = r.page_size() == 0 ? kDefaultPageSize : r.page_size();
  SAEDICT_ASSIGN_OR_RETURN(std::shared_ptr<const Computed> families,
                           Families(r.dictionary_id(), r.options()));
  const int64_t stamp =
      google::protobuf::util::TimeUtil::TimestampToMicroseconds(families->provenance.computed_at());
  int64_t offset = 0;
  if (!r.page_token().empty()) {
    std::pair<std::string, std::string> parts =
        absl::StrSplit(r.page_token(), absl::MaxSplits('.', 1));
    int64_t token_stamp = 0;
    if (!absl::SimpleAtoi(parts.first, &offset) || !absl::SimpleAtoi(parts.second, &token_stamp) ||
        offset < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_token: '", r.page_token(), "' is not a token this server made"));
    }
    if (token_stamp != stamp) {
      return absl::InvalidArgumentError(absl::StrCat(
          "page_token: '", r.page_token(),
          "' belongs to families computed earlier; they were recomputed since, start again"));
    }
  }
  const auto& all = families->forest.families;
  v1::ListFamiliesResponse out;
  out.set_total_families(static_cast<int64_t>(all.size()));
  const int64_t end = std::min<int64_t>(static_cast<int64_t>(all.size()), offset + page_size);
  for (int64_t i = offset; i < end; ++i) {
    v1::FeatureFamily* family = out.add_families();
    family->set_root(all[i].root);
    for (uint32_t m : all[i].members) family->add_members(m);
    family->set_depth(all[i].depth);
    family->set_root_count(families->counts->count(all[i].root));
  }
  if (end < static_cast<int64_t>(all.size()))
    out.set_next_page_token(absl::StrCat(end, ".", stamp));
  *out.mutable_provenance() = families->provenance;
  return out;
}

}  // namespace saedict::service
