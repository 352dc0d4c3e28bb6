#include "server/server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "server/demo_corpus.h"
#include "service/demo_dictionary.h"
#include "service/dictionary_registry.h"
#include "server/grpc_service.h"
#include "service/service_core.h"
#include "storage/store.h"
#include "util/log.h"
#include "util/status_macros.h"

namespace saedict::server {

struct SaedictServer::State {
  // Destroyed in reverse order: gRPC first, the store last.
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<service::DictionaryRegistry> registry;
  std::unique_ptr<engine::EncodeBatcher> batcher;
  std::unique_ptr<service::ServiceCore> core;
  std::unique_ptr<SaedictGrpcService> service;
  std::unique_ptr<grpc::Server> grpc_server;
  int port = 0;
};

SaedictServer::SaedictServer(std::unique_ptr<State> state) : state_(std::move(state)) {}

SaedictServer::~SaedictServer() { Shutdown(absl::ZeroDuration()); }

absl::StatusOr<std::unique_ptr<SaedictServer>> SaedictServer::Start(const ServerOptions& options) {
  auto state = std::make_unique<State>();
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("--data_dir ", options.data_dir.string(), ": cannot create: ", ec.message()));
  }
  SAEDICT_ASSIGN_OR_RETURN(state->store, storage::Store::Open({options.data_dir / "db"}));
  SAEDICT_ASSIGN_OR_RETURN(
      state->registry,
      service::DictionaryRegistry::Create(
          {options.data_dir, options.dictionary_root, options.default_compute_mode,
           options.fast_exact},
          state->store.get()));
  if (options.demo && !state->registry->Get(service::kDemoDictionaryId).ok()) {
    SAEDICT_RETURN_IF_ERROR(
        state->registry
            ->LoadBuilt(service::kDemoDictionaryId, service::MakeDemoDictionary(), "embedded demo (random topk SAE)")
            .status());
  }
  SAEDICT_ASSIGN_OR_RETURN(state->batcher, engine::EncodeBatcher::Create(options.batcher));
  state->core = std::make_unique<service::ServiceCore>(state->registry.get(), state->batcher.get(),
                                             state->store.get(), options.data_dir,
                                             options.similarity);
  if (options.demo && options.demo_corpus) {
    // The demo corpus goes into the demo dictionary while it is the built-in one.
    absl::StatusOr<v1::DictionaryInfo> demo = state->registry->Get(service::kDemoDictionaryId);
    if (demo.ok() && demo->source_format() == v1::SOURCE_FORMAT_BUILTIN) {
      SAEDICT_RETURN_IF_ERROR(EnsureDemoCorpus(*state->core, *state->store->corpus(),
                                               *service::MakeDemoDictionary(), service::kDemoDictionaryId));
    }
  }
  state->service = std::make_unique<SaedictGrpcService>(state->core.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = absl::StrCat(options.listen_address, ":", options.port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &state->port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  builder.RegisterService(state->service.get());
  state->grpc_server = builder.BuildAndStart();
  if (state->grpc_server == nullptr || state->port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, " (in use, or not a local address?)"));
  }
  state->grpc_server->GetHealthCheckService()->SetServingStatus(true);
  LogInfo(absl::StrCat("saedictd listening on ", options.listen_address, ":", state->port,
                       " data_dir=", options.data_dir.string(),
                       " dictionary_root=", options.dictionary_root.string()));
  return std::unique_ptr<SaedictServer>(new SaedictServer(std::move(state)));
}

int SaedictServer::port() const { return state_->port; }

void SaedictServer::Wait() { state_->grpc_server->Wait(); }

void SaedictServer::Shutdown(absl::Duration grace) {
  if (state_ == nullptr || state_->grpc_server == nullptr) return;
  state_->grpc_server->GetHealthCheckService()->SetServingStatus(false);
  state_->grpc_server->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

}  // namespace saedict::server
