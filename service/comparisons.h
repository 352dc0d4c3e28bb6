// Comparisons: CompareDictionaries and Evaluate of saedict.v1 on plain
// protobuf messages (no gRPC), over the registry's dictionaries, the corpus
// store and the encode batcher, with the algorithms of compare/.
//
// CompareDictionaries streams through a sink: progress messages while it
// runs, one summary, then (unless skip_matches) A's and B's per-feature
// matches in batches. Errors: INVALID_ARGUMENT for a missing id, an
// unspecified method, a threshold outside [-1, 1], a decoder comparison of
// different d_in (the message says to use the activation method), an
// activation comparison without a corpus; NOT_FOUND for an unknown
// dictionary; FAILED_PRECONDITION when the two dictionaries share no
// ingested tokens on the corpus or a shared document has other token counts;
// CANCELLED when the client goes away.
//
// An Evaluate stream is an EvaluateSession: Add() each message, Finish().
// Sent activations are encoded through the batcher (exact F32, batch
// invariant) and decoded; a stored corpus has codes only, so its report has
// the sparsity, density and weight-based metrics and lists the
// reconstruction and shrinkage metrics as absent.
//
// Thread safety: Comparisons' methods are thread-safe; an EvaluateSession
// is used from one thread.
#ifndef SAEDICT_SERVICE_COMPARISONS_H_
#define SAEDICT_SERVICE_COMPARISONS_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "compare/activation_matching.h"
#include "compare/evaluation.h"
#include "engine/batcher.h"
#include "saedict/v1/saedict.pb.h"
#include "service/dictionary_registry.h"
#include "storage/corpus_store.h"

namespace saedict::service {

// The tokens of every document of `corpus` that both dictionaries hold codes
// for (CorpusStore::ScanCodePairs, one snapshot per pass), row by row, as
// the activation comparison reads them; FAILED_PRECONDITION when a shared
// document has other token counts under the two. *documents (may be null)
// counts the documents of the last pass. The store must outlive the source.
compare::TokenPairSource StoredTokenPairs(storage::CorpusStore* corpus, std::string dictionary_a,
                                          std::string dictionary_b, std::string corpus_name,
                                          int64_t* documents = nullptr);

class EvaluateSession {
 public:
  EvaluateSession(DictionaryRegistry* registry, storage::CorpusStore* corpus,
                  engine::EncodeBatcher* batcher, absl::Time deadline)
      : registry_(registry), corpus_(corpus), batcher_(batcher), deadline_(deadline) {}

  // One request message (numbered in errors: "evaluate message N: ...").
  absl::Status Add(const v1::EvaluateRequest& r);
  // The report; INVALID_ARGUMENT when no message or no rows came.
  absl::StatusOr<v1::EvaluateResponse> Finish(const std::function<bool()>& cancelled = nullptr);

 private:
  absl::Status Start(const v1::EvaluateRequest& r);

  DictionaryRegistry* const registry_;
  storage::CorpusStore* const corpus_;
  engine::EncodeBatcher* const batcher_;
  const absl::Time deadline_;
  int64_t messages_ = 0;
  std::string dictionary_id_, corpus_name_, eval_id_;
  std::shared_ptr<const engine::Encoder> encoder_;
  compare::EvaluationOptions options_;
  std::optional<compare::Evaluation> evaluation_;
};

class Comparisons {
 public:
  Comparisons(DictionaryRegistry* registry, storage::CorpusStore* corpus,
              engine::EncodeBatcher* batcher)
      : registry_(registry), corpus_(corpus), batcher_(batcher) {}

  // sink returns false when the client is gone (the run stops, CANCELLED).
  using CompareSink = std::function<bool(const v1::CompareDictionariesResponse&)>;
  absl::Status CompareDictionaries(const v1::CompareDictionariesRequest& r, const CompareSink& sink,
                                   const std::function<bool()>& cancelled = nullptr) const;

  std::unique_ptr<EvaluateSession> StartEvaluate(absl::Time deadline) const {
    return std::make_unique<EvaluateSession>(registry_, corpus_, batcher_, deadline);
  }

 private:
  DictionaryRegistry* const registry_;
  storage::CorpusStore* const corpus_;
  engine::EncodeBatcher* const batcher_;
};

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_COMPARISONS_H_
