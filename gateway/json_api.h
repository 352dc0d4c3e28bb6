// JsonApi: every saedict.v1.Saedict method as JSON in, JSON out, over the
// same ServiceCore the gRPC service calls — one implementation, two
// transports. The HTTP gateway routes POST /v1/{Method} here.
//
// Shapes, by the method's gRPC kind:
//   unary          body: one request JSON           answer: one response JSON
//   server stream  body: one request JSON           answer: NDJSON, one message a line
//   client stream  body: NDJSON, one request a line answer: one response JSON
//   bidi stream    body: NDJSON                     answer: NDJSON
// Server streams are live: each message goes out as the core produces it
// (Method::stream). Client and bidi streams are buffered: their answer is
// at most max_answer_bytes (RESOURCE_EXHAUSTED beyond; use gRPC for bigger
// streams), and one that fails midway answers the error alone (what
// earlier messages did — stored Ingest batches — stays done; the message
// says). Errors are the core's, plus INVALID_ARGUMENT for JSON that is not
// the request message.
//
// Thread safety: Call() may run on any number of threads at once.
#ifndef SAEDICT_GATEWAY_JSON_API_H_
#define SAEDICT_GATEWAY_JSON_API_H_

#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/service_core.h"

namespace saedict::gateway {

enum class MethodShape { kUnary, kServerStream, kClientStream, kBidiStream };

struct JsonCall {
  absl::string_view body;  // JSON, or NDJSON for client/bidi streams
  absl::Time deadline = absl::InfiniteFuture();
  std::function<bool()> cancelled;  // may be null
};

struct JsonAnswer {
  std::string body;
  bool ndjson = false;  // one JSON message per line
};

class JsonApi {
 public:
  // One answer message as a JSON line (no newline); false: stop.
  using LineSink = std::function<bool(std::string line)>;
  struct Method {
    MethodShape shape;
    const google::protobuf::Descriptor* request_type;
    // Unary, client and bidi streams: the whole answer.
    std::function<absl::StatusOr<JsonAnswer>(const JsonCall&)> run = nullptr;
    // Server streams: the answer messages to `emit` as they come.
    std::function<absl::Status(const JsonCall&, const LineSink& emit)> stream = nullptr;
  };

  JsonApi(service::ServiceCore* core, int64_t max_answer_bytes);

  // nullptr for a name that is not a saedict.v1.Saedict method.
  const Method* Find(absl::string_view name) const;
  const std::map<std::string, Method, std::less<>>& methods() const { return methods_; }

 private:
  template <typename Request, typename Response, typename Fn>
  void AddUnary(const std::string& name, Fn fn);
  void AddStreams();

  service::ServiceCore* const core_;
  const int64_t max_answer_bytes_;
  std::map<std::string, Method, std::less<>> methods_;
};

}  // namespace saedict::gateway

#endif  // SAEDICT_GATEWAY_JSON_API_H_
