// The real saedict service for client and CLI tests, in-process: the gRPC
// front end (server::SaedictGrpcService) over a real service::ServiceCore —
// DictionaryRegistry, EncodeBatcher, engine — whose Store is the in-memory
// fake (tests/test_util/in_memory_store.h), on a grpc::Server at
// 127.0.0.1:<ephemeral port>. Nothing here reimplements the service: what
// the client sees is what saedictd answers (except that latents live in
// memory).
//
// Test dictionaries are identity SAEs, so expected values are easy to write:
// W_enc = W_dec = I, zero biases, d_in == d_sae == d, so f(x) = relu(x) of
// the 2 largest entries per row (topk, k = 2) and x_hat = f. They are
// written as real files under the dictionary root (dictionary_root()):
//   models/d<d>            SAELens folder, topk k = 2   (d in 4, 8, 16)
//   sparsify/d<d>          EleutherAI sparsify folder, topk k = 2
//   gemma/d<d>/params.npz  Gemma Scope file, jumprelu with zero thresholds
//                          (f = relu(x), every positive entry kept)
// model_name "test-model", hook_name "blocks.0.hook_resid_post".
//
// RequestLog records every request message the server receives (unary and
// streamed, in arrival order) with its method and whether the call had a
// deadline, through a server interceptor: tests assert what the client sent
// without a fake service.
//
// LocalGrpcServer runs any grpc::Service on 127.0.0.1:0; the misbehaving
// doubles of misbehaving_services.h use it too.
//
// Thread safety: RequestLog is thread-safe (gRPC threads record, the test
// reads). CoreTestServer and LocalGrpcServer are used from the test thread;
// the service they run is thread-safe.
#ifndef SAEDICT_TESTS_CLIENT_CORE_TEST_SERVER_H_
#define SAEDICT_TESTS_CLIENT_CORE_TEST_SERVER_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/batcher.h"
#include "engine/dictionary.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/server_interceptor.h"
#include "server/grpc_service.h"
#include "service/dictionary_registry.h"
#include "service/service_core.h"
#include "tests/test_util/in_memory_store.h"
#include "tests/test_util/test_env.h"

namespace saedict::testing {

// Request messages received by a server, for assertions on what a client sent.
class RequestLog {
 public:
  RequestLog();

  // Every request of `method` (e.g. "Ingest", "GetFeature"), in arrival order.
  // REQUIRES: Request is the method's request type.
  template <typename Request>
  std::vector<Request> Requests(absl::string_view method) const {
    std::vector<Request> out;
    for (const std::string& bytes : Serialized(method)) {
      out.emplace_back();
      out.back().ParseFromString(bytes);
    }
    return out;
  }
  // The last request of `method`; a default message when there was none.
  template <typename Request>
  Request Last(absl::string_view method) const {
    std::vector<Request> all = Requests<Request>(method);
    return all.empty() ? Request() : all.back();
  }
  // Messages received for `method` (a stream counts each message).
  int Count(absl::string_view method) const;
  // Whether the last call of any method carried a deadline within an hour.
  bool last_call_had_deadline() const;

  // A factory for grpc::ServerBuilder::experimental().SetInterceptorCreators
  // recording into this log. REQUIRES: the log outlives the server.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory();

 private:
  class Interceptor;
  class Factory;
  std::vector<std::string> Serialized(absl::string_view method) const;
  void Record(const char* full_method, const void* message) ABSL_LOCKS_EXCLUDED(mu_);
  void RecordDeadline(bool within_an_hour) ABSL_LOCKS_EXCLUDED(mu_);

  // "/saedict.v1.Saedict/<Method>" -> serializes a received message of its type.
  std::map<std::string, std::function<std::string(const void*)>> serializers_;
  mutable absl::Mutex mu_;
  std::vector<std::pair<std::string, std::string>> received_ ABSL_GUARDED_BY(mu_);
  bool last_had_deadline_ ABSL_GUARDED_BY(mu_) = false;
};

// One grpc::Service on a real server at 127.0.0.1:<ephemeral port>.
class LocalGrpcServer {
 public:
  // UNAVAILABLE when no port can be bound. `log` (may be null) records the
  // requests. REQUIRES: `service` (and `log`) outlive the server.
  static absl::StatusOr<std::unique_ptr<LocalGrpcServer>> Start(grpc::Service* service,
                                                                RequestLog* log = nullptr);
  ~LocalGrpcServer();
  // "127.0.0.1:PORT".
  const std::string& target() const { return target_; }

 private:
  LocalGrpcServer(std::unique_ptr<grpc::Server> server, std::string target)
      : server_(std::move(server)), target_(std::move(target)) {}
  std::unique_ptr<grpc::Server> server_;
  std::string target_;
};

class CoreTestServer {
 public:
  // Writes the test dictionaries and starts the service with no dictionary loaded.
  static absl::StatusOr<std::unique_ptr<CoreTestServer>> Start();
  ~CoreTestServer();

  // Loads models/d<d> (written first when d is not 4, 8 or 16) as `id`
  // through the core, like a client's LoadDictionary.
  absl::Status AddDictionary(const std::string& id, int64_t d);
  // Writes `dict` as the SAELens folder custom/<id> and loads it as `id`
  // (replacing one of that id) through the core.
  absl::Status AddDictionary(const std::string& id, const engine::Dictionary& dict);
  // Blocks until the similarity index and the neighbours of `id` are READY
  // (OK), FAILED (its error) or `timeout` passes (DEADLINE_EXCEEDED).
  absl::Status WaitForIndex(const std::string& id, absl::Duration timeout = absl::Seconds(120));

  const std::string& target() const { return grpc_->target(); }
  const RequestLog& requests() const { return log_; }
  service::ServiceCore* core() { return core_.get(); }
  InMemoryStore& store() { return store_; }
  const std::filesystem::path& dictionary_root() const { return root_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }

 private:
  CoreTestServer() = default;

  ScratchDir scratch_;
  std::filesystem::path root_, data_dir_;
  // Destroyed in reverse order: gRPC first, the store last.
  InMemoryStore store_;
  std::unique_ptr<service::DictionaryRegistry> registry_;
  std::unique_ptr<engine::EncodeBatcher> batcher_;
  std::unique_ptr<service::ServiceCore> core_;
  std::unique_ptr<server::CallPolicy> policy_;  // auth off, default limits
  std::unique_ptr<server::SaedictGrpcService> service_;
  RequestLog log_;
  std::unique_ptr<LocalGrpcServer> grpc_;
};

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_CLIENT_CORE_TEST_SERVER_H_
