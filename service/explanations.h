// Explanations: the explanation API of the service core (SetExplanation,
// DeleteExplanation, ListExplanations, SearchExplanations and the feature
// page's explanations) over storage::ExplanationStore, which keeps the
// records and their BM25 index (tokenization: storage/explanation_terms.h).
//
// An added explanation's id is the first 16 hex digits of the SHA-256 of
// (source, author, explainer_model, text): setting or importing the same
// explanation twice updates it (its score, its time) instead of adding a
// copy. A replace (explanation_id set) keeps the id.
//
// Errors: INVALID_ARGUMENT (empty or too long text, bad score, bad id, empty
// query, top_n out of range), NOT_FOUND (unknown dictionary, feature >=
// d_sae, unknown explanation id), RESOURCE_EXHAUSTED / INTERNAL / UNAVAILABLE
// from the store.
//
// Thread safety: all methods are thread-safe.
#ifndef SAEDICT_SERVICE_EXPLANATIONS_H_
#define SAEDICT_SERVICE_EXPLANATIONS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "saedict/v1/saedict.pb.h"
#include "service/dictionary_registry.h"
#include "storage/explanation_store.h"

namespace saedict::service {

inline constexpr size_t kMaxExplanationTextBytes = 4096;
inline constexpr size_t kMaxExplanationFieldBytes = 256;  // source, author, explainer_model

// The id an added explanation gets (see above).
std::string ExplanationId(const std::string& source, const std::string& author,
                          const std::string& explainer_model, const std::string& text);

// `text` with the words whose term is in `terms` marked [[like this]],
// cut to a window of about 300 bytes around the first marked word.
std::string ExplanationSnippet(const std::string& text, const std::vector<std::string>& terms);

// The stored form of a new explanation from r's dictionary_id, feature,
// text (trimmed), source (empty: "human"), score, author and
// explainer_model, every field checked (INVALID_ARGUMENT naming it), with
// the content-derived id, created now, for the weights `weights_sha256`.
// r.explanation_id is not looked at. Shared by Set and the imports.
absl::StatusOr<storage::StoredExplanation> NewExplanation(const v1::SetExplanationRequest& r,
                                                          const std::string& weights_sha256);

class Explanations {
 public:
  // Both must outlive this object.
  Explanations(DictionaryRegistry* registry, storage::ExplanationStore* store)
      : registry_(registry), store_(store) {}

  absl::StatusOr<v1::SetExplanationResponse> Set(const v1::SetExplanationRequest& r);
  absl::StatusOr<v1::DeleteExplanationResponse> Delete(const v1::DeleteExplanationRequest& r);
  absl::StatusOr<v1::ListExplanationsResponse> List(const v1::ListExplanationsRequest& r);
  absl::StatusOr<v1::SearchExplanationsResponse> Search(const v1::SearchExplanationsRequest& r);

  // The feature's explanations in feature-page order: scored ones first,
  // best score first, then newest first.
  absl::StatusOr<std::vector<v1::Explanation>> ForFeature(const std::string& dictionary_id,
                                                          uint32_t feature);

  // The dictionary's current weights hash; NOT_FOUND when it is unknown or
  // `feature` is not below its d_sae ("<field>: ..." names the field).
  absl::StatusOr<std::string> CheckFeature(const std::string& dictionary_id, uint32_t feature,
                                           const std::string& field_prefix = "") const;

  storage::ExplanationStore* store() const { return store_; }

 private:
  DictionaryRegistry* const registry_;
  storage::ExplanationStore* const store_;
};

// The API message of a stored explanation.
v1::Explanation ToApi(const storage::StoredExplanation& e);

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_EXPLANATIONS_H_
