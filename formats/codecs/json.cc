// JSON helpers for formats/ (see json.h).
#include "formats/codecs/json.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"

namespace saedict::formats {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr double kMaxExactInt = 9007199254740992.0;  // 2^53
constexpr size_t kMaxMessageChars = 200;

std::string Truncated(absl::string_view s) {
  if (s.size() <= kMaxMessageChars) return std::string(s);
  return absl::StrCat(s.substr(0, kMaxMessageChars), "...");
}

// Replaces NaN / Infinity / -Infinity outside strings with null.
std::string NonFiniteToNull(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  bool in_string = false;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < in.size()) {
        out.push_back(in[++i]);
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    bool replaced = false;
    for (absl::string_view token : {"NaN", "Infinity", "-Infinity"}) {
      if (in.substr(i, token.size()) == token) {
        out += "null";
        i += token.size() - 1;
        replaced = true;
        break;
      }
    }
    if (!replaced) out.push_back(c);
  }
  return out;
}

const char* KindName(const Value& v) {
  switch (v.kind_case()) {
    case Value::kNullValue:
      return "null";
    case Value::kNumberValue:
      return "number";
    case Value::kStringValue:
      return "string";
    case Value::kBoolValue:
      return "bool";
    case Value::kStructValue:
      return "object";
    case Value::kListValue:
      return "list";
    default:
      return "nothing";
  }
}

absl::Status WrongType(absl::string_view label, absl::string_view key, absl::string_view want,
                       const Value& v) {
  return absl::InvalidArgumentError(absl::StrCat(label, ": key '", key, "' must be ", want,
                                                 ", found ", KindName(v), " ", DescribeJson(v)));
}

}  // namespace

absl::StatusOr<Struct> ParseJsonObject(absl::string_view json, absl::string_view label,
                                       bool nonfinite_as_null) {
  std::string cleaned;
  if (nonfinite_as_null) {
    cleaned = NonFiniteToNull(json);
    json = cleaned;
  }
  size_t first = json.find_first_not_of(" \t\r\n");
  if (first == absl::string_view::npos || json[first] != '{') {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": bad JSON: expected an object starting with '{'"));
  }
  Struct out;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &out);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": bad JSON: ", Truncated(status.message().as_string())));
  }
  return out;
}

std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string DescribeJson(const Value& v) {
  switch (v.kind_case()) {
    case Value::kNullValue:
      return "null";
    case Value::kNumberValue:
      return absl::StrCat(v.number_value());
    case Value::kStringValue:
      return JsonQuote(Truncated(v.string_value()));
    case Value::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case Value::kStructValue:
      return "{...}";
    case Value::kListValue:
      return absl::StrCat("[", v.list_value().values_size(), " items]");
    default:
      return "?";
  }
}

const Value* FindJsonField(const Struct& obj, absl::string_view key) {
  auto it = obj.fields().find(std::string(key));
  if (it == obj.fields().end() || it->second.kind_case() == Value::kNullValue) return nullptr;
  return &it->second;
}

absl::StatusOr<int64_t> JsonToInt(const Value& v, absl::string_view what, int64_t min,
                                  int64_t max) {
  if (v.kind_case() != Value::kNumberValue) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be an integer, found ", KindName(v), " ", DescribeJson(v)));
  }
  const double d = v.number_value();
  if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > kMaxExactInt ||
      d < static_cast<double>(min) || d > static_cast<double>(max)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " must be an integer in [", min, ", ", max,
                                                   "], found ", DescribeJson(v)));
  }
  return static_cast<int64_t>(d);
}

absl::StatusOr<std::optional<int64_t>> GetJsonInt(const Struct& obj, absl::string_view key,
                                                  absl::string_view label, int64_t min,
                                                  int64_t max) {
  const Value* v = FindJsonField(obj, key);
  if (v == nullptr) return std::optional<int64_t>();
  auto r = JsonToInt(*v, absl::StrCat(label, ": key '", key, "'"), min, max);
  if (!r.ok()) return r.status();
  return std::optional<int64_t>(*r);
}

absl::StatusOr<std::optional<double>> GetJsonNumber(const Struct& obj, absl::string_view key,
                                                    absl::string_view label) {
  const Value* v = FindJsonField(obj, key);
  if (v == nullptr) return std::optional<double>();
  if (v->kind_case() != Value::kNumberValue) return WrongType(label, key, "a number", *v);
  return std::optional<double>(v->number_value());
}

absl::StatusOr<std::optional<bool>> GetJsonBool(const Struct& obj, absl::string_view key,
                                                absl::string_view label) {
  const Value* v = FindJsonField(obj, key);
  if (v == nullptr) return std::optional<bool>();
  if (v->kind_case() != Value::kBoolValue) return WrongType(label, key, "true or false", *v);
  return std::optional<bool>(v->bool_value());
}

absl::StatusOr<std::optional<std::string>> GetJsonString(const Struct& obj, absl::string_view key,
                                                         absl::string_view label) {
  const Value* v = FindJsonField(obj, key);
  if (v == nullptr) return std::optional<std::string>();
  if (v->kind_case() != Value::kStringValue) return WrongType(label, key, "a string", *v);
  return std::optional<std::string>(v->string_value());
}

}  // namespace saedict::formats
