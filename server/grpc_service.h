// SaedictGrpcService: the gRPC adapter for saedict.v1.Saedict. Each handler
// first asks the CallPolicy (auth, role, deadline, stream cap), then calls
// service::ServiceCore and converts the status; nothing else lives here.
// Thread safety: gRPC calls handlers concurrently; the core is thread-safe.
#ifndef SAEDICT_SERVER_GRPC_SERVICE_H_
#define SAEDICT_SERVER_GRPC_SERVICE_H_

#include "saedict/v1/saedict.grpc.pb.h"
#include "server/call_policy.h"
#include "server/metrics.h"
#include "service/service_core.h"

namespace saedict::server {

class SaedictGrpcService final : public v1::Saedict::Service {
 public:
  // core and policy must outlive the service; metrics may be null.
  SaedictGrpcService(service::ServiceCore* core, CallPolicy* policy, ServerMetrics* metrics)
      : core_(core), policy_(policy), metrics_(metrics) {}

  grpc::Status LoadDictionary(grpc::ServerContext*, const v1::LoadDictionaryRequest*,
                              v1::LoadDictionaryResponse*) override;
  grpc::Status ListDictionaries(grpc::ServerContext*, const v1::ListDictionariesRequest*,
                                v1::ListDictionariesResponse*) override;
  grpc::Status GetDictionary(grpc::ServerContext*, const v1::GetDictionaryRequest*,
                             v1::GetDictionaryResponse*) override;
  grpc::Status DeleteDictionary(grpc::ServerContext*, const v1::DeleteDictionaryRequest*,
                                v1::DeleteDictionaryResponse*) override;
  grpc::Status Encode(grpc::ServerContext*, const v1::EncodeRequest*, v1::EncodeResponse*) override;
  grpc::Status Decode(grpc::ServerContext*, const v1::DecodeRequest*, v1::DecodeResponse*) override;
  grpc::Status EncodeStream(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::EncodeResponse, v1::EncodeRequest>* stream) override;
  grpc::Status Intervene(grpc::ServerContext*, const v1::InterveneRequest*,
                         v1::InterveneResponse*) override;
  grpc::Status Ingest(grpc::ServerContext*,
                      grpc::ServerReaderWriter<v1::IngestAck, v1::IngestRequest>* stream) override;
  grpc::Status GetDocument(grpc::ServerContext*, const v1::GetDocumentRequest*,
                           v1::GetDocumentResponse*) override;
  grpc::Status GetActivations(grpc::ServerContext*, const v1::GetActivationsRequest*,
                              v1::GetActivationsResponse*) override;
  grpc::Status GetFeature(grpc::ServerContext*, const v1::GetFeatureRequest*,
                          v1::GetFeatureResponse*) override;
  grpc::Status TopActivations(grpc::ServerContext*, const v1::TopActivationsRequest*,
                              v1::TopActivationsResponse*) override;
  grpc::Status DocumentFeatures(grpc::ServerContext*, const v1::DocumentFeaturesRequest*,
                                v1::DocumentFeaturesResponse*) override;
  grpc::Status SearchSimilar(grpc::ServerContext*, const v1::SearchSimilarRequest*,
                             v1::SearchSimilarResponse*) override;
  grpc::Status FeatureFamily(grpc::ServerContext*, const v1::FeatureFamilyRequest*,
                             v1::FeatureFamilyResponse*) override;
  grpc::Status ListFamilies(grpc::ServerContext*, const v1::ListFamiliesRequest*,
                            v1::ListFamiliesResponse*) override;
  grpc::Status CreateCheckpoint(grpc::ServerContext*, const v1::CreateCheckpointRequest*,
                                v1::CreateCheckpointResponse*) override;
  grpc::Status CompareDictionaries(
      grpc::ServerContext*, const v1::CompareDictionariesRequest*,
      grpc::ServerWriter<v1::CompareDictionariesResponse>* writer) override;
  grpc::Status Evaluate(grpc::ServerContext*, grpc::ServerReader<v1::EvaluateRequest>* reader,
                        v1::EvaluateResponse* response) override;
  grpc::Status ExportLatents(grpc::ServerContext*, const v1::ExportLatentsRequest*,
                             grpc::ServerWriter<v1::ExportLatentsResponse>* writer) override;
  grpc::Status UploadDictionary(grpc::ServerContext*,
                                grpc::ServerReader<v1::UploadDictionaryRequest>* reader,
                                v1::UploadDictionaryResponse* response) override;
  grpc::Status SetExplanation(grpc::ServerContext*, const v1::SetExplanationRequest*,
                              v1::SetExplanationResponse*) override;
  grpc::Status DeleteExplanation(grpc::ServerContext*, const v1::DeleteExplanationRequest*,
                                 v1::DeleteExplanationResponse*) override;
  grpc::Status ListExplanations(grpc::ServerContext*, const v1::ListExplanationsRequest*,
                                v1::ListExplanationsResponse*) override;
  grpc::Status SearchExplanations(grpc::ServerContext*, const v1::SearchExplanationsRequest*,
                                  v1::SearchExplanationsResponse*) override;
  grpc::Status ImportExplanations(grpc::ServerContext*,
                                  grpc::ServerReader<v1::ImportExplanationsRequest>* reader,
                                  v1::ImportExplanationsResponse* response) override;

 private:
  service::ServiceCore* const core_;
  CallPolicy* const policy_;
  ServerMetrics* const metrics_;
};

}  // namespace saedict::server

#endif  // SAEDICT_SERVER_GRPC_SERVICE_H_
