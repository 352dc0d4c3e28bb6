#include "service/corpus_queries.h"

#include "service/proto_convert.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/example_builder.h"
#include "service/feature_distribution.h"
#include "wire/wire_codec.h"
#include "util/status_macros.h"

namespace saedict::service {
namespace {

constexpr int kDefaultTopN = 10;
constexpr int kMaxTopN = 1000;
constexpr int kDefaultContext = 8;
constexpr int kMaxContext = 256;
constexpr int kMaxQuantileBins = 20;
constexpr int kDefaultPerBin = 5;
constexpr int kMaxPerBin = 100;
constexpr int kDefaultDocFeatures = 20;
constexpr int kMaxDocFeatures = 10000;

// 0 → default; otherwise 1..max.
absl::StatusOr<int> CountOrDefault(int value, int default_value, int max, const char* field) {
  if (value == 0) return default_value;
  if (value < 0 || value > max) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", value, " is out of range; expected 0 (default ",
                                                   default_value, ") or 1..", max));
  }
  return value;
}

absl::StatusOr<int> ContextWindow(bool has, int value) {
  if (!has) return kDefaultContext;
  if (value < 0 || value > kMaxContext) {
    return absl::InvalidArgumentError(absl::StrCat(
        "context_window: ", value, " is out of range; expected 0..", kMaxContext, " tokens each side"));
  }
  return value;
}

absl::Status RequireNonEmpty(const std::string& value, const char* field) {
  if (!value.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, ": empty; expected a name"));
}

v1::SparseCodes ToWire(const storage::DocumentCodes& codes, int64_t d_sae) {
  engine::SparseCodes out;
  out.num_rows = codes.num_rows;
  out.num_features = d_sae;
  out.row_offsets = codes.row_offsets;
  out.indices = codes.indices;
  out.values = codes.values;
  return wire::EncodeCodes(out);
}

// Examples for the entries, in their order, leaving out stale ones.
absl::Status AppendExamples(ExampleBuilder& builder, const std::vector<storage::TokenRef>& refs,
                            google::protobuf::RepeatedPtrField<v1::Example>* out) {
  for (const storage::TokenRef& ref : refs) {
    SAEDICT_ASSIGN_OR_RETURN(std::optional<v1::Example> example, builder.Build(ref));
    if (example.has_value()) *out->Add() = std::move(*example);
  }
  return absl::OkStatus();
}

v1::FeatureStats ToWire(const storage::FeatureStatsRecord& s, const storage::DictionaryTotals& t) {
  v1::FeatureStats out;
  out.set_count(s.count);
  out.set_total_tokens(t.tokens);
  if (t.tokens > 0) out.set_density(static_cast<double>(s.count) / static_cast<double>(t.tokens));
  if (s.count > 0) {
    const double n = static_cast<double>(s.count);
    const double mean = s.sum / n;
    out.set_mean(mean);
    out.set_std(std::sqrt(std::max(0.0, s.sum_sq / n - mean * mean)));
  }
  if (s.max.has_value()) out.set_max(*s.max);
  std::vector<v1::HistogramBin> bins;
  for (const auto& [index, count] : s.bins) {
    if (count <= 0) continue;
    auto [lower, upper] = storage::HistogramBinRange(index);
    v1::HistogramBin bin;
    bin.set_lower(lower);
    bin.set_upper(upper);
    bin.set_count(count);
    bins.push_back(std::move(bin));
  }
  std::sort(bins.begin(), bins.end(),
            [](const v1::HistogramBin& a, const v1::HistogramBin& b) { return a.lower() < b.lower(); });
  for (v1::HistogramBin& bin : bins) *out.add_histogram() = std::move(bin);
  return out;
}

}  // namespace

absl::StatusOr<int64_t> CorpusQueries::CheckFeature(const std::string& dictionary_id,
                                                    uint32_t feature) const {
  SAEDICT_RETURN_IF_ERROR(RequireNonEmpty(dictionary_id, "dictionary_id"));
  SAEDICT_ASSIGN_OR_RETURN(v1::DictionaryInfo info, registry_->Get(dictionary_id));
  if (feature >= info.d_sae()) {
    return absl::NotFoundError(absl::StrCat("feature ", feature, " not found: dictionary '",
                                            dictionary_id, "' has d_sae ", info.d_sae(),
                                            " (features 0..", info.d_sae() - 1, ")"));
  }
  return info.d_sae();
}

absl::StatusOr<storage::StoredCodes> CorpusQueries::CodesOf(const std::string& dictionary_id,
                                                            const std::string& corpus,
                                                            uint64_t doc_id) const {
  SAEDICT_RETURN_IF_ERROR(RequireNonEmpty(dictionary_id, "dictionary_id"));
  SAEDICT_RETURN_IF_ERROR(RequireNonEmpty(corpus, "corpus"));
  SAEDICT_RETURN_IF_ERROR(registry_->Get(dictionary_id).status());
  SAEDICT_ASSIGN_OR_RETURN(std::optional<storage::StoredCodes> codes,
                           store_->GetCodes(dictionary_id, corpus, doc_id));
  if (codes.has_value()) return std::move(*codes);
  SAEDICT_ASSIGN_OR_RETURN(std::optional<storage::StoredDocument> doc,
                           store_->GetDocument(corpus, doc_id));
  if (!doc.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("document ", doc_id, " of corpus '", corpus, "' not found"));
  }
  return absl::NotFoundError(absl::StrCat("dictionary '", dictionary_id,
                                          "' has no codes for document ", doc_id, " of corpus '",
                                          corpus, "'; ingest it with this dictionary first"));
}

absl::StatusOr<v1::GetDocumentResponse> CorpusQueries::GetDocument(
    const v1::GetDocumentRequest& r) const {
  SAEDICT_RETURN_IF_ERROR(RequireNonEmpty(r.corpus(), "corpus"));
  SAEDICT_ASSIGN_OR_RETURN(std::optional<storage::StoredDocument> doc,
                           store_->GetDocument(r.corpus(), r.doc_id()));
  if (!doc.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("document ", r.doc_id(), " of corpus '", r.corpus(), "' not found"));
  }
  v1::GetDocumentResponse out;
  v1::Document* d = out.mutable_document();
  d->set_corpus(r.corpus());
  d->set_doc_id(r.doc_id());
  d->mutable_token_ids()->Add(doc->token_ids.begin(), doc->token_ids.end());
  for (std::string& s : doc->token_strings) d->add_token_strings(std::move(s));
  return out;
}

absl::StatusOr<v1::GetActivationsResponse> CorpusQueries::GetActivations(
    const v1::GetActivationsRequest& r) const {
  SAEDICT_ASSIGN_OR_RETURN(storage::StoredCodes codes,
                           CodesOf(r.dictionary_id(), r.corpus(), r.doc_id()));
  SAEDICT_ASSIGN_OR_RETURN(v1::DictionaryInfo info, registry_->Get(r.dictionary_id()));
  v1::GetActivationsResponse out;
  *out.mutable_codes() = ToWire(codes.codes, info.d_sae());
  out.set_stored_precision(ToProto(codes.precision));
  return out;
}

absl::StatusOr<v1::GetFeatureResponse> CorpusQueries::GetFeature(
    const v1::GetFeatureRequest& r) const {
  SAEDICT_RETURN_IF_ERROR(CheckFeature(r.dictionary_id(), r.feature()).status());
  SAEDICT_ASSIGN_OR_RETURN(int top_n, CountOrDefault(r.top_n(), kDefaultTopN, kMaxTopN, "top_n"));
  SAEDICT_ASSIGN_OR_RETURN(int window, ContextWindow(r.has_context_window(), r.context_window()));
  SAEDICT_ASSIGN_OR_RETURN(storage::FeatureStatsRecord stats,
                           store_->GetFeatureStats(r.dictionary_id(), r.feature()));
  SAEDICT_ASSIGN_OR_RETURN(storage::DictionaryTotals totals,
                           store_->GetDictionaryTotals(r.dictionary_id()));
  v1::GetFeatureResponse out;
  out.set_dictionary_id(r.dictionary_id());
  out.set_feature(r.feature());
  *out.mutable_stats() = ToWire(stats, totals);
  SAEDICT_ASSIGN_OR_RETURN(std::vector<storage::TokenRef> top,
                           store_->TopTokens(r.dictionary_id(), r.feature(), top_n));
  ExampleBuilder builder(store_, r.dictionary_id(), r.feature(), window);
  SAEDICT_RETURN_IF_ERROR(AppendExamples(builder, top, out.mutable_top_examples()));
  return out;
}

absl::StatusOr<v1::TopActivationsResponse> CorpusQueries::TopActivations(
    const v1::TopActivationsRequest& r) const {
  SAEDICT_RETURN_IF_ERROR(CheckFeature(r.dictionary_id(), r.feature()).status());
  SAEDICT_ASSIGN_OR_RETURN(int n, CountOrDefault(r.n(), kDefaultTopN, kMaxTopN, "n"));
  SAEDICT_ASSIGN_OR_RETURN(int window, ContextWindow(r.has_context_window(), r.context_window()));
  if (r.quantile_bins() < 0 || r.quantile_bins() > kMaxQuantileBins) {
    return absl::InvalidArgumentError(absl::StrCat("quantile_bins: ", r.quantile_bins(),
                                                   " is out of range; expected 0 (none) or 1..",
                                                   kMaxQuantileBins));
  }
  SAEDICT_ASSIGN_OR_RETURN(int per_bin,
                           CountOrDefault(r.per_bin(), kDefaultPerBin, kMaxPerBin, "per_bin"));
  ExampleBuilder builder(store_, r.dictionary_id(), r.feature(), window);
  v1::TopActivationsResponse out;
  SAEDICT_ASSIGN_OR_RETURN(std::vector<storage::TokenRef> top,
                           store_->TopTokens(r.dictionary_id(), r.feature(), n));
  SAEDICT_RETURN_IF_ERROR(AppendExamples(builder, top, out.mutable_top()));
  if (r.quantile_bins() == 0) return out;

  SAEDICT_ASSIGN_OR_RETURN(storage::FeatureStatsRecord stats,
                           store_->GetFeatureStats(r.dictionary_id(), r.feature()));
  if (stats.count == 0 || !stats.max.has_value()) return out;
  const int bins = r.quantile_bins();
  std::vector<storage::CorpusStore::ValueRange> ranges;
  for (int b = 0; b < bins; ++b) {
    const double q_lo = static_cast<double>(b) / bins, q_hi = static_cast<double>(b + 1) / bins;
    const float v_lo = ValueAtQuantile(stats, q_lo);
    const float v_hi = b == bins - 1 ? *stats.max : ValueAtQuantile(stats, q_hi);
    v1::QuantileBin* bin = out.add_bins();
    bin->set_quantile_lower(q_lo);
    bin->set_quantile_upper(q_hi);
    bin->set_value_lower(v_lo);
    bin->set_value_upper(v_hi);
    ranges.push_back({v_lo, std::max(v_lo, v_hi), b == bins - 1});
  }
  // Candidates per bin: twice per_bin, so the picks spread over the bin.
  SAEDICT_ASSIGN_OR_RETURN(std::vector<std::vector<storage::TokenRef>> samples,
                           store_->SampleTokensInRanges(r.dictionary_id(), r.feature(), ranges,
                                                        per_bin, 2 * per_bin));
  for (int b = 0; b < bins; ++b) {
    SAEDICT_RETURN_IF_ERROR(
        AppendExamples(builder, samples[b], out.mutable_bins(b)->mutable_examples()));
  }
  return out;
}

absl::StatusOr<v1::DocumentFeaturesResponse> CorpusQueries::DocumentFeatures(
    const v1::DocumentFeaturesRequest& r) const {
  SAEDICT_ASSIGN_OR_RETURN(int n, CountOrDefault(r.n(), kDefaultDocFeatures, kMaxDocFeatures, "n"));
  SAEDICT_ASSIGN_OR_RETURN(storage::StoredCodes stored,
                           CodesOf(r.dictionary_id(), r.corpus(), r.doc_id()));
  const storage::DocumentCodes& codes = stored.codes;
  const int64_t tokens = codes.num_rows;
  int64_t first = 0, last = tokens - 1;
  if (r.has_position()) {
    if (r.position() < 0 || r.position() >= tokens) {
      return absl::InvalidArgumentError(absl::StrCat("position: ", r.position(),
                                                     " is out of range; document ", r.doc_id(),
                                                     " has ", tokens, " tokens"));
    }
    first = last = r.position();
  }
  std::map<uint32_t, v1::FeatureActivity> by_feature;
  for (int64_t t = first; t <= last; ++t) {
    for (uint64_t e = codes.row_offsets[t]; e < codes.row_offsets[t + 1]; ++e) {
      const float v = codes.values[e];
      auto [it, inserted] = by_feature.try_emplace(codes.indices[e]);
      v1::FeatureActivity& a = it->second;
      if (inserted || v > a.max_value()) {
        a.set_feature(codes.indices[e]);
        a.set_max_value(v);
        a.set_max_position(t);
      }
      a.set_active_tokens(a.active_tokens() + 1);
      a.set_sum(a.sum() + v);
    }
  }
  std::vector<v1::FeatureActivity> ranked;
  ranked.reserve(by_feature.size());
  for (auto& [feature, activity] : by_feature) ranked.push_back(std::move(activity));
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const v1::FeatureActivity& a, const v1::FeatureActivity& b) {
                     return a.max_value() > b.max_value();
                   });
  v1::DocumentFeaturesResponse out;
  out.set_num_tokens(tokens);
  for (size_t i = 0; i < ranked.size() && i < static_cast<size_t>(n); ++i) {
    *out.add_features() = std::move(ranked[i]);
  }
  return out;
}

}  // namespace saedict::service
