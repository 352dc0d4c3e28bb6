#include "server/grpc_service.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/grpc_status.h"

namespace saedict::server {
namespace {

// The call's deadline as absl::Time (InfiniteFuture when the client set none).
absl::Time DeadlineOf(const grpc::ServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

// Runs a core method and moves its result into the gRPC response.
template <typename Response, typename Call>
grpc::Status Unary(grpc::ServerContext* context, Response* response, Call call) {
  if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  absl::StatusOr<Response> result = call();
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status SaedictGrpcService::LoadDictionary(grpc::ServerContext* c,
                                                const v1::LoadDictionaryRequest* req,
                                                v1::LoadDictionaryResponse* resp) {
  return Unary(c, resp, [&] { return core_->LoadDictionary(*req); });
}

grpc::Status SaedictGrpcService::ListDictionaries(grpc::ServerContext* c,
                                                  const v1::ListDictionariesRequest* req,
                                                  v1::ListDictionariesResponse* resp) {
  return Unary(c, resp, [&] { return core_->ListDictionaries(*req); });
}

grpc::Status SaedictGrpcService::GetDictionary(grpc::ServerContext* c,
                                               const v1::GetDictionaryRequest* req,
                                               v1::GetDictionaryResponse* resp) {
  return Unary(c, resp, [&] { return core_->GetDictionary(*req); });
}

grpc::Status SaedictGrpcService::DeleteDictionary(grpc::ServerContext* c,
                                                  const v1::DeleteDictionaryRequest* req,
                                                  v1::DeleteDictionaryResponse* resp) {
  return Unary(c, resp, [&] { return core_->DeleteDictionary(*req); });
}

grpc::Status SaedictGrpcService::Encode(grpc::ServerContext* c, const v1::EncodeRequest* req,
                                        v1::EncodeResponse* resp) {
  return Unary(c, resp, [&] { return core_->Encode(*req, DeadlineOf(c)); });
}

grpc::Status SaedictGrpcService::Decode(grpc::ServerContext* c, const v1::DecodeRequest* req,
                                        v1::DecodeResponse* resp) {
  return Unary(c, resp, [&] { return core_->Decode(*req); });
}

grpc::Status SaedictGrpcService::Intervene(grpc::ServerContext* c, const v1::InterveneRequest* req,
                                           v1::InterveneResponse* resp) {
  return Unary(c, resp, [&] { return core_->Intervene(*req); });
}

grpc::Status SaedictGrpcService::EncodeStream(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::EncodeResponse, v1::EncodeRequest>* stream) {
  std::unique_ptr<service::EncodeStreamSession> session =
      core_->StartEncodeStream(DeadlineOf(context));
  v1::EncodeRequest request;
  while (stream->Read(&request)) {
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    absl::StatusOr<v1::EncodeResponse> response = session->Next(std::move(request));
    request.Clear();
    if (!response.ok()) return ToGrpcStatus(response.status());
    if (!stream->Write(*response)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "client closed the stream");
    }
  }
  return grpc::Status::OK;
}

grpc::Status SaedictGrpcService::Ingest(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::IngestAck, v1::IngestRequest>* stream) {
  // Reads and encodes on this thread; the session's writer thread stores each
  // batch and sends its ack (gRPC allows one reader and one writer at once).
  std::unique_ptr<service::IngestSession> session =
      core_->StartIngest([stream](const v1::IngestAck& ack) { return stream->Write(ack); },
                         DeadlineOf(context));
  v1::IngestRequest request;
  absl::Status status;
  while (status.ok() && stream->Read(&request)) {
    if (context->IsCancelled()) {
      status = absl::CancelledError("cancelled by the client");
      break;
    }
    status = session->Submit(std::move(request));
    request.Clear();
  }
  // The session's error is that of the lowest message index (a failed
  // write of an earlier batch wins over this message's validation error).
  absl::Status finished = session->Finish();
  if (!finished.ok()) status = finished;
  return ToGrpcStatus(status);
}

grpc::Status SaedictGrpcService::GetDocument(grpc::ServerContext* c,
                                             const v1::GetDocumentRequest* req,
                                             v1::GetDocumentResponse* resp) {
  return Unary(c, resp, [&] { return core_->GetDocument(*req); });
}

grpc::Status SaedictGrpcService::GetActivations(grpc::ServerContext* c,
                                                const v1::GetActivationsRequest* req,
                                                v1::GetActivationsResponse* resp) {
  return Unary(c, resp, [&] { return core_->GetActivations(*req); });
}

grpc::Status SaedictGrpcService::GetFeature(grpc::ServerContext* c,
                                            const v1::GetFeatureRequest* req,
                                            v1::GetFeatureResponse* resp) {
  return Unary(c, resp, [&] { return core_->GetFeature(*req); });
}

grpc::Status SaedictGrpcService::TopActivations(grpc::ServerContext* c,
                                                const v1::TopActivationsRequest* req,
                                                v1::TopActivationsResponse* resp) {
  return Unary(c, resp, [&] { return core_->TopActivations(*req); });
}

grpc::Status SaedictGrpcService::DocumentFeatures(grpc::ServerContext* c,
                                                  const v1::DocumentFeaturesRequest* req,
                                                  v1::DocumentFeaturesResponse* resp) {
  return Unary(c, resp, [&] { return core_->DocumentFeatures(*req); });
}

grpc::Status SaedictGrpcService::SearchSimilar(grpc::ServerContext* c,
                                               const v1::SearchSimilarRequest* req,
                                               v1::SearchSimilarResponse* resp) {
  return Unary(c, resp, [&] { return core_->SearchSimilar(*req); });
}

grpc::Status SaedictGrpcService::FeatureFamily(grpc::ServerContext* c,
                                               const v1::FeatureFamilyRequest* req,
                                               v1::FeatureFamilyResponse* resp) {
  return Unary(c, resp, [&] { return core_->FeatureFamily(*req); });
}

grpc::Status SaedictGrpcService::ListFamilies(grpc::ServerContext* c,
                                              const v1::ListFamiliesRequest* req,
                                              v1::ListFamiliesResponse* resp) {
  return Unary(c, resp, [&] { return core_->ListFamilies(*req); });
}

grpc::Status SaedictGrpcService::CreateCheckpoint(grpc::ServerContext* c,
                                                  const v1::CreateCheckpointRequest* req,
                                                  v1::CreateCheckpointResponse* resp) {
  return Unary(c, resp, [&] { return core_->CreateCheckpoint(*req); });
}

grpc::Status SaedictGrpcService::CompareDictionaries(
    grpc::ServerContext* context, const v1::CompareDictionariesRequest* req,
    grpc::ServerWriter<v1::CompareDictionariesResponse>* writer) {
  absl::Status s = core_->CompareDictionaries(
      *req, [writer](const v1::CompareDictionariesResponse& m) { return writer->Write(m); },
      [context] { return context->IsCancelled(); });
  return ToGrpcStatus(s);
}

grpc::Status SaedictGrpcService::Evaluate(grpc::ServerContext* context,
                                          grpc::ServerReader<v1::EvaluateRequest>* reader,
                                          v1::EvaluateResponse* response) {
  std::unique_ptr<service::EvaluateSession> session = core_->StartEvaluate(DeadlineOf(context));
  v1::EvaluateRequest request;
  while (reader->Read(&request)) {
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    if (absl::Status s = session->Add(request); !s.ok()) return ToGrpcStatus(s);
    request.Clear();
  }
  absl::StatusOr<v1::EvaluateResponse> out =
      session->Finish([context] { return context->IsCancelled(); });
  if (!out.ok()) return ToGrpcStatus(out.status());
  *response = std::move(*out);
  return grpc::Status::OK;
}

}  // namespace saedict::server
