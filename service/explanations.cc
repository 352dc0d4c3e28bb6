// Explanations (contract: explanations.h).
#include "service/explanations.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "storage/explanation_terms.h"
#include "util/sha256.h"
#include "util/status_macros.h"

namespace saedict::service {
namespace {

constexpr int kDefaultTopN = 20;
constexpr int kMaxTopN = 1000;
constexpr size_t kSnippetBytes = 300;

bool IsExplanationId(const std::string& id) { return IsLowerHex(id, 16); }

absl::Status CheckField(const std::string& value, absl::string_view field, size_t max_bytes) {
  if (value.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", value.size(),
                                                   " bytes; expected at most ", max_bytes));
  }
  return absl::OkStatus();
}

// Moves `i` back to the start of the UTF-8 character it is in.
size_t CharStart(const std::string& s, size_t i) {
  while (i > 0 && i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// Feature-page order (explanations.h).
bool FeaturePageBefore(const v1::Explanation& a, const v1::Explanation& b) {
  if (a.has_score() != b.has_score()) return a.has_score();
  if (a.has_score() && a.score() != b.score()) return a.score() > b.score();
  const int64_t ta = google::protobuf::util::TimeUtil::TimestampToMicroseconds(a.created_at());
  const int64_t tb = google::protobuf::util::TimeUtil::TimestampToMicroseconds(b.created_at());
  if (ta != tb) return ta > tb;
  return a.id() < b.id();
}

}  // namespace

std::string ExplanationId(const std::string& source, const std::string& author,
                          const std::string& explainer_model, const std::string& text) {
  Sha256 h;
  for (const std::string* part : {&source, &author, &explainer_model, &text}) {
    h.Add(*part);
    h.Add("\0", 1);
  }
  return h.HexDigest().substr(0, 16);
}

std::string ExplanationSnippet(const std::string& text, const std::vector<std::string>& terms) {
  const absl::flat_hash_set<std::string> wanted(terms.begin(), terms.end());
  const std::vector<storage::TextWord> words = storage::SplitWords(text);
  size_t begin = 0, end = text.size();
  if (text.size() > kSnippetBytes) {
    size_t first = 0;
    for (const storage::TextWord& w : words) {
      if (wanted.contains(w.term)) {
        first = w.begin;
        break;
      }
    }
    begin = CharStart(text, first > kSnippetBytes / 3 ? first - kSnippetBytes / 3 : 0);
    end = std::min(text.size(), begin + kSnippetBytes);
    if (end < text.size()) end = CharStart(text, end);
  }
  std::string out = begin > 0 ? "…" : "";
  size_t at = begin;
  for (const storage::TextWord& w : words) {
    if (w.begin < begin || w.end > end || !wanted.contains(w.term)) continue;
    absl::StrAppend(&out, text.substr(at, w.begin - at), "[[", text.substr(w.begin, w.end - w.begin),
                    "]]");
    at = w.end;
  }
  absl::StrAppend(&out, text.substr(at, end - at), end < text.size() ? "…" : "");
  return out;
}

v1::Explanation ToApi(const storage::StoredExplanation& e) {
  v1::Explanation out;
  out.set_id(e.key.id);
  out.set_dictionary_id(e.key.dictionary_id);
  out.set_feature(e.key.feature);
  out.set_text(e.record.text());
  out.set_source(e.record.source());
  if (e.record.has_score()) out.set_score(e.record.score());
  out.set_author(e.record.author());
  out.set_explainer_model(e.record.explainer_model());
  if (e.record.has_created_at()) *out.mutable_created_at() = e.record.created_at();
  out.set_weights_sha256(e.record.weights_sha256());
  return out;
}

absl::StatusOr<std::string> Explanations::CheckFeature(const std::string& dictionary_id,
                                                       uint32_t feature,
                                                       const std::string& field_prefix) const {
  if (dictionary_id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field_prefix, "dictionary_id: empty"));
  }
  absl::StatusOr<v1::DictionaryInfo> found = registry_->Get(dictionary_id);
  if (!found.ok()) {
    return absl::Status(found.status().code(),
                        absl::StrCat(field_prefix, found.status().message()));
  }
  const v1::DictionaryInfo& info = *found;
  if (feature >= info.d_sae()) {
    return absl::NotFoundError(absl::StrCat(field_prefix, "feature: ", feature,
                                            " is not a feature of dictionary '", dictionary_id,
                                            "' (d_sae ", info.d_sae(), ")"));
  }
  return info.weights_sha256();
}

absl::StatusOr<storage::StoredExplanation> NewExplanation(const v1::SetExplanationRequest& r,
                                                          const std::string& weights_sha256) {
  const std::string text(absl::StripAsciiWhitespace(r.text()));
  if (text.empty()) return absl::InvalidArgumentError("text: empty; expected the explanation");
  SAEDICT_RETURN_IF_ERROR(CheckField(text, "text", kMaxExplanationTextBytes));
  SAEDICT_RETURN_IF_ERROR(CheckField(r.source(), "source", kMaxExplanationFieldBytes));
  SAEDICT_RETURN_IF_ERROR(CheckField(r.author(), "author", kMaxExplanationFieldBytes));
  SAEDICT_RETURN_IF_ERROR(
      CheckField(r.explainer_model(), "explainer_model", kMaxExplanationFieldBytes));
  if (r.has_score() && !std::isfinite(r.score())) {
    return absl::InvalidArgumentError(absl::StrCat("score: ", r.score(), "; expected a finite number"));
  }
  const std::string source = r.source().empty() ? "human" : r.source();
  storage::StoredExplanation e;
  e.key.dictionary_id = r.dictionary_id();
  e.key.feature = r.feature();
  e.key.id = ExplanationId(source, r.author(), r.explainer_model(), text);
  e.record.set_text(text);
  e.record.set_source(source);
  if (r.has_score()) e.record.set_score(r.score());
  e.record.set_author(r.author());
  e.record.set_explainer_model(r.explainer_model());
  *e.record.mutable_created_at() =
      google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(absl::Now()));
  e.record.set_weights_sha256(weights_sha256);
  return e;
}

absl::StatusOr<v1::SetExplanationResponse> Explanations::Set(const v1::SetExplanationRequest& r) {
  SAEDICT_ASSIGN_OR_RETURN(const std::string weights, CheckFeature(r.dictionary_id(), r.feature()));
  SAEDICT_ASSIGN_OR_RETURN(storage::StoredExplanation e, NewExplanation(r, weights));
  if (!r.explanation_id().empty()) {
    if (!IsExplanationId(r.explanation_id())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "explanation_id: '", r.explanation_id(), "'; expected 16 lowercase hex digits"));
    }
    e.key.id = r.explanation_id();
    SAEDICT_ASSIGN_OR_RETURN(auto existing, store_->Get(e.key));
    if (!existing) {
      return absl::NotFoundError(absl::StrCat("explanation_id: feature ", r.feature(),
                                              " of dictionary '", r.dictionary_id(),
                                              "' has no explanation '", r.explanation_id(), "'"));
    }
  }
  SAEDICT_RETURN_IF_ERROR(store_->Write({}, {e}));
  v1::SetExplanationResponse out;
  *out.mutable_explanation() = ToApi(e);
  return out;
}

absl::StatusOr<v1::DeleteExplanationResponse> Explanations::Delete(
    const v1::DeleteExplanationRequest& r) {
  SAEDICT_RETURN_IF_ERROR(CheckFeature(r.dictionary_id(), r.feature()).status());
  if (!IsExplanationId(r.explanation_id())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "explanation_id: '", r.explanation_id(), "'; expected 16 lowercase hex digits"));
  }
  const storage::ExplanationKey key{r.dictionary_id(), r.feature(), r.explanation_id()};
  SAEDICT_ASSIGN_OR_RETURN(auto existing, store_->Get(key));
  if (!existing) {
    return absl::NotFoundError(absl::StrCat("explanation_id: feature ", r.feature(),
                                            " of dictionary '", r.dictionary_id(),
                                            "' has no explanation '", r.explanation_id(), "'"));
  }
  SAEDICT_RETURN_IF_ERROR(store_->Write({key}, {}));
  return v1::DeleteExplanationResponse();
}

absl::StatusOr<std::vector<v1::Explanation>> Explanations::ForFeature(
    const std::string& dictionary_id, uint32_t feature) {
  SAEDICT_ASSIGN_OR_RETURN(std::vector<storage::StoredExplanation> stored,
                           store_->List(dictionary_id, feature));
  std::vector<v1::Explanation> out;
  out.reserve(stored.size());
  for (const storage::StoredExplanation& e : stored) out.push_back(ToApi(e));
  std::sort(out.begin(), out.end(), FeaturePageBefore);
  return out;
}

absl::StatusOr<v1::ListExplanationsResponse> Explanations::List(
    const v1::ListExplanationsRequest& r) {
  SAEDICT_RETURN_IF_ERROR(CheckFeature(r.dictionary_id(), r.feature()).status());
  SAEDICT_ASSIGN_OR_RETURN(std::vector<v1::Explanation> all,
                           ForFeature(r.dictionary_id(), r.feature()));
  v1::ListExplanationsResponse out;
  for (v1::Explanation& e : all) *out.add_explanations() = std::move(e);
  return out;
}

absl::StatusOr<v1::SearchExplanationsResponse> Explanations::Search(
    const v1::SearchExplanationsRequest& r) {
  if (r.top_n() < 0 || r.top_n() > kMaxTopN) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_n: ", r.top_n(), "; expected 0 (default ", kDefaultTopN, ") to ", kMaxTopN));
  }
  const std::vector<std::string> terms = storage::Terms(r.query());
  if (terms.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "query: '", r.query(), "' has no words; expected letters or digits to search for"));
  }
  for (int i = 0; i < r.dictionary_ids_size(); ++i) {
    absl::Status s = registry_->Get(r.dictionary_ids(i)).status();
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat("dictionary_ids[", i, "]: ", s.message()));
  }
  const std::vector<std::string> only(r.dictionary_ids().begin(), r.dictionary_ids().end());
  const int want = r.top_n() == 0 ? kDefaultTopN : r.top_n();
  // Without a source filter only the best `want` are needed (a few more, for
  // explanations deleted between the postings scan and the record reads).
  size_t total = 0;
  SAEDICT_ASSIGN_OR_RETURN(
      const std::vector<storage::ExplanationMatch> matches,
      store_->Search(terms, only, r.source().empty() ? static_cast<size_t>(want) + 16 : SIZE_MAX,
                     &total));
  v1::SearchExplanationsResponse out;
  for (const std::string& t : terms) {
    if (std::find(out.query_terms().begin(), out.query_terms().end(), t) ==
        out.query_terms().end()) {
      out.add_query_terms(t);
    }
  }
  int64_t matching = 0;
  for (const storage::ExplanationMatch& m : matches) {
    if (r.source().empty() && out.hits_size() >= want) break;  // the count is `total`
    SAEDICT_ASSIGN_OR_RETURN(auto record, store_->Get(m.key));
    if (!record) continue;  // deleted since the search read its postings
    if (!r.source().empty() && record->source() != r.source()) continue;
    ++matching;
    if (out.hits_size() >= want) continue;
    v1::ExplanationHit* hit = out.add_hits();
    *hit->mutable_explanation() = ToApi(storage::StoredExplanation{m.key, *record});
    hit->set_score(m.score);
    hit->set_snippet(ExplanationSnippet(record->text(), m.matched_terms));
    for (const std::string& t : m.matched_terms) hit->add_matched_terms(t);
  }
  out.set_matching_explanations(r.source().empty() ? static_cast<int64_t>(total) : matching);
  return out;
}

}  // namespace saedict::service
