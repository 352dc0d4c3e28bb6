// CorpusQueries: the read side of the corpus API (GetDocument,
// GetActivations, GetFeature, TopActivations, DocumentFeatures) on top of
// CorpusStore. Examples are built with their context window: the tokens
// around the activation and the feature's value on each of them, read from
// the stored forward record of the document.
//
// Errors: INVALID_ARGUMENT (empty ids, out-of-range n / context_window /
// quantile_bins / per_bin / position), NOT_FOUND (unknown dictionary,
// feature >= d_sae, unknown document, no codes of that document for that
// dictionary), INTERNAL / UNAVAILABLE from the store.
//
// Thread safety: all methods are thread-safe (stateless over thread-safe
// members).
#ifndef SAEDICT_SERVICE_CORPUS_QUERIES_H_
#define SAEDICT_SERVICE_CORPUS_QUERIES_H_

#include "absl/status/statusor.h"
#include "saedict/v1/saedict.pb.h"
#include "service/dictionary_registry.h"
#include "storage/corpus_store.h"

namespace saedict::service {

class CorpusQueries {
 public:
  // Both must outlive this object.
  CorpusQueries(DictionaryRegistry* registry, storage::CorpusStore* store)
      : registry_(registry), store_(store) {}

  absl::StatusOr<v1::GetDocumentResponse> GetDocument(const v1::GetDocumentRequest& r) const;
  absl::StatusOr<v1::GetActivationsResponse> GetActivations(
      const v1::GetActivationsRequest& r) const;
  absl::StatusOr<v1::GetFeatureResponse> GetFeature(const v1::GetFeatureRequest& r) const;
  absl::StatusOr<v1::TopActivationsResponse> TopActivations(
      const v1::TopActivationsRequest& r) const;
  absl::StatusOr<v1::DocumentFeaturesResponse> DocumentFeatures(
      const v1::DocumentFeaturesRequest& r) const;

 private:
  // d_sae of the dictionary; NOT_FOUND when `feature` is not below it.
  absl::StatusOr<int64_t> CheckFeature(const std::string& dictionary_id, uint32_t feature) const;
  absl::StatusOr<storage::StoredCodes> CodesOf(const std::string& dictionary_id,
                                               const std::string& corpus, uint64_t doc_id) const;

  DictionaryRegistry* const registry_;
  storage::CorpusStore* const store_;
};

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_CORPUS_QUERIES_H_
