// ExplanationImport (contract: explanation_import.h).
#include "service/explanation_import.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "formats/codecs/gzip.h"
#include "formats/codecs/json.h"
#include "google/protobuf/util/time_util.h"
#include "util/status_macros.h"

namespace saedict::service {
namespace {

// The last path component ("a/b/c.txt" -> "c.txt").
std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of("/\\");
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A JSON value that must be a string or a non-negative integer (Neuronpedia
// writes index as a string).
absl::StatusOr<uint32_t> ParseIndex(const google::protobuf::Value& v) {
  if (v.kind_case() == google::protobuf::Value::kStringValue) {
    uint32_t out = 0;
    if (!absl::SimpleAtoi(v.string_value(), &out)) {
      return absl::InvalidArgumentError(
          absl::StrCat("'index' is \"", v.string_value(), "\"; expected a feature number"));
    }
    return out;
  }
  SAEDICT_ASSIGN_OR_RETURN(int64_t n, formats::JsonToInt(v, "'index'", 0, 0xFFFFFFFEll));
  return static_cast<uint32_t>(n);
}

// A string field, or a number written as a string by some exporters (layer).
absl::StatusOr<std::string> RequiredText(const google::protobuf::Struct& obj,
                                         absl::string_view key) {
  const google::protobuf::Value* v = formats::FindJsonField(obj, key);
  if (v == nullptr) return absl::InvalidArgumentError(absl::StrCat("missing '", key, "'"));
  if (v->kind_case() == google::protobuf::Value::kStringValue) return v->string_value();
  if (v->kind_case() == google::protobuf::Value::kNumberValue) {
    SAEDICT_ASSIGN_OR_RETURN(int64_t n, formats::JsonToInt(*v, absl::StrCat("'", key, "'"),
                                                           -(1ll << 53), 1ll << 53));
    return absl::StrCat(n);
  }
  return absl::InvalidArgumentError(absl::StrCat("'", key, "' is ", formats::DescribeJson(*v),
                                                 "; expected a string"));
}

}  // namespace

void ExplanationImport::Problem(const std::string& file, int64_t line, std::string message) {
  response_.set_rejected(response_.rejected() + 1);
  if (static_cast<size_t>(response_.problems_size()) >= limits_.max_problems) return;
  v1::ImportProblem* p = response_.add_problems();
  p->set_file_name(file);
  p->set_line(line);
  p->set_message(std::move(message));
}

absl::Status ExplanationImport::Add(const v1::ImportExplanationsRequest& m) {
  const int64_t index = messages_++;
  if (m.has_header()) {
    if (have_header_) {
      return absl::InvalidArgumentError(
          absl::StrCat("message ", index, ": header: sent again; only the first message has one"));
    }
    header_ = m.header();
    if (header_.format() != v1::EXPLANATION_FORMAT_NEURONPEDIA &&
        header_.format() != v1::EXPLANATION_FORMAT_DELPHI) {
      return absl::InvalidArgumentError(
          absl::StrCat("header.format: ", v1::ExplanationFormat_Name(header_.format()),
                       "; expected EXPLANATION_FORMAT_NEURONPEDIA or EXPLANATION_FORMAT_DELPHI"));
    }
    std::vector<std::pair<std::string, std::string>> targets(header_.dictionaries().begin(),
                                                             header_.dictionaries().end());
    if (!header_.default_dictionary_id().empty()) {
      targets.emplace_back("", header_.default_dictionary_id());
    }
    for (const auto& [key, id] : targets) {
      const std::string field = key.empty() ? "header.default_dictionary_id"
                                            : absl::StrCat("header.dictionaries['", key, "']");
      SAEDICT_RETURN_IF_ERROR(explanations_->CheckFeature(id, 0, field + ": ").status());
    }
    have_header_ = true;
  } else if (!have_header_) {
    return absl::InvalidArgumentError(
        "message 0: header: missing; the first ImportExplanations message must carry it");
  }
  if (m.file_name().empty()) {
    if (!m.data().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("message ", index, ": file_name: empty but ", m.data().size(),
                       " bytes of data sent; expected the name of the file they belong to"));
    }
    return absl::OkStatus();
  }
  if (m.file_name() != file_name_) {
    SAEDICT_RETURN_IF_ERROR(EndFile());
    file_name_ = m.file_name();
    response_.set_files(response_.files() + 1);
  }
  if (file_too_big_) return absl::OkStatus();
  if (file_bytes_.size() + m.data().size() > limits_.max_file_bytes) {
    Problem(file_name_, 0,
            absl::StrCat("file is larger than the limit of ", limits_.max_file_bytes,
                         " bytes; split it"));
    file_too_big_ = true;
    file_bytes_.clear();
    return absl::OkStatus();
  }
  file_bytes_ += m.data();
  return absl::OkStatus();
}

absl::Status ExplanationImport::EndFile() {
  if (file_name_.empty()) return absl::OkStatus();
  std::string bytes = std::move(file_bytes_);
  file_bytes_.clear();
  const bool skip = file_too_big_;
  file_too_big_ = false;
  if (skip) return absl::OkStatus();
  if (formats::LooksGzipped(bytes)) {
    absl::StatusOr<std::string> unpacked =
        formats::Gunzip(bytes, limits_.max_unpacked_bytes, "gzip");
    if (!unpacked.ok()) {
      Problem(file_name_, 0, std::string(unpacked.status().message()));
      return absl::OkStatus();
    }
    bytes = *std::move(unpacked);
  }
  if (header_.format() == v1::EXPLANATION_FORMAT_NEURONPEDIA) {
    return ParseNeuronpedia(file_name_, bytes);
  }
  return ParseDelphi(file_name_, bytes);
}

absl::Status ExplanationImport::ParseNeuronpedia(const std::string& file,
                                                 const std::string& bytes) {
  int64_t line_no = 0;
  for (absl::string_view line : absl::StrSplit(bytes, '\n')) {
    ++line_no;
    line = absl::StripTrailingAsciiWhitespace(line);
    if (absl::StripLeadingAsciiWhitespace(line).empty()) continue;
    absl::StatusOr<google::protobuf::Struct> obj =
        formats::ParseJsonObject(line, "line", /*nonfinite_as_null=*/true);
    if (!obj.ok()) {
      Problem(file, line_no, std::string(obj.status().message()));
      continue;
    }
    auto row = [&]() -> absl::StatusOr<Row> {
      Row r;
      r.line = line_no;
      SAEDICT_ASSIGN_OR_RETURN(const std::string model, RequiredText(*obj, "modelId"));
      SAEDICT_ASSIGN_OR_RETURN(const std::string layer, RequiredText(*obj, "layer"));
      r.key = absl::StrCat(model, "/", layer);
      const google::protobuf::Value* index = formats::FindJsonField(*obj, "index");
      if (index == nullptr) return absl::InvalidArgumentError("missing 'index'");
      SAEDICT_ASSIGN_OR_RETURN(r.feature, ParseIndex(*index));
      SAEDICT_ASSIGN_OR_RETURN(std::optional<std::string> text,
                               formats::GetJsonString(*obj, "description", "row"));
      if (!text) return absl::InvalidArgumentError("missing 'description'");
      r.fields.set_text(*text);
      SAEDICT_ASSIGN_OR_RETURN(std::optional<std::string> type,
                               formats::GetJsonString(*obj, "typeName", "row"));
      r.fields.set_source(type && !type->empty() ? *type : "neuronpedia");
      SAEDICT_ASSIGN_OR_RETURN(std::optional<std::string> model_name,
                               formats::GetJsonString(*obj, "explanationModelName", "row"));
      if (model_name) r.fields.set_explainer_model(*model_name);
      SAEDICT_ASSIGN_OR_RETURN(std::optional<std::string> author,
                               formats::GetJsonString(*obj, "authorId", "row"));
      if (author) r.fields.set_author(*author);
      for (const char* key : {"scoreV1", "scoreV2"}) {
        SAEDICT_ASSIGN_OR_RETURN(std::optional<double> score,
                                 formats::GetJsonNumber(*obj, key, "row"));
        if (score) {
          r.fields.set_score(*score);
          break;
        }
      }
      return r;
    }();
    if (!row.ok()) {
      Problem(file, line_no, std::string(row.status().message()));
      continue;
    }
    SAEDICT_RETURN_IF_ERROR(AddRow(file, *std::move(row)));
  }
  return absl::OkStatus();
}

absl::Status ExplanationImport::ParseDelphi(const std::string& file, const std::string& bytes) {
  // {module}_latent{index}.txt
  const std::string base = BaseName(file);
  const size_t at = base.rfind("_latent");
  uint32_t feature = 0;
  if (at == std::string::npos || at == 0 || !absl::EndsWith(base, ".txt") ||
      !absl::SimpleAtoi(absl::string_view(base).substr(at + 7, base.size() - at - 7 - 4),
                        &feature)) {
    Problem(file, 0,
            absl::StrCat("file name '", base, "' is not delphi's {module}_latent{index}.txt"));
    return absl::OkStatus();
  }
  absl::StatusOr<google::protobuf::Struct> wrapped =
      formats::ParseJsonObject(absl::StrCat("{\"v\":", bytes, "}"), "file");
  const google::protobuf::Value* v =
      wrapped.ok() ? formats::FindJsonField(*wrapped, "v") : nullptr;
  if (v == nullptr || v->kind_case() != google::protobuf::Value::kStringValue) {
    Problem(file, 1, "expected the file to hold one JSON string (delphi's explanation)");
    return absl::OkStatus();
  }
  Row r;
  r.key = base.substr(0, at);
  r.feature = feature;
  r.line = 1;
  r.fields.set_text(v->string_value());
  r.fields.set_source("delphi");
  return AddRow(file, std::move(r));
}

absl::Status ExplanationImport::AddRow(const std::string& file, Row row) {
  std::string dictionary;
  if (auto it = header_.dictionaries().find(row.key); it != header_.dictionaries().end()) {
    dictionary = it->second;
  } else if (!header_.default_dictionary_id().empty()) {
    dictionary = header_.default_dictionary_id();
  } else {
    Problem(file, row.line,
            absl::StrCat("no dictionary for '", row.key,
                         "'; map it in header.dictionaries or set header.default_dictionary_id"));
    return absl::OkStatus();
  }
  v1::SetExplanationRequest& f = row.fields;
  f.set_dictionary_id(dictionary);
  f.set_feature(row.feature);
  absl::StatusOr<std::string> weights = explanations_->CheckFeature(dictionary, row.feature);
  if (!weights.ok()) {
    if (!absl::IsNotFound(weights.status())) return weights.status();
    Problem(file, row.line, std::string(weights.status().message()));
    return absl::OkStatus();
  }
  absl::StatusOr<storage::StoredExplanation> made = NewExplanation(f, *weights);
  if (!made.ok()) {
    if (!absl::IsInvalidArgument(made.status())) return made.status();
    Problem(file, row.line, std::string(made.status().message()));
    return absl::OkStatus();
  }
  if (header_.replace_same_source()) {
    auto [it, first] = replaced_.try_emplace({dictionary, row.feature, f.source()}, true);
    if (first) {
      SAEDICT_ASSIGN_OR_RETURN(std::vector<storage::StoredExplanation> old,
                               explanations_->store()->List(dictionary, row.feature));
      for (const storage::StoredExplanation& o : old) {
        if (o.record.source() == f.source()) pending_remove_.push_back(o.key);
      }
    }
  }
  pending_.push_back(std::move(*made));
  response_.set_imported(response_.imported() + 1);
  if (pending_.size() >= limits_.batch_rows) return Flush();
  return absl::OkStatus();
}

absl::Status ExplanationImport::Flush() {
  if (pending_.empty() && pending_remove_.empty()) return absl::OkStatus();
  absl::Status s = explanations_->store()->Write(pending_remove_, pending_);
  if (!s.ok()) {
    response_.set_imported(response_.imported() - static_cast<int64_t>(pending_.size()));
    return s;
  }
  pending_.clear();
  pending_remove_.clear();
  return absl::OkStatus();
}

absl::StatusOr<v1::ImportExplanationsResponse> ExplanationImport::Finish() {
  if (!have_header_) {
    return absl::InvalidArgumentError(
        "header: missing; the first ImportExplanations message must carry it");
  }
  SAEDICT_RETURN_IF_ERROR(EndFile());
  file_name_.clear();
  SAEDICT_RETURN_IF_ERROR(Flush());
  return response_;
}

}  // namespace saedict::service
