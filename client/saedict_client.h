// Client: a thin typed C++ client for the saedict.v1.Saedict gRPC service.
// Each method sends one request with a deadline and returns the response or
// the server's error as an absl::Status with the same code and message
// (grpc::Status → absl::Status happens in exactly one place, saedict_client.cc).
//
//   SAEDICT_ASSIGN_OR_RETURN(auto client, Client::Connect("localhost:50051"));
//   SAEDICT_ASSIGN_OR_RETURN(v1::ListDictionariesResponse list,
//                            client->ListDictionaries({}));
//
// Thread safety: a Client is safe to use from many threads at once (it holds
// only a gRPC channel and stub, both thread-safe, and immutable options).
#ifndef SAEDICT_CLIENT_SAEDICT_CLIENT_H_
#define SAEDICT_CLIENT_SAEDICT_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "saedict/v1/saedict.grpc.pb.h"
#include "saedict/v1/saedict.pb.h"

namespace saedict::client {

struct ClientOptions {
  // Deadline of each call (of the whole stream for EncodeStream) unless the
  // call overrides it. Must be positive; absl::InfiniteDuration() for none.
  absl::Duration timeout = absl::Seconds(60);
  // Largest message accepted from / sent to the server; encode replies of
  // big batches exceed gRPC's 4 MiB default. -1 for unlimited.
  int max_message_bytes = 512 << 20;
  // When positive, Connect waits this long for the channel to connect and
  // fails with UNAVAILABLE otherwise; zero connects lazily on the first call.
  absl::Duration connect_timeout = absl::ZeroDuration();
  // Bearer token sent with every call ("authorization: Bearer TOKEN"); empty:
  // none (a server with auth on then answers UNAUTHENTICATED).
  std::string token;
  // TLS: when `enabled`, the channel is TLS, verified against root_certs_pem
  // (empty: the system's roots). cert_chain_pem + private_key_pem: the client
  // certificate of mutual TLS. server_name_override: the name the server's
  // certificate must carry when it is not the target's host (tests).
  struct Tls {
    bool enabled = false;
    std::string root_certs_pem;
    std::string cert_chain_pem;
    std::string private_key_pem;
    std::string server_name_override;
  } tls;
};

// Per-call settings; unset fields fall back to ClientOptions.
struct CallOptions {
  std::optional<absl::Duration> timeout;
};

// grpc::Status → absl::Status, keeping the code and the message (the one
// conversion point of the client).
absl::Status FromGrpcStatus(const grpc::Status& status);

class Client {
 public:
  // Opens a channel to `target` ("host:port", any gRPC target URI):
  // plaintext, or TLS per options.tls.
  // INVALID_ARGUMENT for an empty target or bad options; UNAVAILABLE when
  // options.connect_timeout > 0 and the server cannot be reached in time.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(absl::string_view target,
                                                         const ClientOptions& options = {});

  // Wraps an existing channel (tests, TLS or custom channel arguments).
  // REQUIRES: channel != nullptr.
  static std::unique_ptr<Client> FromChannel(std::shared_ptr<grpc::Channel> channel,
                                             const ClientOptions& options = {});

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  const std::string& target() const { return target_; }
  const ClientOptions& options() const { return options_; }

  // The unary RPCs of saedict.v1.Saedict. Errors are the server's codes
  // (proto/saedict/v1/saedict.proto), DEADLINE_EXCEEDED when the deadline
  // passes, UNAVAILABLE when the server cannot be reached.
  absl::StatusOr<v1::LoadDictionaryResponse> LoadDictionary(const v1::LoadDictionaryRequest& req,
                                                            const CallOptions& call = {});
  absl::StatusOr<v1::ListDictionariesResponse> ListDictionaries(
      const v1::ListDictionariesRequest& req, const CallOptions& call = {});
  absl::StatusOr<v1::GetDictionaryResponse> GetDictionary(const v1::GetDictionaryRequest& req,
                                                          const CallOptions& call = {});
  absl::StatusOr<v1::DeleteDictionaryResponse> DeleteDictionary(
      const v1::DeleteDictionaryRequest& req, const CallOptions& call = {});
  absl::StatusOr<v1::EncodeResponse> Encode(const v1::EncodeRequest& req,
                                            const CallOptions& call = {});
  absl::StatusOr<v1::DecodeResponse> Decode(const v1::DecodeRequest& req,
                                            const CallOptions& call = {});
  absl::StatusOr<v1::InterveneResponse> Intervene(const v1::InterveneRequest& req,
                                                  const CallOptions& call = {});

  // Corpus reads and the admin checkpoint (unary; errors as above, NOT_FOUND
  // for an unknown corpus, document, dictionary or feature).
  absl::StatusOr<v1::GetDocumentResponse> GetDocument(const v1::GetDocumentRequest& req,
                                                      const CallOptions& call = {});
  absl::StatusOr<v1::GetActivationsResponse> GetActivations(const v1::GetActivationsRequest& req,
                                                            const CallOptions& call = {});
  absl::StatusOr<v1::GetFeatureResponse> GetFeature(const v1::GetFeatureRequest& req,
                                                    const CallOptions& call = {});
  absl::StatusOr<v1::TopActivationsResponse> TopActivations(const v1::TopActivationsRequest& req,
                                                            const CallOptions& call = {});
  absl::StatusOr<v1::DocumentFeaturesResponse> DocumentFeatures(
      const v1::DocumentFeaturesRequest& req, const CallOptions& call = {});
  absl::StatusOr<v1::CreateCheckpointResponse> CreateCheckpoint(
      const v1::CreateCheckpointRequest& req, const CallOptions& call = {});

  // Similarity and feature families (unary; errors as above, plus
  // FAILED_PRECONDITION naming the index or neighbours state until they are
  // READY: GetDictionary's DictionaryInfo.index shows it).
  absl::StatusOr<v1::SearchSimilarResponse> SearchSimilar(const v1::SearchSimilarRequest& req,
                                                          const CallOptions& call = {});
  absl::StatusOr<v1::FeatureFamilyResponse> FeatureFamily(const v1::FeatureFamilyRequest& req,
                                                          const CallOptions& call = {});
  absl::StatusOr<v1::ListFamiliesResponse> ListFamilies(const v1::ListFamiliesRequest& req,
                                                        const CallOptions& call = {});

  // EncodeStream: sends the requests that `next_request` yields (until it
  // returns nullopt or an error) on a writer thread, while this thread hands
  // each response, in order, to `on_response`. An error from either callback
  // cancels the stream and is returned; otherwise the stream's final status.
  // INTERNAL when the server sends more or fewer responses than requests.
  // Thread safety: `next_request` runs on a helper thread, `on_response` on
  // the calling thread; they may run concurrently.
  using NextRequest = std::function<absl::StatusOr<std::optional<v1::EncodeRequest>>()>;
  using OnResponse = std::function<absl::Status(v1::EncodeResponse&&)>;
  absl::Status EncodeStream(const NextRequest& next_request, const OnResponse& on_response,
                            const CallOptions& call = {});

  // Ingest: like EncodeStream, one IngestRequest (one batch) at a time from
  // `next_request` on a writer thread, while this thread hands each IngestAck
  // to `on_ack` in order. Each ack is checked against the request it answers
  // before `on_ack` sees it: INTERNAL (and the stream is cancelled) when its
  // batch index is not the next one or its document / token counts differ
  // from the request's, and when the stream ends with fewer or more acks
  // than requests. The server's error (the first bad batch ends the stream;
  // batches acknowledged before it stay stored) is returned as is. An error
  // from a callback cancels the stream and is returned.
  // Thread safety: as EncodeStream.
  using NextIngestRequest = std::function<absl::StatusOr<std::optional<v1::IngestRequest>>()>;
  using OnIngestAck = std::function<absl::Status(const v1::IngestAck&)>;
  absl::Status Ingest(const NextIngestRequest& next_request, const OnIngestAck& on_ack,
                      const CallOptions& call = {});

  // CompareDictionaries: hands every streamed message (progress, summary,
  // matches) to `on_message` in order; an error it returns cancels the call
  // and is returned, otherwise the stream's final status.
  using OnCompareMessage = std::function<absl::Status(v1::CompareDictionariesResponse&&)>;
  absl::Status CompareDictionaries(const v1::CompareDictionariesRequest& req,
                                   const OnCompareMessage& on_message,
                                   const CallOptions& call = {});

  // Evaluate: writes the requests `next_request` yields (until nullopt or an
  // error, which cancels the call and is returned), then the report.
  using NextEvaluateRequest = std::function<absl::StatusOr<std::optional<v1::EvaluateRequest>>()>;
  absl::StatusOr<v1::EvaluateResponse> Evaluate(const NextEvaluateRequest& next_request,
                                                const CallOptions& call = {});

  // ExportLatents: hands every streamed message (header, sequences, split
  // chunks) to `on_message` in order; an error it returns cancels the call
  // and is returned, otherwise the stream's final status.
  // client/commands/delphi_cache.h writes them as delphi's latent cache.
  using OnExportMessage = std::function<absl::Status(v1::ExportLatentsResponse&&)>;
  absl::Status ExportLatents(const v1::ExportLatentsRequest& req,
                             const OnExportMessage& on_message, const CallOptions& call = {});

  // UploadDictionary: writes the messages `next_request` yields (the first
  // with the header listing the files, then their chunks in order) and
  // returns the loaded dictionary. client/upload_files.h builds the stream
  // from a folder or file.
  using NextUploadRequest =
      std::function<absl::StatusOr<std::optional<v1::UploadDictionaryRequest>>()>;
  absl::StatusOr<v1::UploadDictionaryResponse> UploadDictionary(
      const NextUploadRequest& next_request, const CallOptions& call = {});

  // Explanations (unary; NOT_FOUND for an unknown dictionary, feature or
  // explanation id, INVALID_ARGUMENT for bad text / query / top_n).
  absl::StatusOr<v1::SetExplanationResponse> SetExplanation(const v1::SetExplanationRequest& req,
                                                            const CallOptions& call = {});
  absl::StatusOr<v1::DeleteExplanationResponse> DeleteExplanation(
      const v1::DeleteExplanationRequest& req, const CallOptions& call = {});
  absl::StatusOr<v1::ListExplanationsResponse> ListExplanations(
      const v1::ListExplanationsRequest& req, const CallOptions& call = {});
  absl::StatusOr<v1::SearchExplanationsResponse> SearchExplanations(
      const v1::SearchExplanationsRequest& req, const CallOptions& call = {});
  // ImportExplanations: writes the messages `next_request` yields (the first
  // with the header), like Evaluate, then returns the import's counts.
  using NextImportRequest =
      std::function<absl::StatusOr<std::optional<v1::ImportExplanationsRequest>>()>;
  absl::StatusOr<v1::ImportExplanationsResponse> ImportExplanations(
      const NextImportRequest& next_request, const CallOptions& call = {});

 private:
  Client(std::string target, std::shared_ptr<grpc::Channel> channel, ClientOptions options);

  // Sets the deadline of `ctx` from `call` or options_.
  void Prepare(grpc::ClientContext& ctx, const CallOptions& call) const;

  const std::string target_;
  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Saedict::Stub> stub_;
};

}  // namespace saedict::client

#endif  // SAEDICT_CLIENT_SAEDICT_CLIENT_H_
