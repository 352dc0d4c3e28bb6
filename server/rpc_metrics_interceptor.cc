#include "server/rpc_metrics_interceptor.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"

namespace saedict::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

class RpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(grpc::experimental::ServerRpcInfo* info, ServerMetrics* metrics)
      : metrics_(metrics),
        method_(info->method() != nullptr ? info->method() : ""),
        start_(absl::Now()) {
    metrics_->RpcStarted(method_);
  }

  ~RpcMetricsInterceptor() override {
    if (!recorded_) Record(grpc::StatusCode::CANCELLED);
    metrics_->RpcFinished(method_);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      Record(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void Record(grpc::StatusCode code) {
    recorded_ = true;
    metrics_->ObserveRpc(method_, absl::StatusCodeToString(static_cast<absl::StatusCode>(code)),
                         absl::Now() - start_);
  }

  ServerMetrics* const metrics_;
  const std::string method_;
  const absl::Time start_;
  bool recorded_ = false;
};

}  // namespace

grpc::experimental::Interceptor* RpcMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new RpcMetricsInterceptor(info, metrics_);
}

}  // namespace saedict::server
