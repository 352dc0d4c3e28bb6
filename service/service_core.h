// ServiceCore: the saedict.v1 operations on plain protobuf messages, with no
// gRPC inside, so the gRPC front end and the HTTP gateway (gateway/) stay thin
// adapters: decode nothing, call the core, convert the status.
//
// Encode requests and Intervene's encode step go through the dynamic batcher
// (and so onto the workers when saedictd has some); Intervene's edits and
// Decode run on the encoder here (sparse work, O(nnz · d_in) per row). The corpus reads are CorpusQueries, an Ingest stream
// is an IngestSession. Error codes are those of DictionaryRegistry,
// CorpusQueries and IngestSession plus INVALID_ARGUMENT for tensors/options
// and RESOURCE_EXHAUSTED when the encode queue is full.
//
// Thread safety: every method is thread-safe.
#ifndef SAEDICT_SERVICE_SERVICE_CORE_H_
#define SAEDICT_SERVICE_SERVICE_CORE_H_

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/batcher.h"
#include "saedict/v1/saedict.pb.h"
#include "service/comparisons.h"
#include "service/corpus_queries.h"
#include "service/dictionary_registry.h"
#include "service/dictionary_upload.h"
#include "service/explanation_import.h"
#include "service/explanations.h"
#include "service/latent_export.h"
#include "service/family_queries.h"
#include "service/similarity_index.h"
#include "service/ingest_session.h"
#include "storage/store.h"
#include "wire/wire_codec.h"

namespace saedict::service {

class ServiceCore;

// The per-stream state of one EncodeStream: the dictionary id carried over
// from earlier messages (a message may leave it empty after the first) and
// the message numbering of errors ("stream message N: ..."). Use from one
// thread.
class EncodeStreamSession {
 public:
  EncodeStreamSession(ServiceCore* core, absl::Time deadline) : core_(core), deadline_(deadline) {}
  // The answer to the next message; INVALID_ARGUMENT when the first message
  // names no dictionary, else ServiceCore::Encode's errors, prefixed.
  absl::StatusOr<v1::EncodeResponse> Next(v1::EncodeRequest request);

 private:
  ServiceCore* const core_;
  const absl::Time deadline_;
  std::string dictionary_id_;
  int64_t index_ = 0;
};

// Per-request limits of the core (saedictd flags); 0: no limit.
struct CoreLimits {
  // Activation rows of one Encode / EncodeStream message / Intervene request
  // and tokens of one Ingest message: more fail with RESOURCE_EXHAUSTED.
  int64_t max_request_tokens = 0;
  // All files of one UploadDictionary stream together.
  uint64_t max_upload_bytes = 8ull << 30;
};

class ServiceCore {
 public:
  // registry, batcher and store must outlive the core; data_dir is where
  // checkpoints go (<data_dir>/backups) and indexes (<data_dir>/index).
  // Every dictionary of the registry is queued for its similarity index.
  ServiceCore(DictionaryRegistry* registry, engine::EncodeBatcher* batcher, storage::Store* store,
              std::filesystem::path data_dir, SimilarityOptions similarity = {},
              CoreLimits limits = {});

  absl::StatusOr<v1::LoadDictionaryResponse> LoadDictionary(const v1::LoadDictionaryRequest& r);
  // One UploadDictionary stream: Add() its messages to the upload, then
  // FinishUpload() it (which loads it like LoadDictionary and queues its
  // index). Uploads are written under <data_dir>/uploads.
  std::unique_ptr<DictionaryUpload> StartUpload();
  absl::StatusOr<v1::UploadDictionaryResponse> FinishUpload(DictionaryUpload& upload);
  absl::StatusOr<v1::ListDictionariesResponse> ListDictionaries(
      const v1::ListDictionariesRequest& r);
  absl::StatusOr<v1::GetDictionaryResponse> GetDictionary(const v1::GetDictionaryRequest& r);
  absl::StatusOr<v1::DeleteDictionaryResponse> DeleteDictionary(
      const v1::DeleteDictionaryRequest& r);
  // `deadline`: the caller's; a request still queued in the batcher when it
  // passes is dropped with DEADLINE_EXCEEDED.
  absl::StatusOr<v1::EncodeResponse> Encode(const v1::EncodeRequest& r,
                                            absl::Time deadline = absl::InfiniteFuture());
  absl::StatusOr<v1::DecodeResponse> Decode(const v1::DecodeRequest& r);
  absl::StatusOr<v1::InterveneResponse> Intervene(const v1::InterveneRequest& r,
                                                  absl::Time deadline = absl::InfiniteFuture());

  // One EncodeStream: feed it the request messages in order.
  std::unique_ptr<EncodeStreamSession> StartEncodeStream(
      absl::Time deadline = absl::InfiniteFuture());

  // One Ingest stream: feed it the request messages, then Finish() it. Its
  // encodes go through the batcher (queue bound, deadline).
  std::unique_ptr<IngestSession> StartIngest(IngestSession::AckSink sink,
                                             absl::Time deadline = absl::InfiniteFuture());
  absl::StatusOr<v1::GetDocumentResponse> GetDocument(const v1::GetDocumentRequest& r) const {
    return queries_.GetDocument(r);
  }
  absl::StatusOr<v1::GetActivationsResponse> GetActivations(
      const v1::GetActivationsRequest& r) const {
    return queries_.GetActivations(r);
  }
  // Statistics and top examples (CorpusQueries), the explanations, the
  // precomputed neighbours and, unless skip_family, the family.
  absl::StatusOr<v1::GetFeatureResponse> GetFeature(const v1::GetFeatureRequest& r);
  absl::StatusOr<v1::TopActivationsResponse> TopActivations(
      const v1::TopActivationsRequest& r) const {
    return queries_.TopActivations(r);
  }
  absl::StatusOr<v1::DocumentFeaturesResponse> DocumentFeatures(
      const v1::DocumentFeaturesRequest& r) const {
    return queries_.DocumentFeatures(r);
  }
  absl::StatusOr<v1::CreateCheckpointResponse> CreateCheckpoint(
      const v1::CreateCheckpointRequest& r);

  absl::StatusOr<v1::SearchSimilarResponse> SearchSimilar(const v1::SearchSimilarRequest& r) {
    return similarity_->SearchSimilar(r);
  }
  absl::StatusOr<v1::FeatureFamilyResponse> FeatureFamily(const v1::FeatureFamilyRequest& r) {
    return families_.FeatureFamily(r);
  }
  absl::StatusOr<v1::ListFamiliesResponse> ListFamilies(const v1::ListFamiliesRequest& r) {
    return families_.ListFamilies(r);
  }

  // Comparison and evaluation (comparisons.h).
  absl::Status CompareDictionaries(const v1::CompareDictionariesRequest& r,
                                   const Comparisons::CompareSink& sink,
                                   const std::function<bool()>& cancelled = nullptr) const {
    return comparisons_.CompareDictionaries(r, sink, cancelled);
  }
  std::unique_ptr<EvaluateSession> StartEvaluate(absl::Time deadline = absl::InfiniteFuture()) {
    return comparisons_.StartEvaluate(deadline);
  }

  // Explanations (explanations.h): several per feature, BM25 search, and
  // bulk import (one ExplanationImport per ImportExplanations stream).
  absl::StatusOr<v1::SetExplanationResponse> SetExplanation(const v1::SetExplanationRequest& r) {
    return explanations_.Set(r);
  }
  absl::StatusOr<v1::DeleteExplanationResponse> DeleteExplanation(
      const v1::DeleteExplanationRequest& r) {
    return explanations_.Delete(r);
  }
  absl::StatusOr<v1::ListExplanationsResponse> ListExplanations(
      const v1::ListExplanationsRequest& r) {
    return explanations_.List(r);
  }
  absl::StatusOr<v1::SearchExplanationsResponse> SearchExplanations(
      const v1::SearchExplanationsRequest& r) {
    return explanations_.Search(r);
  }
  std::unique_ptr<ExplanationImport> StartImportExplanations() {
    return std::make_unique<ExplanationImport>(&explanations_);
  }

  // ExportLatents (latent_export.h): the stored latents of a corpus in
  // delphi's latent-cache order.
  absl::Status ExportLatents(const v1::ExportLatentsRequest& r, const LatentExport::Sink& sink,
                             const std::function<bool()>& cancelled = nullptr) const {
    return export_.Export(r, sink, cancelled);
  }

  // The indexes (their state, WaitUntilReady for tools and tests).
  SimilarityIndex& similarity() { return *similarity_; }

 private:
  absl::StatusOr<std::shared_ptr<const engine::Encoder>> EncoderFor(const std::string& id) const;
  // After a load or upload published `info`: families recomputed, the
  // index (re)built, info->index set.
  void Loaded(v1::DictionaryInfo* info);
  struct EncodeInput {
    std::shared_ptr<const engine::Encoder> encoder;
    engine::EncodeOptions options;
    wire::DenseRows x;
  };
  template <typename Request>  // v1::EncodeRequest or v1::InterveneRequest
  absl::StatusOr<EncodeInput> ParseEncodeInput(const Request& r) const;

  DictionaryRegistry* const registry_;
  engine::EncodeBatcher* const batcher_;
  storage::Store* const store_;
  const std::filesystem::path data_dir_;
  const CoreLimits limits_;
  const CorpusQueries queries_;
  std::unique_ptr<SimilarityIndex> similarity_;
  FamilyQueries families_;
  const Comparisons comparisons_;
  Explanations explanations_;
  const LatentExport export_;
};

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_SERVICE_CORE_H_
