// SimilarityIndex: the per-dictionary FAISS indexes of the running server,
// the background builder that makes them, and the precomputed neighbours.
//
// After a dictionary is loaded (or restored at start-up) Schedule(id)
// queues it; one builder thread then, per dictionary:
//   1. reads <index_dir>/<id>.decoder.{faiss,manifest} when it exists and
//      names the same weights SHA-256, factory and shape (checksum checked),
//      else builds the index from the weights and writes it there;
//   2. keeps the stored neighbours when their manifest names the same
//      weights and N, else recomputes every feature's top-N decoder
//      neighbours (index/neighbours.h) and stores them block by block in
//      RocksDB (CorpusStore::PutNeighbours), then the manifest.
// Status(id) reports each stage (QUEUED, BUILDING with progress, READY,
// FAILED with the error); searches before READY get FAILED_PRECONDITION
// naming the state, never an answer from other weights. The encoder index
// is built on first demand the same way (its searches answer
// FAILED_PRECONDITION until it is ready). A replace queues a rebuild and
// cancels the old one; a delete forgets the entry and removes its files.
//
// Thread safety: all methods are thread-safe; searches run concurrently
// against immutable indexes (shared_ptr), builds replace them under the lock.
#ifndef SAEDICT_SERVICE_SIMILARITY_INDEX_H_
#define SAEDICT_SERVICE_SIMILARITY_INDEX_H_

#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "index/feature_index.h"
#include "saedict/v1/saedict.pb.h"
#include "service/dictionary_registry.h"
#include "storage/corpus_store.h"

namespace saedict::service {

struct SimilarityOptions {
  std::filesystem::path index_dir;  // <data_dir>/index
  index::IndexConfig config;
  int neighbours_per_feature = 32;
};

// One index (or the neighbours) of one dictionary, for metrics.
struct IndexSize {
  std::string dictionary;
  std::string kind;  // "decoder", "encoder" or "neighbours"
  v1::IndexState state = v1::INDEX_STATE_UNSPECIFIED;
  int64_t vectors = 0;       // directions in the index (features with neighbours)
  int64_t memory_bytes = 0;  // the FAISS index in memory (0 for neighbours)
  double build_seconds = 0;  // the last build's (or load's) wall time
};

class SimilarityIndex {
 public:
  // registry and store must outlive this object. Starts the builder thread.
  SimilarityIndex(DictionaryRegistry* registry, storage::CorpusStore* store,
                  SimilarityOptions options);
  ~SimilarityIndex();  // cancels the running build, joins the builder

  // Queues building the decoder index (and neighbours) of `id`'s current
  // weights; a no-op when they are already queued, built or building
  // (force: start over anyway, as after a load that replaced the
  // dictionary and dropped its stored neighbours).
  void Schedule(const std::string& id, bool force = false);
  // Drops the entry of a deleted dictionary and its index files.
  void Forget(const std::string& id);

  // The state of `id`'s decoder index and neighbours (UNSPECIFIED when never
  // scheduled).
  v1::IndexStatus Status(const std::string& id) const;
  // Every scheduled dictionary's decoder index, encoder index and neighbours.
  std::vector<IndexSize> Sizes() const;
  // Blocks until the decoder index and the neighbours of `id` are READY
  // (OK) or FAILED (its error), or `timeout` passes (DEADLINE_EXCEEDED).
  absl::Status WaitUntilReady(const std::string& id, absl::Duration timeout) const;

  absl::StatusOr<v1::SearchSimilarResponse> SearchSimilar(const v1::SearchSimilarRequest& r);

  // The stored neighbours of (id, feature): FAILED_PRECONDITION naming the
  // state until they are READY; NOT_FOUND for an unknown dictionary/feature.
  absl::StatusOr<records::v1::NeighboursRecord> StoredNeighbours(const std::string& id,
                                                                 uint32_t feature) const;
  // The weights hash the READY neighbours of `id` belong to; FAILED_PRECONDITION otherwise.
  absl::StatusOr<std::string> NeighboursReadyFor(const std::string& id) const;

 private:
  struct Stage {
    v1::IndexState state = v1::INDEX_STATE_UNSPECIFIED;
    double progress = 0;
    std::string error;
    double seconds = 0;
  };
  struct Entry {
    std::string weights_sha256;
    uint64_t generation = 0;  // bumped by every (re)schedule and Forget
    Stage decoder, encoder, neighbours;
    bool loaded_from_disk = false;
    int64_t neighbours_done = 0;
    std::shared_ptr<const index::FeatureIndex> decoder_index, encoder_index;
  };
  struct Job {
    std::string id;
    uint64_t generation = 0;
    index::DirectionKind kind = index::DirectionKind::kDecoder;
  };

  void BuilderLoop();
  void RunJob(const Job& job);
  // Builds or loads one index; OK with the index or the error for FAILED.
  absl::StatusOr<std::shared_ptr<const index::FeatureIndex>> MakeIndex(
      const Job& job, std::shared_ptr<const engine::Encoder> encoder, bool* loaded_from_disk);
  // Whether the store holds a neighbours record of these weights for every
  // feature (what a matching manifest promises).
  absl::StatusOr<bool> NeighboursComplete(const std::string& id, const std::string& sha,
                                          int64_t features) const;
  absl::Status MakeNeighbours(const Job& job, const index::FeatureIndex& decoder);
  bool Current(const Job& job) const;  // the job's generation is still the entry's
  Stage* StageOf(Entry& entry, index::DirectionKind kind);
  std::filesystem::path IndexPrefix(const std::string& id, index::DirectionKind kind) const;
  // The READY index of `id` for `kind`, or FAILED_PRECONDITION naming the state
  // (an encoder index is queued by the first call).
  absl::StatusOr<std::shared_ptr<const index::FeatureIndex>> ReadyIndex(const std::string& id,
                                                                        index::DirectionKind kind);

  DictionaryRegistry* const registry_;
  storage::CorpusStore* const store_;
  const SimilarityOptions options_;

  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::deque<Job> jobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread builder_;
};

// "QUEUED", "BUILDING (42%)", "FAILED: ..." — for messages.
std::string DescribeIndexState(v1::IndexState state, double progress, const std::string& error);

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_SIMILARITY_INDEX_H_
