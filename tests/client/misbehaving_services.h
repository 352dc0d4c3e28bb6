// Test doubles of single saedict.v1.Saedict RPCs that misbehave on purpose,
// to test the client's robustness against a broken server. Each overrides
// one method (every other RPC answers UNIMPLEMENTED) and runs on its own
// LocalGrpcServer (core_test_server.h); they are not a second service.
//
//  - FaultyIngestService: Ingest through the real core's IngestSession
//    (batches are encoded and stored as usual), with one fault from batch
//    `fault.batch` on: the stream fails there, or the acks are wrong,
//    missing or doubled.
//  - StallingService: GetDictionary never answers before the call's
//    deadline (or cancellation), for deadline handling.
//
// Thread safety: gRPC may call the handlers concurrently; both are
// stateless beyond their const configuration and the thread-safe core.
#ifndef SAEDICT_TESTS_CLIENT_MISBEHAVING_SERVICES_H_
#define SAEDICT_TESTS_CLIENT_MISBEHAVING_SERVICES_H_

#include <cstdint>

#include "grpcpp/grpcpp.h"
#include "saedict/v1/saedict.grpc.pb.h"
#include "service/service_core.h"

namespace saedict::testing {

struct IngestFault {
  enum class Kind {
    kFailAt,       // end the stream with `status` on reading batch `batch` (nothing of it stored)
    kWrongBatch,   // the ack names the batch after the right one
    kWrongCounts,  // the ack counts one document too many
    kSkipAck,      // no ack for the batch; the stream still ends OK
    kExtraAck,     // two acks for the batch
  };
  Kind kind = Kind::kFailAt;
  int64_t batch = 0;    // 0-based message index in the stream
  grpc::Status status;  // kFailAt only
};

class FaultyIngestService final : public v1::Saedict::Service {
 public:
  // REQUIRES: `core` outlives the service.
  FaultyIngestService(service::ServiceCore* core, IngestFault fault) : core_(core), fault_(fault) {}

  grpc::Status Ingest(grpc::ServerContext* context,
                      grpc::ServerReaderWriter<v1::IngestAck, v1::IngestRequest>* stream) override;

 private:
  service::ServiceCore* const core_;
  const IngestFault fault_;
};

class StallingService final : public v1::Saedict::Service {
 public:
  // Waits until the call is cancelled (by the client, or by its deadline
  // passing; at most a minute), then answers DEADLINE_EXCEEDED — which the
  // client never sees, so it reports its own deadline.
  grpc::Status GetDictionary(grpc::ServerContext* context, const v1::GetDictionaryRequest* request,
                             v1::GetDictionaryResponse* response) override;
};

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_CLIENT_MISBEHAVING_SERVICES_H_
