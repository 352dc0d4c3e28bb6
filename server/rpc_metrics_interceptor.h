// RpcMetricsInterceptor: a gRPC server interceptor that times every call of
// every service (saedict.v1, health, reflection) and records it in
// ServerMetrics by method and final status code, with an in-flight gauge.
// A call that ends without a status sent (the client went away) counts as
// CANCELLED.
//
// Thread safety: gRPC creates one interceptor per call; the factory and the
// metrics are shared and thread-safe.
#ifndef SAEDICT_SERVER_RPC_METRICS_INTERCEPTOR_H_
#define SAEDICT_SERVER_RPC_METRICS_INTERCEPTOR_H_

#include "grpcpp/support/server_interceptor.h"
#include "server/metrics.h"

namespace saedict::server {

class RpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsInterceptorFactory(ServerMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  ServerMetrics* const metrics_;
};

}  // namespace saedict::server

#endif  // SAEDICT_SERVER_RPC_METRICS_INTERCEPTOR_H_
