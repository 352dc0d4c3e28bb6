// Client implementation; see saedict_client.h. The only place the client
// turns a grpc::Status into an absl::Status is FromGrpcStatus below.
#include "client/saedict_client.h"

#include <chrono>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "grpcpp/grpcpp.h"

namespace saedict::client {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  const int code = static_cast<int>(status.error_code());
  // grpc::StatusCode and absl::StatusCode share the canonical numbering 0..16.
  const absl::StatusCode absl_code =
      code >= 0 && code <= static_cast<int>(absl::StatusCode::kUnauthenticated)
          ? static_cast<absl::StatusCode>(code)
          : absl::StatusCode::kUnknown;
  return absl::Status(absl_code, status.error_message());
}

namespace {

// "localhost:PORT" is dialled as 127.0.0.1 (RFC 6761: localhost is loopback).
// gRPC's c-ares resolver otherwise needs /etc/hosts or a DNS server, and a
// minimal machine or container may have neither.
std::string ChannelTarget(absl::string_view target) {
  if (absl::ConsumePrefix(&target, "localhost:")) return absl::StrCat("ipv4:127.0.0.1:", target);
  return std::string(target);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(absl::string_view target,
                                                        const ClientOptions& options) {
  if (target.empty()) return absl::InvalidArgumentError("server target is empty");
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout must be positive, got ", absl::FormatDuration(options.timeout)));
  }
  if (options.max_message_bytes == 0 || options.max_message_bytes < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_message_bytes must be positive or -1, got ", options.max_message_bytes));
  }
  if (options.tls.cert_chain_pem.empty() != options.tls.private_key_pem.empty()) {
    return absl::InvalidArgumentError(
        "TLS client certificate and private key go together: give both or neither");
  }
  if (options.token.find_first_of("\r\n") != std::string::npos) {
    return absl::InvalidArgumentError("token contains a line break");
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (options.tls.enabled) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls.root_certs_pem;
    ssl.pem_cert_chain = options.tls.cert_chain_pem;
    ssl.pem_private_key = options.tls.private_key_pem;
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls.server_name_override.empty()) {
      args.SetSslTargetNameOverride(options.tls.server_name_override);
    }
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(ChannelTarget(target), credentials, args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create a channel to '", target, "'"));
  }
  if (options.connect_timeout > absl::ZeroDuration()) {
    const auto deadline =
        std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options.connect_timeout);
    if (!channel->WaitForConnected(deadline)) {
      return absl::UnavailableError(absl::StrCat("cannot connect to ", target, " within ",
                                                 absl::FormatDuration(options.connect_timeout)));
    }
  }
  return std::unique_ptr<Client>(new Client(std::string(target), std::move(channel), options));
}

std::unique_ptr<Client> Client::FromChannel(std::shared_ptr<grpc::Channel> channel,
                                            const ClientOptions& options) {
  return std::unique_ptr<Client>(new Client("", std::move(channel), options));
}

Client::Client(std::string target, std::shared_ptr<grpc::Channel> channel, ClientOptions options)
    : target_(std::move(target)),
      options_(std::move(options)),
      channel_(std::move(channel)),
      stub_(v1::Saedict::NewStub(channel_)) {}

Client::~Client() = default;

void Client::Prepare(grpc::ClientContext& ctx, const CallOptions& call) const {
  if (!options_.token.empty()) ctx.AddMetadata("authorization", "Bearer " + options_.token);
  const absl::Duration timeout = call.timeout.value_or(options_.timeout);
  // Beyond a year is "no deadline" (and keeps the chrono addition in range).
  if (timeout == absl::InfiniteDuration() || timeout > absl::Hours(24 * 365)) return;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMicroseconds(timeout));
}

namespace {

// One unary call: deadline, invoke, convert the status.
template <typename Resp, typename Invoke>
absl::StatusOr<Resp> Unary(grpc::ClientContext& ctx, Invoke invoke) {
  Resp resp;
  grpc::Status status = invoke(&ctx, &resp);
  if (!status.ok()) return FromGrpcStatus(status);
  return resp;
}

}  // namespace

#define SAEDICT_CLIENT_UNARY_(Method, Req, Resp)                                                   \
  absl::StatusOr<v1::Resp> Client::Method(const v1::Req& req, const CallOptions& call) {           \
    grpc::ClientContext ctx;                                                                       \
    Prepare(ctx, call);                                                                            \
    return Unary<v1::Resp>(                                                                        \
        ctx, [&](grpc::ClientContext* c, v1::Resp* resp) { return stub_->Method(c, req, resp); }); \
  }

SAEDICT_CLIENT_UNARY_(LoadDictionary, LoadDictionaryRequest, LoadDictionaryResponse)
SAEDICT_CLIENT_UNARY_(ListDictionaries, ListDictionariesRequest, ListDictionariesResponse)
SAEDICT_CLIENT_UNARY_(GetDictionary, GetDictionaryRequest, GetDictionaryResponse)
SAEDICT_CLIENT_UNARY_(DeleteDictionary, DeleteDictionaryRequest, DeleteDictionaryResponse)
SAEDICT_CLIENT_UNARY_(Encode, EncodeRequest, EncodeResponse)
SAEDICT_CLIENT_UNARY_(Decode, DecodeRequest, DecodeResponse)
SAEDICT_CLIENT_UNARY_(Intervene, InterveneRequest, InterveneResponse)
SAEDICT_CLIENT_UNARY_(GetDocument, GetDocumentRequest, GetDocumentResponse)
SAEDICT_CLIENT_UNARY_(GetActivations, GetActivationsRequest, GetActivationsResponse)
SAEDICT_CLIENT_UNARY_(GetFeature, GetFeatureRequest, GetFeatureResponse)
SAEDICT_CLIENT_UNARY_(TopActivations, TopActivationsRequest, TopActivationsResponse)
SAEDICT_CLIENT_UNARY_(DocumentFeatures, DocumentFeaturesRequest, DocumentFeaturesResponse)
SAEDICT_CLIENT_UNARY_(CreateCheckpoint, CreateCheckpointRequest, CreateCheckpointResponse)
SAEDICT_CLIENT_UNARY_(SearchSimilar, SearchSimilarRequest, SearchSimilarResponse)
SAEDICT_CLIENT_UNARY_(FeatureFamily, FeatureFamilyRequest, FeatureFamilyResponse)
SAEDICT_CLIENT_UNARY_(ListFamilies, ListFamiliesRequest, ListFamiliesResponse)
SAEDICT_CLIENT_UNARY_(SetExplanation, SetExplanationRequest, SetExplanationResponse)
SAEDICT_CLIENT_UNARY_(DeleteExplanation, DeleteExplanationRequest, DeleteExplanationResponse)
SAEDICT_CLIENT_UNARY_(ListExplanations, ListExplanationsRequest, ListExplanationsResponse)
SAEDICT_CLIENT_UNARY_(SearchExplanations, SearchExplanationsRequest, SearchExplanationsResponse)

#undef SAEDICT_CLIENT_UNARY_

namespace {

// One bidirectional stream: the requests that `next` yields are written on a
// helper thread (each shown to `on_sent` just before it is written) while
// this thread hands each response to `on_response`. The first error of a
// callback cancels the stream and wins; then the stream's own status; then
// INTERNAL when the number of responses differs from the number of requests.
template <typename Req, typename Resp>
absl::Status RunBidiStream(grpc::ClientContext& ctx, grpc::ClientReaderWriter<Req, Resp>& stream,
                           const std::function<absl::StatusOr<std::optional<Req>>()>& next,
                           const std::function<void(const Req&)>& on_sent,
                           const std::function<absl::Status(Resp&&)>& on_response,
                           absl::string_view method, absl::string_view responses,
                           absl::string_view requests) {
  int64_t sent = 0;            // written by the writer thread; read after join
  absl::Status writer_status;  // likewise
  std::thread writer([&] {
    while (true) {
      absl::StatusOr<std::optional<Req>> req = next();
      if (!req.ok()) {
        writer_status = req.status();
        ctx.TryCancel();
        break;
      }
      if (!req->has_value()) break;
      ++sent;
      on_sent(**req);
      if (!stream.Write(**req)) break;  // the stream broke; Finish() says why
    }
    stream.WritesDone();
  });

  int64_t received = 0;
  absl::Status reader_status;
  Resp resp;
  while (stream.Read(&resp)) {
    ++received;
    if (reader_status.ok()) {
      reader_status = on_response(std::move(resp));
      if (!reader_status.ok()) ctx.TryCancel();
    }
    resp.Clear();
  }
  writer.join();
  const grpc::Status final_status = stream.Finish();

  if (!writer_status.ok()) return writer_status;
  if (!reader_status.ok()) return reader_status;
  if (!final_status.ok()) return FromGrpcStatus(final_status);
  if (received != sent) {
    return absl::InternalError(absl::StrCat(method, ": server sent ", received, " ", responses,
                                            " for ", sent, " ", requests));
  }
  return absl::OkStatus();
}

// Tokens of an ingest request (token_ids is little-endian int32).
int64_t RequestTokens(const v1::IngestRequest& req) {
  int64_t tokens = 0;
  for (const v1::IngestDocument& doc : req.documents()) {
    tokens += static_cast<int64_t>(doc.token_ids().size() / sizeof(int32_t));
  }
  return tokens;
}

}  // namespace

absl::Status Client::EncodeStream(const NextRequest& next_request, const OnResponse& on_response,
                                  const CallOptions& call) {
  grpc::ClientContext ctx;
  Prepare(ctx, call);
  std::unique_ptr<grpc::ClientReaderWriter<v1::EncodeRequest, v1::EncodeResponse>> stream =
      stub_->EncodeStream(&ctx);
  return RunBidiStream<v1::EncodeRequest, v1::EncodeResponse>(
      ctx, *stream, next_request, [](const v1::EncodeRequest&) {}, on_response, "EncodeStream",
      "responses", "requests");
}

namespace {

// One server stream: every message to `on_message` in order; its first
// error cancels the call and is returned, else the stream's status.
template <typename Resp>
absl::Status RunServerStream(grpc::ClientContext& ctx, grpc::ClientReader<Resp>& reader,
                             const std::function<absl::Status(Resp&&)>& on_message) {
  Resp message;
  while (reader.Read(&message)) {
    if (absl::Status s = on_message(std::move(message)); !s.ok()) {
      ctx.TryCancel();
      reader.Finish().ok();  // drain; the callback's error is what the caller sees
      return s;
    }
    message.Clear();
  }
  return FromGrpcStatus(reader.Finish());
}

}  // namespace

absl::Status Client::CompareDictionaries(const v1::CompareDictionariesRequest& req,
                                         const OnCompareMessage& on_message,
                                         const CallOptions& call) {
  grpc::ClientContext ctx;
  Prepare(ctx, call);
  std::unique_ptr<grpc::ClientReader<v1::CompareDictionariesResponse>> reader =
      stub_->CompareDictionaries(&ctx, req);
  return RunServerStream<v1::CompareDictionariesResponse>(ctx, *reader, on_message);
}

absl::Status Client::ExportLatents(const v1::ExportLatentsRequest& req,
                                   const OnExportMessage& on_message, const CallOptions& call) {
  grpc::ClientContext ctx;
  Prepare(ctx, call);
  std::unique_ptr<grpc::ClientReader<v1::ExportLatentsResponse>> reader =
      stub_->ExportLatents(&ctx, req);
  return RunServerStream<v1::ExportLatentsResponse>(ctx, *reader, on_message);
}

namespace {

// One client stream: writes what `next` yields (an error cancels the call
// and is returned; the server ending the call early stops the writes and
// Finish says why), then the single response.
template <typename Req, typename Resp, typename Open>
absl::StatusOr<Resp> RunClientStream(grpc::ClientContext& ctx, Open open,
                                     const std::function<absl::StatusOr<std::optional<Req>>()>& next) {
  Resp response;
  std::unique_ptr<grpc::ClientWriter<Req>> writer = open(&ctx, &response);
  for (;;) {
    absl::StatusOr<std::optional<Req>> request = next();
    if (!request.ok()) {
      ctx.TryCancel();
      writer->Finish().ok();
      return request.status();
    }
    if (!request->has_value()) break;
    if (!writer->Write(**request)) break;
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

}  // namespace

absl::StatusOr<v1::EvaluateResponse> Client::Evaluate(const NextEvaluateRequest& next_request,
                                                      const CallOptions& call) {
  grpc::ClientContext ctx;
  Prepare(ctx, call);
  return RunClientStream<v1::EvaluateRequest, v1::EvaluateResponse>(
      ctx, [&](grpc::ClientContext* c, v1::EvaluateResponse* r) { return stub_->Evaluate(c, r); },
      next_request);
}

absl::StatusOr<v1::UploadDictionaryResponse> Client::UploadDictionary(
    const NextUploadRequest& next_request, const CallOptions& call) {
  grpc::ClientContext ctx;
  Prepare(ctx, call);
  return RunClientStream<v1::UploadDictionaryRequest, v1::UploadDictionaryResponse>(
      ctx,
      [&](grpc::ClientContext* c, v1::UploadDictionaryResponse* r) {
        return stub_->UploadDictionary(c, r);
      },
      next_request);
}

absl::StatusOr<v1::ImportExplanationsResponse> Client::ImportExplanations(
    const NextImportRequest& next_request, const CallOptions& call) {
  grpc::ClientContext ctx;
  Prepare(ctx, call);
  return RunClientStream<v1::ImportExplanationsRequest, v1::ImportExplanationsResponse>(
      ctx,
      [&](grpc::ClientContext* c, v1::ImportExplanationsResponse* r) {
        return stub_->ImportExplanations(c, r);
      },
      next_request);
}

absl::Status Client::Ingest(const NextIngestRequest& next_request, const OnIngestAck& on_ack,
                            const CallOptions& call) {
  grpc::ClientContext ctx;
  Prepare(ctx, call);
  std::unique_ptr<grpc::ClientReaderWriter<v1::IngestRequest, v1::IngestAck>> stream =
      stub_->Ingest(&ctx);

  struct Sent {
    int64_t documents;
    int64_t tokens;
  };
  std::mutex mu;
  std::deque<Sent> unacked;  // guarded by mu: batches written, not yet acknowledged
  int64_t next_batch = 0;    // reader thread only
  return RunBidiStream<v1::IngestRequest, v1::IngestAck>(
      ctx, *stream, next_request,
      [&](const v1::IngestRequest& req) {
        std::lock_guard<std::mutex> lock(mu);
        unacked.push_back(Sent{req.documents_size(), RequestTokens(req)});
      },
      [&](v1::IngestAck&& ack) -> absl::Status {
        const int64_t batch = next_batch++;
        std::optional<Sent> sent;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (!unacked.empty()) {
            sent = unacked.front();
            unacked.pop_front();
          }
        }
        if (!sent.has_value()) {
          return absl::InternalError(absl::StrCat("Ingest: server sent an ack for batch ",
                                                  ack.batch(), " beyond the ", batch,
                                                  " batches sent"));
        }
        if (ack.batch() != batch) {
          return absl::InternalError(absl::StrCat("Ingest: expected the ack of batch ", batch,
                                                  ", got one for batch ", ack.batch()));
        }
        if (ack.documents() != sent->documents || ack.tokens() != sent->tokens) {
          return absl::InternalError(absl::StrCat("Ingest: ack of batch ", batch, " counts ",
                                                  ack.documents(), " documents and ", ack.tokens(),
                                                  " tokens, sent ", sent->documents,
                                                  " documents and ", sent->tokens, " tokens"));
        }
        return on_ack(ack);
      },
      "Ingest", "acks", "batches");
}

}  // namespace saedict::client
