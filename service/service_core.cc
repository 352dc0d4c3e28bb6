#include "service/service_core.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "service/checkpoint.h"
#include "service/proto_convert.h"
#include "util/status_macros.h"
#include "wire/wire_codec.h"

namespace saedict::service {
namespace {}  // namespace

absl::StatusOr<std::shared_ptr<const engine::Encoder>> ServiceCore::EncoderFor(
    const std::string& id) const {
  if (id.empty()) return absl::InvalidArgumentError("dictionary_id: empty; expected an id");
  return registry_->GetEncoder(id);
}

ServiceCore::ServiceCore(DictionaryRegistry* registry, engine::EncodeBatcher* batcher,
                         storage::Store* store, std::filesystem::path data_dir,
                         SimilarityOptions similarity, CoreLimits limits)
    : registry_(registry),
      batcher_(batcher),
      store_(store),
      data_dir_(std::move(data_dir)),
      limits_(limits),
      queries_(registry, store->corpus()),
      similarity_(std::make_unique<SimilarityIndex>(
          registry, store->corpus(),
          [&] {
            if (similarity.index_dir.empty()) similarity.index_dir = data_dir_ / "index";
            return similarity;
          }())),
      families_(registry, store->corpus(), similarity_.get()),
      comparisons_(registry, store->corpus(), batcher),
      explanations_(registry, store->explanations()),
      export_(registry, store->corpus()) {
  for (const v1::DictionaryInfo& info : registry_->List()) similarity_->Schedule(info.id());
}

absl::StatusOr<v1::LoadDictionaryResponse> ServiceCore::LoadDictionary(
    const v1::LoadDictionaryRequest& r) {
  v1::LoadDictionaryResponse out;
  SAEDICT_ASSIGN_OR_RETURN(*out.mutable_dictionary(), registry_->Load(r));
  Loaded(out.mutable_dictionary());
  return out;
}

void ServiceCore::Loaded(v1::DictionaryInfo* info) {
  families_.CorpusChanged();  // a replace dropped the dictionary's stored latents
  similarity_->Schedule(info->id(), /*force=*/true);
  *info->mutable_index() = similarity_->Status(info->id());
}

std::unique_ptr<DictionaryUpload> ServiceCore::StartUpload() {
  return std::make_unique<DictionaryUpload>(
      registry_, UploadOptions{data_dir_ / "uploads", limits_.max_upload_bytes});
}

absl::StatusOr<v1::UploadDictionaryResponse> ServiceCore::FinishUpload(DictionaryUpload& upload) {
  SAEDICT_ASSIGN_OR_RETURN(v1::UploadDictionaryResponse out, upload.Finish());
  Loaded(out.mutable_dictionary());
  return out;
}

absl::StatusOr<v1::ListDictionariesResponse> ServiceCore::ListDictionaries(
    const v1::ListDictionariesRequest&) {
  v1::ListDictionariesResponse out;
  for (v1::DictionaryInfo& info : registry_->List()) {
    *info.mutable_index() = similarity_->Status(info.id());
    *out.add_dictionaries() = std::move(info);
  }
  return out;
}

absl::StatusOr<v1::GetDictionaryResponse> ServiceCore::GetDictionary(
    const v1::GetDictionaryRequest& r) {
  v1::GetDictionaryResponse out;
  SAEDICT_ASSIGN_OR_RETURN(*out.mutable_dictionary(), registry_->Get(r.id()));
  *out.mutable_dictionary()->mutable_index() = similarity_->Status(r.id());
  return out;
}

absl::StatusOr<v1::DeleteDictionaryResponse> ServiceCore::DeleteDictionary(
    const v1::DeleteDictionaryRequest& r) {
  // Forget first: a builder still computing the old neighbours stops before
  // the delete removes them (and cannot write them back after it).
  similarity_->Forget(r.id());
  if (absl::Status deleted = registry_->Delete(r.id()); !deleted.ok()) {
    similarity_->Schedule(r.id());  // still loaded (no-op when it never was): index it again
    return deleted;
  }
  families_.CorpusChanged();
  return v1::DeleteDictionaryResponse();
}

absl::StatusOr<v1::GetFeatureResponse> ServiceCore::GetFeature(const v1::GetFeatureRequest& r) {
  if (r.neighbours() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("neighbours: ", r.neighbours(), "; expected 0 (default 10) or more"));
  }
  SAEDICT_ASSIGN_OR_RETURN(v1::GetFeatureResponse out, queries_.GetFeature(r));
  SAEDICT_ASSIGN_OR_RETURN(std::vector<v1::Explanation> explanations,
                           explanations_.ForFeature(r.dictionary_id(), r.feature()));
  for (v1::Explanation& e : explanations) *out.add_explanations() = std::move(e);
  const v1::IndexStatus status = similarity_->Status(r.dictionary_id());
  out.set_neighbours_state(status.neighbours_state());
  if (status.neighbours_state() != v1::INDEX_STATE_READY) return out;
  absl::StatusOr<records::v1::NeighboursRecord> stored =
      similarity_->StoredNeighbours(r.dictionary_id(), r.feature());
  if (absl::IsFailedPrecondition(stored.status())) {
    out.set_neighbours_state(similarity_->Status(r.dictionary_id()).neighbours_state());
    return out;  // replaced meanwhile: the new neighbours are not ready
  }
  SAEDICT_RETURN_IF_ERROR(stored.status());
  const int want = r.neighbours() == 0 ? 10 : r.neighbours();
  for (int k = 0; k < stored->features_size() && k < want; ++k) {
    v1::Neighbour* n = out.add_neighbours();
    n->set_dictionary_id(r.dictionary_id());
    n->set_feature(stored->features(k));
    n->set_cosine(stored->cosines(k));
  }
  if (!r.skip_family()) {
    v1::FeatureFamilyRequest family;
    family.set_dictionary_id(r.dictionary_id());
    family.set_feature(r.feature());
    // A feature page does not wait for a recount per ingest batch.
    absl::StatusOr<v1::FeatureFamilyResponse> answer = families_.RecentFamily(family);
    if (answer.ok()) {
      *out.mutable_family() = *std::move(answer);
    } else if (!absl::IsFailedPrecondition(answer.status())) {
      return answer.status();
    }
  }
  return out;
}

// The encoder, options and activations of an Encode or Intervene request.
template <typename Request>
absl::StatusOr<ServiceCore::EncodeInput> ServiceCore::ParseEncodeInput(const Request& r) const {
  EncodeInput in;
  SAEDICT_ASSIGN_OR_RETURN(in.encoder, EncoderFor(r.dictionary_id()));
  const engine::DictionaryConfig& config = in.encoder->dictionary().config;
  SAEDICT_ASSIGN_OR_RETURN(in.options, ToEngine(r.options(), *in.encoder));
  SAEDICT_ASSIGN_OR_RETURN(in.x, wire::DecodeMatrix(r.activations(), config.d_in, "activations"));
  if (limits_.max_request_tokens > 0 && in.x.rows > limits_.max_request_tokens) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "activations: ", in.x.rows, " rows > ", limits_.max_request_tokens,
        " per request (the server's --max_request_tokens); split the rows over several "
        "requests or an EncodeStream"));
  }
  return in;
}

absl::StatusOr<v1::EncodeResponse> ServiceCore::Encode(const v1::EncodeRequest& r,
                                                       absl::Time deadline) {
  SAEDICT_ASSIGN_OR_RETURN(EncodeInput in, ParseEncodeInput(r));
  const std::shared_ptr<const engine::Encoder>& encoder = in.encoder;
  const engine::EncodeOptions& options = in.options;
  const wire::DenseRows& x = in.x;
  SAEDICT_ASSIGN_OR_RETURN(engine::EncodeResult result,
                           batcher_->Encode(encoder, x.values, x.rows, options, deadline));
  v1::EncodeResponse out;
  *out.mutable_codes() = wire::EncodeCodes(result.codes);
  out.set_weights_sha256(encoder->content_sha256());
  out.set_compute_mode(ToProto(result.compute_mode));
  if (options.return_reconstruction) {
    *out.mutable_reconstruction() = wire::EncodeTensor(
        result.reconstruction, {x.rows, encoder->dictionary().config.decoder_dim()});
  }
  if (options.return_row_error) {
    *out.mutable_row_error() = wire::EncodeTensor(result.row_squared_error, {x.rows});
  }
  return out;
}

absl::StatusOr<v1::DecodeResponse> ServiceCore::Decode(const v1::DecodeRequest& r) {
  SAEDICT_ASSIGN_OR_RETURN(std::shared_ptr<const engine::Encoder> encoder,
                           EncoderFor(r.dictionary_id()));
  const engine::DictionaryConfig& config = encoder->dictionary().config;
  SAEDICT_ASSIGN_OR_RETURN(engine::SparseCodes codes, wire::DecodeCodes(r.codes(), config.d_sae));
  SAEDICT_ASSIGN_OR_RETURN(std::vector<float> x, encoder->Decode(codes));
  v1::DecodeResponse out;
  *out.mutable_activations() = wire::EncodeTensor(x, {codes.num_rows, config.decoder_dim()});
  return out;
}

absl::StatusOr<v1::InterveneResponse> ServiceCore::Intervene(const v1::InterveneRequest& r,
                                                             absl::Time deadline) {
  SAEDICT_ASSIGN_OR_RETURN(EncodeInput in, ParseEncodeInput(r));
  const std::shared_ptr<const engine::Encoder>& encoder = in.encoder;
  const engine::EncodeOptions& options = in.options;
  const wire::DenseRows& x = in.x;
  std::vector<engine::FeatureEdit> edits;
  for (int i = 0; i < r.edits_size(); ++i) {
    SAEDICT_ASSIGN_OR_RETURN(edits.emplace_back(), ToEngine(r.edits(i), i));
  }
  // The encode goes through the batcher like Encode's (so onto the workers
  // when there are some); the edits and the decode of f' - f run here.
  SAEDICT_RETURN_IF_ERROR(encoder->ValidateEdits(x.rows, edits));
  engine::EncodeOptions codes_only = options;
  codes_only.return_reconstruction = false;
  codes_only.return_row_error = false;
  SAEDICT_ASSIGN_OR_RETURN(engine::EncodeResult encoded,
                           batcher_->Encode(encoder, x.values, x.rows, codes_only, deadline));
  SAEDICT_ASSIGN_OR_RETURN(engine::InterveneResult result,
                           encoder->ApplyEdits(x.values, x.rows, encoded.codes, edits));
  result.compute_mode = encoded.compute_mode;
  v1::InterveneResponse out;
  *out.mutable_activations() = wire::EncodeTensor(
      result.activations, {x.rows, encoder->dictionary().config.decoder_dim()});
  *out.mutable_codes() = wire::EncodeCodes(result.edited_codes);
  out.set_weights_sha256(encoder->content_sha256());
  out.set_compute_mode(ToProto(result.compute_mode));
  return out;
}

std::unique_ptr<IngestSession> ServiceCore::StartIngest(IngestSession::AckSink sink,
                                                        absl::Time deadline) {
  IngestSessionOptions options;
  options.batcher = batcher_;
  options.deadline = deadline;
  options.max_request_tokens = limits_.max_request_tokens;
  // Every stored batch changes the corpus the families were counted on.
  auto noting_sink = [this, sink = std::move(sink)](const v1::IngestAck& ack) {
    families_.CorpusChanged();
    return sink(ack);
  };
  return std::make_unique<IngestSession>(registry_, store_->corpus(), std::move(noting_sink),
                                         options);
}

std::unique_ptr<EncodeStreamSession> ServiceCore::StartEncodeStream(absl::Time deadline) {
  return std::make_unique<EncodeStreamSession>(this, deadline);
}

absl::StatusOr<v1::EncodeResponse> EncodeStreamSession::Next(v1::EncodeRequest request) {
  const int64_t index = index_++;
  if (request.dictionary_id().empty()) {
    request.set_dictionary_id(dictionary_id_);
  } else {
    dictionary_id_ = request.dictionary_id();
  }
  absl::StatusOr<v1::EncodeResponse> response = core_->Encode(request, deadline_);
  if (!response.ok()) {
    return absl::Status(response.status().code(),
                        absl::StrCat("stream message ", index, ": ", response.status().message()));
  }
  return response;
}

absl::StatusOr<v1::CreateCheckpointResponse> ServiceCore::CreateCheckpoint(
    const v1::CreateCheckpointRequest& r) {
  return service::CreateCheckpoint(data_dir_, store_, r.name());
}

}  // namespace saedict::service
