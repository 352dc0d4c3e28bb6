#include "server/config_file.h"

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "saedict/config/v1/server_config.pb.h"

namespace saedict::server {
namespace {

namespace pb = google::protobuf;

// Keeps the first parse error with its position (the parser reports 0-based).
class FirstError : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (error_.empty())
      error_ = absl::StrCat("line ", line + 1, " column ", column + 1, ": ", message);
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

std::string ScalarText(const pb::Message& m, const pb::FieldDescriptor& f, int index) {
  const pb::Reflection& r = *m.GetReflection();
  const bool repeated = f.is_repeated();
  switch (f.cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      return (repeated ? r.GetRepeatedBool(m, &f, index) : r.GetBool(m, &f)) ? "true" : "false";
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(repeated ? r.GetRepeatedInt32(m, &f, index) : r.GetInt32(m, &f));
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(repeated ? r.GetRepeatedInt64(m, &f, index) : r.GetInt64(m, &f));
    case pb::FieldDescriptor::CPPTYPE_STRING:
      return repeated ? r.GetRepeatedString(m, &f, index) : r.GetString(m, &f);
    default:  // ServerConfig has no other field types
      return "";
  }
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ConfigArguments(absl::string_view text,
                                                         absl::string_view source) {
  config::v1::ServerConfig config;
  FirstError errors;
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--config ", source, ": ", errors.error().empty() ? "not a ServerConfig" : errors.error(),
        " (fields are saedictd's flags: see proto/saedict/config/v1/server_config.proto)"));
  }
  std::vector<std::string> args;
  const pb::Descriptor* d = config.GetDescriptor();
  const pb::Reflection* r = config.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor& f = *d->field(i);
    if (f.is_repeated()) {
      if (r->FieldSize(config, &f) == 0) continue;
      std::vector<std::string> items;
      for (int k = 0; k < r->FieldSize(config, &f); ++k) {
        items.push_back(ScalarText(config, f, k));
        if (absl::StrContains(items.back(), ',')) {
          return absl::InvalidArgumentError(absl::StrCat("--config ", source, ": ", f.name(), ": '",
                                                         items.back(),
                                                         "' holds a comma; list items cannot"));
        }
      }
      args.push_back(absl::StrCat("--", f.name(), "=", absl::StrJoin(items, ",")));
    } else if (r->HasField(config, &f)) {
      args.push_back(absl::StrCat("--", f.name(), "=", ScalarText(config, f, 0)));
    }
  }
  return args;
}

absl::StatusOr<std::vector<std::string>> ConfigFileArguments(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("--config ", path.string(), ": cannot read"));
  std::stringstream text;
  text << in.rdbuf();
  return ConfigArguments(text.str(), path.string());
}

std::optional<std::string> FindConfigFlag(int argc, char** argv) {
  std::optional<std::string> found;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") break;  // what follows is not flags
    for (absl::string_view prefix : {"--config=", "-config="}) {
      if (absl::StartsWith(arg, prefix)) found = std::string(arg.substr(prefix.size()));
    }
    if ((arg == "--config" || arg == "-config") && i + 1 < argc) found = argv[++i];
  }
  return found;
}

}  // namespace saedict::server
