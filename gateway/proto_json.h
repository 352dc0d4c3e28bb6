// Protobuf <-> JSON for the HTTP gateway: the standard protobuf JSON mapping
// (lowerCamelCase names on output, both spellings accepted on input, int64
// as strings, enums by name, bytes as base64), NDJSON bodies of streaming
// methods, and GET query parameters turned into a request message.
//
// Errors are INVALID_ARGUMENT and say where: "request body: ...",
// "request body line 3: ...", "query parameter top_n: ...".
//
// Thread safety: pure functions.
#ifndef SAEDICT_GATEWAY_PROTO_JSON_H_
#define SAEDICT_GATEWAY_PROTO_JSON_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace saedict::gateway {

// The message as JSON, every field printed (zeros and empty lists too, so
// a browser never has to guess a default); oneof members only when set.
std::string ToJson(const google::protobuf::Message& message);

// Parses a JSON object into `message` (cleared first). An empty or
// all-whitespace body is the empty message. Unknown fields are refused.
absl::Status FromJson(absl::string_view json, google::protobuf::Message* message,
                      absl::string_view where = "request body");

// Calls `fn` with each non-empty line of an NDJSON body, numbered from 1.
absl::Status ForEachNdjsonLine(absl::string_view body,
                               const std::function<absl::Status(absl::string_view, int64_t)>& fn);

// Query parameters (name, value) in order -> `message`. A parameter names a
// top-level field by its proto or JSON name; a repeated field takes the
// parameter once per element; message-typed fields cannot be given this way.
absl::Status FromQueryParameters(const std::vector<std::pair<std::string, std::string>>& params,
                                 google::protobuf::Message* message);

// `status` as the gateway's error body: {"code":"NOT_FOUND","message":"..."}.
std::string ErrorJson(const absl::Status& status);

}  // namespace saedict::gateway

#endif  // SAEDICT_GATEWAY_PROTO_JSON_H_
