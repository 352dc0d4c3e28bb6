// CoreTestServer, LocalGrpcServer, RequestLog (see core_test_server.h).
#include "tests/client/core_test_server.h"

#include <chrono>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/dictionary.h"
#include "grpcpp/server_builder.h"
#include "saedict/v1/saedict.grpc.pb.h"
#include "tests/formats/sae_fixtures.h"
#include "util/status_macros.h"

namespace saedict::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kServicePrefix[] = "/saedict.v1.Saedict/";

// W_enc = W_dec = I (d x d), zero biases: f(x) = the architecture's
// activation of x itself, x_hat = f.
engine::Dictionary Identity(engine::Architecture arch, int64_t d) {
  engine::Dictionary dict;
  engine::DictionaryConfig& c = dict.config;
  c.model_name = "test-model";
  c.hook_name = "blocks.0.hook_resid_post";
  c.d_in = c.d_sae = d;
  c.architecture = arch;
  c.apply_b_dec_to_input = arch == engine::Architecture::kTopK;
  c.k = arch == engine::Architecture::kTopK ? 2 : 0;
  dict.w_enc.assign(d * d, 0.0f);
  dict.w_dec.assign(d * d, 0.0f);
  for (int64_t i = 0; i < d; ++i) dict.w_enc[i * d + i] = dict.w_dec[i * d + i] = 1.0f;
  dict.b_enc.assign(d, 0.0f);
  dict.b_dec.assign(d, 0.0f);
  if (arch == engine::Architecture::kJumpReLU) dict.threshold.assign(d, 0.0f);
  return dict;
}

absl::Status WriteFixtures(const fs::path& root, int64_t d) {
  const engine::Dictionary topk = Identity(engine::Architecture::kTopK, d);
  SAEDICT_RETURN_IF_ERROR(topk.Validate());
  SAEDICT_RETURN_IF_ERROR(WriteSaeLensFolder(root / "models" / absl::StrCat("d", d), topk));
  SAEDICT_RETURN_IF_ERROR(WriteSparsifyFolder(root / "sparsify" / absl::StrCat("d", d), topk));
  const engine::Dictionary jumprelu = Identity(engine::Architecture::kJumpReLU, d);
  SAEDICT_RETURN_IF_ERROR(jumprelu.Validate());
  const fs::path gemma = root / "gemma" / absl::StrCat("d", d);
  std::error_code ec;
  fs::create_directories(gemma, ec);
  if (ec)
    return absl::UnavailableError(absl::StrCat("create ", gemma.string(), ": ", ec.message()));
  return WriteGemmaScopeNpz(gemma / "params.npz", jumprelu);
}

// gRPC hands interceptors the received message as void*: the method's
// request type says what it points at.
template <typename Request>
std::function<std::string(const void*)> SerializerOf() {
  return
      [](const void* message) { return static_cast<const Request*>(message)->SerializeAsString(); };
}

}  // namespace

// --- RequestLog ----------------------------------------------------------------

class RequestLog::Interceptor final : public grpc::experimental::Interceptor {
 public:
  Interceptor(RequestLog* log, grpc::experimental::ServerRpcInfo* info) : log_(log), info_(info) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      log_->RecordDeadline(info_->server_context()->deadline() <
                           std::chrono::system_clock::now() + std::chrono::hours(1));
      log_->Record(info_->method(), methods->GetRecvMessage());
    }
    methods->Proceed();
  }

 private:
  RequestLog* const log_;
  grpc::experimental::ServerRpcInfo* const info_;
};

class RequestLog::Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(RequestLog* log) : log_(log) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new Interceptor(log_, info);
  }

 private:
  RequestLog* const log_;
};

RequestLog::RequestLog() {
  const std::pair<const char*, std::function<std::string(const void*)>> methods[] = {
      {"LoadDictionary", SerializerOf<v1::LoadDictionaryRequest>()},
      {"ListDictionaries", SerializerOf<v1::ListDictionariesRequest>()},
      {"GetDictionary", SerializerOf<v1::GetDictionaryRequest>()},
      {"DeleteDictionary", SerializerOf<v1::DeleteDictionaryRequest>()},
      {"Encode", SerializerOf<v1::EncodeRequest>()},
      {"EncodeStream", SerializerOf<v1::EncodeRequest>()},
      {"Decode", SerializerOf<v1::DecodeRequest>()},
      {"Intervene", SerializerOf<v1::InterveneRequest>()},
      {"Ingest", SerializerOf<v1::IngestRequest>()},
      {"GetDocument", SerializerOf<v1::GetDocumentRequest>()},
      {"GetActivations", SerializerOf<v1::GetActivationsRequest>()},
      {"GetFeature", SerializerOf<v1::GetFeatureRequest>()},
      {"TopActivations", SerializerOf<v1::TopActivationsRequest>()},
      {"DocumentFeatures", SerializerOf<v1::DocumentFeaturesRequest>()},
      {"CreateCheckpoint", SerializerOf<v1::CreateCheckpointRequest>()},
      {"SearchSimilar", SerializerOf<v1::SearchSimilarRequest>()},
      {"FeatureFamily", SerializerOf<v1::FeatureFamilyRequest>()},
      {"ListFamilies", SerializerOf<v1::ListFamiliesRequest>()},
  };
  for (const auto& [method, serializer] : methods) {
    serializers_[absl::StrCat(kServicePrefix, method)] = serializer;
  }
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
RequestLog::InterceptorFactory() {
  return std::make_unique<Factory>(this);
}

void RequestLog::Record(const char* full_method, const void* message) {
  auto it = serializers_.find(full_method);
  // Methods outside saedict.v1.Saedict (health, reflection) are counted, not kept.
  std::string bytes = it == serializers_.end() ? std::string() : it->second(message);
  std::string method = full_method;
  if (absl::StartsWith(method, kServicePrefix)) method = method.substr(sizeof(kServicePrefix) - 1);
  absl::MutexLock lock(&mu_);
  received_.emplace_back(std::move(method), std::move(bytes));
}

void RequestLog::RecordDeadline(bool within_an_hour) {
  absl::MutexLock lock(&mu_);
  last_had_deadline_ = within_an_hour;
}

std::vector<std::string> RequestLog::Serialized(absl::string_view method) const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [m, bytes] : received_) {
    if (m == method) out.push_back(bytes);
  }
  return out;
}

int RequestLog::Count(absl::string_view method) const {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& entry : received_) n += entry.first == method;
  return n;
}

bool RequestLog::last_call_had_deadline() const {
  absl::MutexLock lock(&mu_);
  return last_had_deadline_;
}

// --- LocalGrpcServer ---------------------------------------------------------------

absl::StatusOr<std::unique_ptr<LocalGrpcServer>> LocalGrpcServer::Start(grpc::Service* service,
                                                                        RequestLog* log) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service);
  if (log != nullptr) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(log->InterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError("test server: cannot listen on 127.0.0.1:0");
  }
  return std::unique_ptr<LocalGrpcServer>(
      new LocalGrpcServer(std::move(server), absl::StrCat("127.0.0.1:", port)));
}

LocalGrpcServer::~LocalGrpcServer() {
  // In-flight calls (a stalled one, say) are cancelled at once.
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
}

// --- CoreTestServer -------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<CoreTestServer>> CoreTestServer::Start() {
  std::unique_ptr<CoreTestServer> s(new CoreTestServer());
  s->root_ = s->scratch_.path() / "dictionaries";
  s->data_dir_ = s->scratch_.path() / "data";
  for (int64_t d : {4, 8, 16}) SAEDICT_RETURN_IF_ERROR(WriteFixtures(s->root_, d));
  SAEDICT_ASSIGN_OR_RETURN(
      s->registry_, service::DictionaryRegistry::Create({s->data_dir_, s->root_}, &s->store_));
  SAEDICT_ASSIGN_OR_RETURN(s->batcher_, engine::EncodeBatcher::Create({}));
  s->core_ = std::make_unique<service::ServiceCore>(s->registry_.get(), s->batcher_.get(),
                                                    &s->store_, s->data_dir_);
  s->policy_ = std::make_unique<server::CallPolicy>(server::CallPolicyOptions{});
  s->service_ =
      std::make_unique<server::SaedictGrpcService>(s->core_.get(), s->policy_.get(), nullptr);
  SAEDICT_ASSIGN_OR_RETURN(s->grpc_, LocalGrpcServer::Start(s->service_.get(), &s->log_));
  return s;
}

CoreTestServer::~CoreTestServer() { grpc_.reset(); }

absl::Status CoreTestServer::AddDictionary(const std::string& id, const engine::Dictionary& dict) {
  SAEDICT_RETURN_IF_ERROR(dict.Validate());
  const std::string path = absl::StrCat("custom/", id);
  SAEDICT_RETURN_IF_ERROR(WriteSaeLensFolder(root_ / path, dict));
  v1::LoadDictionaryRequest request;
  request.set_id(id);
  request.set_path(path);
  request.set_replace(true);
  return core_->LoadDictionary(request).status();
}

absl::Status CoreTestServer::WaitForIndex(const std::string& id, absl::Duration timeout) {
  return core_->similarity().WaitUntilReady(id, timeout);
}

absl::Status CoreTestServer::AddDictionary(const std::string& id, int64_t d) {
  const std::string path = absl::StrCat("models/d", d);
  if (!fs::exists(root_ / path)) SAEDICT_RETURN_IF_ERROR(WriteFixtures(root_, d));
  v1::LoadDictionaryRequest request;
  request.set_id(id);
  request.set_path(path);
  return core_->LoadDictionary(request).status();
}

}  // namespace saedict::testing
