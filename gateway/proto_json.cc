#include "gateway/proto_json.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace saedict::gateway {
namespace {

namespace pb = google::protobuf;

// A query value as the JSON value the protobuf parser expects for the
// field: numbers and enums stay strings (the JSON mapping accepts quoted
// numbers), bools must be true/false.
absl::Status SetQueryValue(const pb::FieldDescriptor& field, const std::string& value,
                           pb::Value* out) {
  if (field.cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
    return absl::InvalidArgumentError(
        absl::StrCat("query parameter ", field.name(),
                     ": a message field cannot be given in the query; POST "
                     "the request as a JSON body"));
  }
  if (field.cpp_type() == pb::FieldDescriptor::CPPTYPE_BOOL) {
    if (value == "true" || value == "1") {
      out->set_bool_value(true);
    } else if (value == "false" || value == "0") {
      out->set_bool_value(false);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("query parameter ", field.name(), ": '", value, "' is not true/false"));
    }
    return absl::OkStatus();
  }
  out->set_string_value(value);
  return absl::OkStatus();
}

}  // namespace

std::string ToJson(const pb::Message& message) {
  pb::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string out;
  // Printing a valid message cannot fail (no Any with unknown types here).
  (void)pb::util::MessageToJsonString(message, &out, options);
  return out;
}

absl::Status FromJson(absl::string_view json, pb::Message* message, absl::string_view where) {
  message->Clear();
  if (absl::StripAsciiWhitespace(json).empty()) return absl::OkStatus();
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status =
      pb::util::JsonStringToMessage(pb::StringPiece(json.data(), json.size()), message, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": not a valid JSON ", message->GetDescriptor()->full_name(), ": ",
                     std::string(status.message().data(), status.message().size())));
  }
  return absl::OkStatus();
}

absl::Status ForEachNdjsonLine(absl::string_view body,
                               const std::function<absl::Status(absl::string_view, int64_t)>& fn) {
  int64_t number = 0;
  while (!body.empty()) {
    const size_t end = body.find('\n');
    absl::string_view line = body.substr(0, end);
    body = end == absl::string_view::npos ? absl::string_view() : body.substr(end + 1);
    ++number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    if (absl::Status s = fn(line, number); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status FromQueryParameters(const std::vector<std::pair<std::string, std::string>>& params,
                                 pb::Message* message) {
  const pb::Descriptor* descriptor = message->GetDescriptor();
  pb::Struct object;
  for (const auto& [name, value] : params) {
    const pb::FieldDescriptor* field = descriptor->FindFieldByName(name);
    for (int i = 0; field == nullptr && i < descriptor->field_count(); ++i) {
      if (descriptor->field(i)->json_name() == name) field = descriptor->field(i);
    }
    if (field == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query parameter ", name, ": ", descriptor->full_name(), " has no such field"));
    }
    pb::Value& slot = (*object.mutable_fields())[field->name()];
    if (field->is_repeated()) {
      if (auto s = SetQueryValue(*field, value, slot.mutable_list_value()->add_values()); !s.ok())
        return s;
    } else {
      if (slot.kind_case() != pb::Value::KIND_NOT_SET) {
        return absl::InvalidArgumentError(absl::StrCat(
            "query parameter ", name, ": given twice, but ", field->name(), " is not repeated"));
      }
      if (auto s = SetQueryValue(*field, value, &slot); !s.ok()) return s;
    }
  }
  std::string json;
  (void)pb::util::MessageToJsonString(object, &json);
  return FromJson(json, message, "query parameters");
}

std::string ErrorJson(const absl::Status& status) {
  pb::Struct body;
  (*body.mutable_fields())["code"].set_string_value(absl::StatusCodeToString(status.code()));
  (*body.mutable_fields())["message"].set_string_value(std::string(status.message()));
  std::string out;
  (void)pb::util::MessageToJsonString(body, &out);
  return out;
}

}  // namespace saedict::gateway
