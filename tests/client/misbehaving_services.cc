// FaultyIngestService, StallingService (see misbehaving_services.h).
#include "tests/client/misbehaving_services.h"

#include <chrono>
#include <memory>
#include <thread>
#include <utility>

#include "server/grpc_status.h"
#include "service/ingest_session.h"

namespace saedict::testing {

grpc::Status FaultyIngestService::Ingest(
    grpc::ServerContext*, grpc::ServerReaderWriter<v1::IngestAck, v1::IngestRequest>* stream) {
  using Kind = IngestFault::Kind;
  // The session's writer thread sends the acks, as in the real handler.
  std::unique_ptr<service::IngestSession> session =
      core_->StartIngest([this, stream](const v1::IngestAck& real) {
        if (real.batch() < fault_.batch) return stream->Write(real);
        v1::IngestAck ack = real;
        switch (fault_.kind) {
          case Kind::kWrongBatch:
            ack.set_batch(real.batch() + 1);
            return stream->Write(ack);
          case Kind::kWrongCounts:
            ack.set_documents(real.documents() + 1);
            return stream->Write(ack);
          case Kind::kSkipAck:
            return true;
          case Kind::kExtraAck:
            return stream->Write(ack) && stream->Write(ack);
          case Kind::kFailAt:
            break;  // batch `fault_.batch` is never submitted; later ones neither
        }
        return stream->Write(real);
      });
  v1::IngestRequest request;
  absl::Status status;
  for (int64_t index = 0; status.ok() && stream->Read(&request); ++index) {
    if (fault_.kind == Kind::kFailAt && index == fault_.batch) {
      // The batches before it are stored and acknowledged first, as when a
      // real batch fails.
      absl::Status finished = session->Finish();
      return finished.ok() ? fault_.status : server::ToGrpcStatus(finished);
    }
    status = session->Submit(std::move(request));
    request.Clear();
  }
  absl::Status finished = session->Finish();
  if (!finished.ok()) status = finished;
  return server::ToGrpcStatus(status);
}

grpc::Status StallingService::GetDictionary(grpc::ServerContext* context,
                                            const v1::GetDictionaryRequest* request,
                                            v1::GetDictionaryResponse*) {
  const auto give_up = std::chrono::system_clock::now() + std::chrono::minutes(1);
  // Not "until the deadline": a status sent the moment the deadline passes
  // can reach the client before its own deadline fires (a flaky CLI test).
  // An expired deadline cancels the call, and then no answer is delivered.
  while (!context->IsCancelled() && std::chrono::system_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return grpc::Status(
      grpc::StatusCode::DEADLINE_EXCEEDED,
      "stalling test double: GetDictionary '" + request->id() + "' waited for the deadline");
}

}  // namespace saedict::testing
