// JSON helpers for formats/: parsing a JSON object into google::protobuf::Struct
// (protobuf's parser, so no extra dependency), typed field access with error
// messages that name the file, key and value, and string quoting for writers.
// JSON numbers arrive as doubles: integer getters check integer-ness and range
// (and |v| <= 2^53, beyond which doubles cannot hold every integer).
//
// Thread safety: free functions with no shared state.
#ifndef SAEDICT_FORMATS_CODECS_JSON_H_
#define SAEDICT_FORMATS_CODECS_JSON_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"

namespace saedict::formats {

// Parses `json`, which must be one JSON object. `label` (e.g. the file path)
// prefixes error messages. With `nonfinite_as_null`, the bare tokens NaN,
// Infinity and -Infinity that Python's json module writes are read as null.
absl::StatusOr<google::protobuf::Struct> ParseJsonObject(absl::string_view json,
                                                         absl::string_view label,
                                                         bool nonfinite_as_null = false);

// `s` as a quoted JSON string with the required escapes (UTF-8 passes through).
std::string JsonQuote(absl::string_view s);

// A short JSON-like rendering of a value for error messages.
std::string DescribeJson(const google::protobuf::Value& v);

// The field `key` of `obj`, or nullptr when absent or null.
const google::protobuf::Value* FindJsonField(const google::protobuf::Struct& obj,
                                             absl::string_view key);

// `v` as an integer in [min, max]; INVALID_ARGUMENT naming `what` otherwise.
absl::StatusOr<int64_t> JsonToInt(const google::protobuf::Value& v, absl::string_view what,
                                  int64_t min, int64_t max);

// Typed optional fields: nullopt when absent or null, INVALID_ARGUMENT
// "<label>: key '<key>' ..." when present with the wrong type or range.
absl::StatusOr<std::optional<int64_t>> GetJsonInt(const google::protobuf::Struct& obj,
                                                  absl::string_view key, absl::string_view label,
                                                  int64_t min, int64_t max);
absl::StatusOr<std::optional<double>> GetJsonNumber(const google::protobuf::Struct& obj,
                                                    absl::string_view key, absl::string_view label);
absl::StatusOr<std::optional<bool>> GetJsonBool(const google::protobuf::Struct& obj,
                                                absl::string_view key, absl::string_view label);
absl::StatusOr<std::optional<std::string>> GetJsonString(const google::protobuf::Struct& obj,
                                                         absl::string_view key,
                                                         absl::string_view label);

}  // namespace saedict::formats

#endif  // SAEDICT_FORMATS_CODECS_JSON_H_
