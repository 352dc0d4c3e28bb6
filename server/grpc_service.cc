#include "server/grpc_service.h"

#include "absl/strings/str_cat.h"
#include "server/grpc_status.h"

namespace saedict::server {
namespace {

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
  return Unary(c, resp, [&] { return core_->Encode(*req); });
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
  v1::EncodeRequest request;
  std::string dictionary_id;
  for (int64_t index = 0; stream->Read(&request); ++index) {
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    if (request.dictionary_id().empty()) {
      request.set_dictionary_id(dictionary_id);
    } else {
      dictionary_id = request.dictionary_id();
    }
    absl::StatusOr<v1::EncodeResponse> response = core_->Encode(request);
    if (!response.ok()) {
      return ToGrpcStatus(
          absl::Status(response.status().code(),
                       absl::StrCat("stream message ", index, ": ", response.status().message())));
    }
    if (!stream->Write(*response)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "client closed the stream");
    }
  }
  return grpc::Status::OK;
}

}  // namespace saedict::server
