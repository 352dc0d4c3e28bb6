// The one conversion from absl::Status to grpc::Status (codes map 1:1).
#ifndef SAEDICT_SERVER_GRPC_STATUS_H_
#define SAEDICT_SERVER_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace saedict::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace saedict::server

#endif  // SAEDICT_SERVER_GRPC_STATUS_H_
