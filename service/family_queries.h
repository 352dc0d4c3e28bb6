// FamilyQueries: FeatureFamily and ListFamilies (DESIGN.md §6) on top of
// the precomputed decoder neighbours (SimilarityIndex) and the stored
// latents (CorpusStore::ScanCodes). The algorithm is index/families.h; this
// layer resolves the request's thresholds, counts co-occurrence over every
// stored token of the dictionary, caches the forest per (dictionary,
// thresholds), and turns it into answers.
//
// Never silently stale: FeatureFamily and ListFamilies reuse a cached forest
// only while the dictionary's weights, its neighbours and the stored corpus
// are unchanged (CorpusChanged() is called by the core after every ingest
// batch, load and delete); every answer carries its FamilyProvenance (when,
// on how many tokens and documents, with which thresholds). RecentFamily
// (GetFeature's family) may answer from the forest of an earlier corpus —
// provenance.stale says so — and recounts in the background, so feature
// pages do not wait for a corpus scan per ingest batch.
//
// Errors: INVALID_ARGUMENT (threshold out of range, bad page_size or
// page_token), NOT_FOUND (unknown dictionary or feature >= d_sae),
// FAILED_PRECONDITION (neighbours not READY yet, naming their state).
//
// Thread safety: all methods are thread-safe; one computation per
// (dictionary, thresholds) runs at a time, concurrent askers wait for it.
#ifndef SAEDICT_SERVICE_FAMILY_QUERIES_H_
#define SAEDICT_SERVICE_FAMILY_QUERIES_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "index/families.h"
#include "saedict/v1/saedict.pb.h"
#include "service/dictionary_registry.h"
#include "service/similarity_index.h"
#include "storage/corpus_store.h"

namespace saedict::service {

class FamilyQueries {
 public:
  // All three must outlive this object.
  FamilyQueries(DictionaryRegistry* registry, storage::CorpusStore* store,
                SimilarityIndex* similarity)
      : registry_(registry), store_(store), similarity_(similarity) {}

  ~FamilyQueries();
  absl::StatusOr<v1::FeatureFamilyResponse> FeatureFamily(const v1::FeatureFamilyRequest& r);
  // As FeatureFamily, but a forest of an earlier corpus is good enough
  // (provenance.stale), recounted in the background; computes (and waits)
  // only when there is none yet for these weights.
  absl::StatusOr<v1::FeatureFamilyResponse> RecentFamily(const v1::FeatureFamilyRequest& r);
  absl::StatusOr<v1::ListFamiliesResponse> ListFamilies(const v1::ListFamiliesRequest& r);

  // The stored corpus changed: cached forests are recomputed on next use.
  void CorpusChanged() { corpus_generation_.fetch_add(1); }

 private:
  struct Computed {
    index::FamilyOptions options;
    std::unique_ptr<index::CooccurrenceCounter> counts;
    index::FamilyForest forest;
    v1::FamilyProvenance provenance;
    std::string weights_sha256;
    uint64_t corpus_generation = 0;
  };
  using CacheKey = std::tuple<std::string, double, double, int64_t>;

  absl::StatusOr<std::shared_ptr<const Computed>> Families(const std::string& id,
                                                           const v1::FamilyOptions& options,
                                                           bool allow_stale = false);
  absl::StatusOr<v1::FeatureFamilyResponse> Answer(const v1::FeatureFamilyRequest& r,
                                                   bool allow_stale);
  // Starts a background recount of (id, options) unless one runs.
  void RefreshInBackground(const std::string& id, const v1::FamilyOptions& options);
  absl::StatusOr<std::shared_ptr<const Computed>> Compute(const std::string& id,
                                                          const index::FamilyOptions& options,
                                                          const std::string& sha,
                                                          uint64_t generation);

  DictionaryRegistry* const registry_;
  storage::CorpusStore* const store_;
  SimilarityIndex* const similarity_;
  std::atomic<uint64_t> corpus_generation_{0};
  absl::Mutex compute_mu_;  // one computation at a time (they scan the corpus)
  absl::Mutex cache_mu_;
  std::map<CacheKey, std::shared_ptr<const Computed>> cache_ ABSL_GUARDED_BY(cache_mu_);
  absl::Mutex refresh_mu_;
  std::thread refresher_ ABSL_GUARDED_BY(refresh_mu_);
  std::atomic<bool> refreshing_{false};
};

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_FAMILY_QUERIES_H_
