#include "server/grpc_service.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/grpc_status.h"

namespace saedict::server {
namespace {

// Admits the call (CallPolicy), runs a core method with the admitted
// deadline and moves its result into the gRPC response.
template <typename Response, typename Call>
grpc::Status Unary(CallPolicy& policy, grpc::ServerContext* context, absl::string_view method,
                   Response* response, Call call) {
  absl::StatusOr<CallPolicy::Admission> admission = policy.Admit(context, method, CallKind::kUnary);
  if (!admission.ok()) return ToGrpcStatus(admission.status());
  if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  absl::StatusOr<Response> result = call(admission->deadline);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status SaedictGrpcService::LoadDictionary(grpc::ServerContext* c,
                                                const v1::LoadDictionaryRequest* req,
                                                v1::LoadDictionaryResponse* resp) {
  return Unary(*policy_, c, "LoadDictionary", resp,
               [&](absl::Time) { return core_->LoadDictionary(*req); });
}

grpc::Status SaedictGrpcService::ListDictionaries(grpc::ServerContext* c,
                                                  const v1::ListDictionariesRequest* req,
                                                  v1::ListDictionariesResponse* resp) {
  return Unary(*policy_, c, "ListDictionaries", resp,
               [&](absl::Time) { return core_->ListDictionaries(*req); });
}

grpc::Status SaedictGrpcService::GetDictionary(grpc::ServerContext* c,
                                               const v1::GetDictionaryRequest* req,
                                               v1::GetDictionaryResponse* resp) {
  return Unary(*policy_, c, "GetDictionary", resp,
               [&](absl::Time) { return core_->GetDictionary(*req); });
}

grpc::Status SaedictGrpcService::DeleteDictionary(grpc::ServerContext* c,
                                                  const v1::DeleteDictionaryRequest* req,
                                                  v1::DeleteDictionaryResponse* resp) {
  return Unary(*policy_, c, "DeleteDictionary", resp,
               [&](absl::Time) { return core_->DeleteDictionary(*req); });
}

grpc::Status SaedictGrpcService::Encode(grpc::ServerContext* c, const v1::EncodeRequest* req,
                                        v1::EncodeResponse* resp) {
  return Unary(*policy_, c, "Encode", resp,
               [&](absl::Time deadline) { return core_->Encode(*req, deadline); });
}

grpc::Status SaedictGrpcService::Decode(grpc::ServerContext* c, const v1::DecodeRequest* req,
                                        v1::DecodeResponse* resp) {
  return Unary(*policy_, c, "Decode", resp, [&](absl::Time) { return core_->Decode(*req); });
}

grpc::Status SaedictGrpcService::Intervene(grpc::ServerContext* c, const v1::InterveneRequest* req,
                                           v1::InterveneResponse* resp) {
  return Unary(*policy_, c, "Intervene", resp,
               [&](absl::Time deadline) { return core_->Intervene(*req, deadline); });
}

grpc::Status SaedictGrpcService::EncodeStream(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::EncodeResponse, v1::EncodeRequest>* stream) {
  absl::StatusOr<CallPolicy::Admission> admission =
      policy_->Admit(context, "EncodeStream", CallKind::kStream);
  if (!admission.ok()) return ToGrpcStatus(admission.status());
  std::unique_ptr<service::EncodeStreamSession> session =
      core_->StartEncodeStream(admission->deadline);
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
  absl::StatusOr<CallPolicy::Admission> admission =
      policy_->Admit(context, "Ingest", CallKind::kStream);
  if (!admission.ok()) return ToGrpcStatus(admission.status());
  ServerMetrics* metrics = metrics_;
  std::unique_ptr<service::IngestSession> session = core_->StartIngest(
      [stream, metrics](const v1::IngestAck& ack) {
        if (metrics != nullptr) metrics->ObserveIngestStored(ack.documents(), ack.tokens());
        return stream->Write(ack);
      },
      admission->deadline);
  v1::IngestRequest request;
  absl::Status status;
  while (status.ok() && stream->Read(&request)) {
    if (context->IsCancelled()) {
      status = absl::CancelledError("cancelled by the client");
      break;
    }
    if (metrics_ != nullptr)
      metrics_->ObserveIngestRequest(static_cast<int64_t>(request.ByteSizeLong()));
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
  return Unary(*policy_, c, "GetDocument", resp,
               [&](absl::Time) { return core_->GetDocument(*req); });
}

grpc::Status SaedictGrpcService::GetActivations(grpc::ServerContext* c,
                                                const v1::GetActivationsRequest* req,
                                                v1::GetActivationsResponse* resp) {
  return Unary(*policy_, c, "GetActivations", resp,
               [&](absl::Time) { return core_->GetActivations(*req); });
}

grpc::Status SaedictGrpcService::GetFeature(grpc::ServerContext* c,
                                            const v1::GetFeatureRequest* req,
                                            v1::GetFeatureResponse* resp) {
  return Unary(*policy_, c, "GetFeature", resp,
               [&](absl::Time) { return core_->GetFeature(*req); });
}

grpc::Status SaedictGrpcService::TopActivations(grpc::ServerContext* c,
                                                const v1::TopActivationsRequest* req,
                                                v1::TopActivationsResponse* resp) {
  return Unary(*policy_, c, "TopActivations", resp,
               [&](absl::Time) { return core_->TopActivations(*req); });
}

grpc::Status SaedictGrpcService::DocumentFeatures(grpc::ServerContext* c,
                                                  const v1::DocumentFeaturesRequest* req,
                                                  v1::DocumentFeaturesResponse* resp) {
  return Unary(*policy_, c, "DocumentFeatures", resp,
               [&](absl::Time) { return core_->DocumentFeatures(*req); });
}

grpc::Status SaedictGrpcService::SearchSimilar(grpc::ServerContext* c,
                                               const v1::SearchSimilarRequest* req,
                                               v1::SearchSimilarResponse* resp) {
  return Unary(*policy_, c, "SearchSimilar", resp,
               [&](absl::Time) { return core_->SearchSimilar(*req); });
}

grpc::Status SaedictGrpcService::FeatureFamily(grpc::ServerContext* c,
                                               const v1::FeatureFamilyRequest* req,
                                               v1::FeatureFamilyResponse* resp) {
  return Unary(*policy_, c, "FeatureFamily", resp,
               [&](absl::Time) { return core_->FeatureFamily(*req); });
}

grpc::Status SaedictGrpcService::ListFamilies(grpc::ServerContext* c,
                                              const v1::ListFamiliesRequest* req,
                                              v1::ListFamiliesResponse* resp) {
  return Unary(*policy_, c, "ListFamilies", resp,
               [&](absl::Time) { return core_->ListFamilies(*req); });
}

grpc::Status SaedictGrpcService::CreateCheckpoint(grpc::ServerContext* c,
                                                  const v1::CreateCheckpointRequest* req,
                                                  v1::CreateCheckpointResponse* resp) {
  return Unary(*policy_, c, "CreateCheckpoint", resp,
               [&](absl::Time) { return core_->CreateCheckpoint(*req); });
}

grpc::Status SaedictGrpcService::CompareDictionaries(
    grpc::ServerContext* context, const v1::CompareDictionariesRequest* req,
    grpc::ServerWriter<v1::CompareDictionariesResponse>* writer) {
  absl::StatusOr<CallPolicy::Admission> admission =
      policy_->Admit(context, "CompareDictionaries", CallKind::kStream);
  if (!admission.ok()) return ToGrpcStatus(admission.status());
  const absl::Time deadline = admission->deadline;
  absl::Status s = core_->CompareDictionaries(
      *req, [writer](const v1::CompareDictionariesResponse& m) { return writer->Write(m); },
      [context, deadline] { return context->IsCancelled() || absl::Now() >= deadline; });
  if (!s.ok() && absl::Now() >= deadline && !context->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "the comparison ran past the call's deadline");
  }
  return ToGrpcStatus(s);
}

grpc::Status SaedictGrpcService::Evaluate(grpc::ServerContext* context,
                                          grpc::ServerReader<v1::EvaluateRequest>* reader,
                                          v1::EvaluateResponse* response) {
  absl::StatusOr<CallPolicy::Admission> admission =
      policy_->Admit(context, "Evaluate", CallKind::kStream);
  if (!admission.ok()) return ToGrpcStatus(admission.status());
  std::unique_ptr<service::EvaluateSession> session = core_->StartEvaluate(admission->deadline);
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

grpc::Status SaedictGrpcService::ExportLatents(
    grpc::ServerContext* context, const v1::ExportLatentsRequest* req,
    grpc::ServerWriter<v1::ExportLatentsResponse>* writer) {
  absl::StatusOr<CallPolicy::Admission> admission =
      policy_->Admit(context, "ExportLatents", CallKind::kStream);
  if (!admission.ok()) return ToGrpcStatus(admission.status());
  const absl::Time deadline = admission->deadline;
  absl::Status s = core_->ExportLatents(
      *req, [writer](const v1::ExportLatentsResponse& m) { return writer->Write(m); },
      [context, deadline] { return context->IsCancelled() || absl::Now() >= deadline; });
  if (!s.ok() && absl::Now() >= deadline && !context->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "the export ran past the call's deadline");
  }
  return ToGrpcStatus(s);
}

grpc::Status SaedictGrpcService::UploadDictionary(
    grpc::ServerContext* context, grpc::ServerReader<v1::UploadDictionaryRequest>* reader,
    v1::UploadDictionaryResponse* response) {
  absl::StatusOr<CallPolicy::Admission> admission =
      policy_->Admit(context, "UploadDictionary", CallKind::kStream);
  if (!admission.ok()) return ToGrpcStatus(admission.status());
  // Destroying an unfinished upload removes what it wrote (cut-off streams).
  std::unique_ptr<service::DictionaryUpload> upload = core_->StartUpload();
  v1::UploadDictionaryRequest request;
  while (reader->Read(&request)) {
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    if (absl::Status s = upload->Add(request); !s.ok()) return ToGrpcStatus(s);
    request.Clear();
  }
  if (context->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled; nothing of the upload was kept");
  }
  absl::StatusOr<v1::UploadDictionaryResponse> out = core_->FinishUpload(*upload);
  if (!out.ok()) return ToGrpcStatus(out.status());
  *response = std::move(*out);
  return grpc::Status::OK;
}

grpc::Status SaedictGrpcService::SetExplanation(grpc::ServerContext* c,
                                                const v1::SetExplanationRequest* req,
                                                v1::SetExplanationResponse* resp) {
  return Unary(*policy_, c, "SetExplanation", resp,
               [&](absl::Time) { return core_->SetExplanation(*req); });
}

grpc::Status SaedictGrpcService::DeleteExplanation(grpc::ServerContext* c,
                                                   const v1::DeleteExplanationRequest* req,
                                                   v1::DeleteExplanationResponse* resp) {
  return Unary(*policy_, c, "DeleteExplanation", resp,
               [&](absl::Time) { return core_->DeleteExplanation(*req); });
}

grpc::Status SaedictGrpcService::ListExplanations(grpc::ServerContext* c,
                                                  const v1::ListExplanationsRequest* req,
                                                  v1::ListExplanationsResponse* resp) {
  return Unary(*policy_, c, "ListExplanations", resp,
               [&](absl::Time) { return core_->ListExplanations(*req); });
}

grpc::Status SaedictGrpcService::SearchExplanations(grpc::ServerContext* c,
                                                    const v1::SearchExplanationsRequest* req,
                                                    v1::SearchExplanationsResponse* resp) {
  return Unary(*policy_, c, "SearchExplanations", resp,
               [&](absl::Time) { return core_->SearchExplanations(*req); });
}

grpc::Status SaedictGrpcService::ImportExplanations(
    grpc::ServerContext* context, grpc::ServerReader<v1::ImportExplanationsRequest>* reader,
    v1::ImportExplanationsResponse* response) {
  absl::StatusOr<CallPolicy::Admission> admission =
      policy_->Admit(context, "ImportExplanations", CallKind::kStream);
  if (!admission.ok()) return ToGrpcStatus(admission.status());
  std::unique_ptr<service::ExplanationImport> import = core_->StartImportExplanations();
  v1::ImportExplanationsRequest request;
  while (reader->Read(&request)) {
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    if (absl::Status s = import->Add(request); !s.ok()) return ToGrpcStatus(s);
    request.Clear();
  }
  if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  absl::StatusOr<v1::ImportExplanationsResponse> out = import->Finish();
  if (!out.ok()) return ToGrpcStatus(out.status());
  *response = std::move(*out);
  return grpc::Status::OK;
}

}  // namespace saedict::server
