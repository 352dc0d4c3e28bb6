#include "server/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gateway/http_gateway.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "server/call_policy.h"
#include "server/demo_corpus.h"
#include "server/grpc_service.h"
#include "server/metrics.h"
#include "server/rpc_metrics_interceptor.h"
#include "server/tls_credentials.h"
#include "service/access_policy.h"
#include "service/demo_dictionary.h"
#include "service/dictionary_registry.h"
#include "service/service_core.h"
#include "storage/store.h"
#include "util/log.h"
#include "util/status_macros.h"

namespace saedict::server {

bool IsLoopbackAddress(const std::string& address) {
  if (address == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  std::string bare = address;
  if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') {
    bare = bare.substr(1, bare.size() - 2);
  }
  in6_addr v6;
  return inet_pton(AF_INET6, bare.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

struct SaedictServer::State {
  // Destroyed in reverse order: gRPC first, the store last.
  std::unique_ptr<ServerMetrics> metrics;  // observes the batcher: outlives it
  std::unique_ptr<service::Authenticator> auth;
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<service::DictionaryRegistry> registry;
  std::unique_ptr<WorkerPool> workers;  // the batcher's runner: outlives it
  std::unique_ptr<engine::EncodeBatcher> batcher;
  std::unique_ptr<service::ServiceCore> core;
  std::unique_ptr<CallPolicy> policy;
  std::unique_ptr<SaedictGrpcService> service;
  std::unique_ptr<grpc::Server> grpc_server;
  std::unique_ptr<gateway::HttpGateway> http;
  int port = 0;
};

SaedictServer::SaedictServer(std::unique_ptr<State> state) : state_(std::move(state)) {}

SaedictServer::~SaedictServer() {
  if (state_ == nullptr) return;
  Shutdown(absl::ZeroDuration());
  state_->metrics->StopServing();  // no scrape may read the components destroyed next
}

absl::StatusOr<std::unique_ptr<SaedictServer>> SaedictServer::Start(const ServerOptions& options) {
  auto state = std::make_unique<State>();
  if (!options.auth_tokens_file.empty()) {
    SAEDICT_ASSIGN_OR_RETURN(state->auth,
                             service::Authenticator::FromFile(options.auth_tokens_file));
  } else {
    state->auth = std::make_unique<service::Authenticator>();
  }
  if (!IsLoopbackAddress(options.listen_address) && !state->auth->enabled() && !options.insecure) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on ", options.listen_address,
        " (not loopback) without auth: give --auth_tokens_file (and TLS), or --insecure to serve "
        "every caller as admin"));
  }
  SAEDICT_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                           ServerCredentialsFrom({options.tls_cert_file, options.tls_key_file,
                                                  options.tls_client_ca_file}));
  state->metrics = std::make_unique<ServerMetrics>();
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("--data_dir ", options.data_dir.string(), ": cannot create: ", ec.message()));
  }
  // A read-only directory (or file system) is refused here in plain words,
  // before RocksDB fails on its first rename.
  if (access(options.data_dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("--data_dir ", options.data_dir.string(),
                                                      " is not writable: ", strerror(errno)));
  }
  storage::StoreOptions store_options;
  store_options.path = options.data_dir / "db";
  store_options.min_free_bytes = options.min_free_disk_bytes;
  SAEDICT_ASSIGN_OR_RETURN(state->store, storage::Store::Open(store_options));
  SAEDICT_ASSIGN_OR_RETURN(state->registry, service::DictionaryRegistry::Create(
                                                {options.data_dir, options.dictionary_root,
                                                 options.default_compute_mode, options.fast_exact},
                                                state->store.get()));
  if (options.demo && !state->registry->Get(service::kDemoDictionaryId).ok()) {
    SAEDICT_RETURN_IF_ERROR(state->registry
                                ->LoadBuilt(service::kDemoDictionaryId,
                                            service::MakeDemoDictionary(),
                                            "embedded demo (random topk SAE)")
                                .status());
  }
  engine::BatcherOptions batcher_options = options.batcher;
  batcher_options.observer = state->metrics.get();
  if (!options.workers.empty()) {
    WorkerPoolOptions pool;
    pool.addresses = options.workers;
    pool.cache_dir = options.data_dir / "worker-cache";
    pool.health_interval = options.worker_health_interval;
    pool.max_message_bytes = options.max_message_bytes;
    pool.tls = {options.worker_tls_cert_file, options.worker_tls_key_file,
                options.worker_tls_ca_file, "worker_tls_cert_file", "worker_tls_key_file",
                "worker_tls_ca_file"};
    SAEDICT_ASSIGN_OR_RETURN(state->workers, WorkerPool::Create(pool));
    batcher_options.runner = state->workers.get();
    // A batch thread waits on its worker: two per worker keep each busy.
    batcher_options.num_batch_threads =
        std::max(batcher_options.num_batch_threads, 2 * static_cast<int>(options.workers.size()));
  }
  SAEDICT_ASSIGN_OR_RETURN(state->batcher, engine::EncodeBatcher::Create(batcher_options));
  if (options.max_request_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_request_tokens must be >= 0, got ", options.max_request_tokens));
  }
  if (options.max_upload_bytes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_upload_mb must be >= 0, got bytes ", options.max_upload_bytes));
  }
  // What uploads cut off by a crash left behind.
  SAEDICT_RETURN_IF_ERROR(service::RemoveUploadLeftovers(options.data_dir / "uploads"));
  state->core = std::make_unique<service::ServiceCore>(
      state->registry.get(), state->batcher.get(), state->store.get(), options.data_dir,
      options.similarity,
      service::CoreLimits{options.max_request_tokens,
                          static_cast<uint64_t>(options.max_upload_bytes)});
  if (options.demo && options.demo_corpus) {
    // The demo corpus goes into the demo dictionary while it is the built-in one.
    absl::StatusOr<v1::DictionaryInfo> demo = state->registry->Get(service::kDemoDictionaryId);
    if (demo.ok() && demo->source_format() == v1::SOURCE_FORMAT_BUILTIN) {
      SAEDICT_RETURN_IF_ERROR(EnsureDemoCorpus(*state->core, *state->store->corpus(),
                                               *service::MakeDemoDictionary(),
                                               service::kDemoDictionaryId));
    }
  }
  if (options.max_streams_per_client < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--max_streams_per_client must be >= 0, got ",
                                                   options.max_streams_per_client));
  }
  if (options.default_deadline <= absl::ZeroDuration() ||
      options.default_stream_deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--default_deadline and --default_stream_deadline must be "
        "positive (or 0 on the command line: none)");
  }
  CallPolicyOptions policy;
  policy.auth = state->auth.get();
  policy.default_deadline = options.default_deadline;
  policy.default_stream_deadline = options.default_stream_deadline;
  policy.max_streams_per_client = options.max_streams_per_client;
  policy.metrics = state->metrics.get();
  state->policy = std::make_unique<CallPolicy>(policy);
  state->service = std::make_unique<SaedictGrpcService>(state->core.get(), state->policy.get(),
                                                        state->metrics.get());
  state->metrics->AttachSources({state->store.get(), state->registry.get(),
                                 &state->core->similarity(), state->batcher.get(),
                                 state->workers.get()});
  if (options.metrics_port >= 0) {
    SAEDICT_RETURN_IF_ERROR(state->metrics->StartServing(
        options.metrics_address.empty() ? options.listen_address : options.metrics_address,
        options.metrics_port));
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = absl::StrCat(options.listen_address, ":", options.port);
  builder.AddListeningPort(address, credentials, &state->port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  builder.RegisterService(state->service.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<RpcMetricsInterceptorFactory>(state->metrics.get()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  state->grpc_server = builder.BuildAndStart();
  if (state->grpc_server == nullptr || state->port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, " (in use, or not a local address?)"));
  }
  state->grpc_server->GetHealthCheckService()->SetServingStatus(true);
  if (options.http_port >= 0) {
    gateway::HttpOptions http;
    http.address = options.http_address.empty() ? options.listen_address : options.http_address;
    if (!IsLoopbackAddress(http.address) && !state->auth->enabled() && !options.insecure) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to serve HTTP on ", http.address,
          " (not loopback) without auth: give --auth_tokens_file (and TLS), or --insecure"));
    }
    http.port = options.http_port;
    http.cors_origins = options.http_cors_origins;
    http.threads = options.http_threads;
    http.max_body_bytes = options.max_message_bytes;
    http.tls_cert_file = options.tls_cert_file;
    http.tls_key_file = options.tls_key_file;
    http.tls_client_ca_file = options.tls_client_ca_file;
    SAEDICT_ASSIGN_OR_RETURN(state->http,
                             gateway::HttpGateway::Start(http, state->core.get(),
                                                         state->policy.get(),
                                                         state->metrics.get()));
    LogInfo(absl::StrCat("saedictd HTTP on ", http.address, ":", state->http->port(),
                         options.tls_cert_file.empty() ? " (plaintext)" : " (TLS)",
                         " — dashboard at /, JSON API at /v1"));
  }
  LogInfo(absl::StrCat(
      "saedictd listening on ", options.listen_address, ":", state->port,
      options.tls_cert_file.empty()        ? " (plaintext)"
      : options.tls_client_ca_file.empty() ? " (TLS)"
                                           : " (mutual TLS)",
      state->auth->enabled() ? absl::StrCat(", auth on (", state->auth->token_count(), " tokens)")
                             : std::string(", auth off"),
      state->metrics->port() > 0 ? absl::StrCat(", metrics on :", state->metrics->port())
                                 : std::string(),
      state->workers ? absl::StrCat(", ", options.workers.size(), " workers") : std::string(),
      " data_dir=", options.data_dir.string(),
      " dictionary_root=", options.dictionary_root.string()));
  if (state->auth->enabled() && options.tls_cert_file.empty() &&
      !IsLoopbackAddress(options.listen_address)) {
    LogInfo("warning: bearer tokens travel in plaintext: give --tls_cert_file/--tls_key_file");
  }
  return std::unique_ptr<SaedictServer>(new SaedictServer(std::move(state)));
}

int SaedictServer::port() const { return state_->port; }

int SaedictServer::metrics_port() const { return state_->metrics->port(); }

WorkerPool* SaedictServer::workers() const { return state_->workers.get(); }

int SaedictServer::http_port() const { return state_->http ? state_->http->port() : 0; }

absl::Status SaedictServer::ReloadAuth() { return state_->auth->Reload(); }

void SaedictServer::Wait() { state_->grpc_server->Wait(); }

// gRPC's own Shutdown(deadline) also waits for idle client connections to
// go away (about 5 s per drain), so the drain is done here: refuse new
// calls, wait until no call is in flight or `grace` is over, then shut gRPC
// down at once (cancelling what is left).
void SaedictServer::Shutdown(absl::Duration grace) {
  if (state_ == nullptr || state_->grpc_server == nullptr) return;
  state_->grpc_server->GetHealthCheckService()->SetServingStatus(false);
  state_->policy->StartDraining();
  const absl::Time deadline = absl::Now() + grace;
  while (state_->metrics->in_flight() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  if (state_->http) state_->http->Stop();
  state_->grpc_server->Shutdown(absl::ToChronoTime(absl::Now()));
}

}  // namespace saedict::server
