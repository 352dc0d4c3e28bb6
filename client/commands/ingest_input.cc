// Input files of `saedict ingest`; see ingest_input.h.
#include "client/commands/ingest_input.h"

#include <limits>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "formats/codecs/file_io.h"
#include "formats/codecs/json.h"
#include "formats/codecs/npy.h"
#include "util/status_macros.h"

namespace saedict::client {

absl::StatusOr<std::vector<int32_t>> ReadTokenIds(const std::filesystem::path& path) {
  SAEDICT_ASSIGN_OR_RETURN(formats::NpyArray array, formats::ReadNpyFile(path));
  const std::string file = path.string();
  if (array.shape.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": token ids must have shape [T], got [",
                                                   absl::StrJoin(array.shape, ", "), "]"));
  }
  if (array.dtype == formats::NpyDType::kF16 || array.dtype == formats::NpyDType::kF32 ||
      array.dtype == formats::NpyDType::kF64 || array.dtype == formats::NpyDType::kBool) {
    return absl::InvalidArgumentError(absl::StrCat(
        file, ": token ids have dtype ", formats::NpyDescr(array.dtype), "; want int32 or int64"));
  }
  SAEDICT_ASSIGN_OR_RETURN(std::vector<int64_t> wide, formats::NpyToInt64(array, file));
  std::vector<int32_t> ids(wide.size());
  for (size_t i = 0; i < wide.size(); ++i) {
    if (wide[i] < 0 || wide[i] > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": token ", i, " has id ", wide[i],
                                                     "; ids must be in [0, 2147483647]"));
    }
    ids[i] = static_cast<int32_t>(wide[i]);
  }
  return ids;
}

absl::StatusOr<std::vector<DocSpan>> ReadDocsJsonl(const std::filesystem::path& path,
                                                   int64_t num_tokens) {
  SAEDICT_ASSIGN_OR_RETURN(std::string text, formats::ReadFileToString(path));
  const std::string file = path.string();
  std::vector<DocSpan> docs;
  std::unordered_map<uint64_t, int64_t> line_of;  // doc id → line
  int64_t line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == absl::string_view::npos) continue;
    const std::string label = absl::StrCat(file, ":", line_number);
    SAEDICT_ASSIGN_OR_RETURN(google::protobuf::Struct obj, formats::ParseJsonObject(line, label));
    // A required non-negative integer key (JSON numbers are exact to 2^53).
    auto required = [&](const char* key) -> absl::StatusOr<int64_t> {
      SAEDICT_ASSIGN_OR_RETURN(std::optional<int64_t> v,
                               formats::GetJsonInt(obj, key, label, 0, int64_t{1} << 53));
      if (!v.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(label, ": key '", key, "' is missing"));
      }
      return *v;
    };
    DocSpan doc;
    SAEDICT_ASSIGN_OR_RETURN(const int64_t id, required("doc_id"));
    SAEDICT_ASSIGN_OR_RETURN(doc.start, required("start"));
    SAEDICT_ASSIGN_OR_RETURN(doc.length, required("length"));
    doc.doc_id = static_cast<uint64_t>(id);
    if (doc.length < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": document ", doc.doc_id, " has length 0; want at least 1 token"));
    }
    if (doc.start + doc.length > num_tokens) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": document ", doc.doc_id, " covers tokens [", doc.start, ", ",
                       doc.start + doc.length, ") but the token file has ", num_tokens, " tokens"));
    }
    if (auto [it, inserted] = line_of.emplace(doc.doc_id, line_number); !inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": doc_id ", doc.doc_id, " is already used on line ", it->second));
    }
    docs.push_back(doc);
  }
  if (docs.empty()) return absl::InvalidArgumentError(absl::StrCat(file, ": no documents"));
  return docs;
}

absl::StatusOr<std::vector<std::string>> ReadVocabJson(const std::filesystem::path& path) {
  SAEDICT_ASSIGN_OR_RETURN(std::string text, formats::ReadFileToString(path));
  const std::string file = path.string();
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] != '[') {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": want a JSON list of strings (token id -> display string)"));
  }
  // ParseJsonObject reads objects: wrap the list in one.
  SAEDICT_ASSIGN_OR_RETURN(google::protobuf::Struct obj,
                           formats::ParseJsonObject(absl::StrCat("{\"vocab\":", text, "}"), file));
  const google::protobuf::Value* list = formats::FindJsonField(obj, "vocab");
  if (list == nullptr || list->kind_case() != google::protobuf::Value::kListValue) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": want a JSON list of strings"));
  }
  std::vector<std::string> vocab;
  vocab.reserve(list->list_value().values_size());
  for (const google::protobuf::Value& v : list->list_value().values()) {
    if (v.kind_case() != google::protobuf::Value::kStringValue) {
      return absl::InvalidArgumentError(absl::StrCat(
          file, ": entry ", vocab.size(), " must be a string, found ", formats::DescribeJson(v)));
    }
    vocab.push_back(v.string_value());
  }
  return vocab;
}

absl::Status CheckTokensInVocab(std::span<const int32_t> tokens, std::span<const DocSpan> docs,
                                int64_t vocab_size, const std::string& vocab_label) {
  for (const DocSpan& doc : docs) {
    for (int64_t p = 0; p < doc.length; ++p) {
      const int32_t id = tokens[doc.start + p];
      if (id >= vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "document ", doc.doc_id, " token ", p, " (token ", doc.start + p,
            " of the file) has id ", id, " but ", vocab_label, " has ", vocab_size, " entries"));
      }
    }
  }
  return absl::OkStatus();
}

std::vector<std::pair<size_t, size_t>> PlanBatches(std::span<const DocSpan> docs,
                                                   int64_t batch_tokens) {
  std::vector<std::pair<size_t, size_t>> batches;
  size_t begin = 0;
  int64_t tokens = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    if (i > begin && tokens + docs[i].length > batch_tokens) {
      batches.emplace_back(begin, i);
      begin = i;
      tokens = 0;
    }
    tokens += docs[i].length;
  }
  if (begin < docs.size()) batches.emplace_back(begin, docs.size());
  return batches;
}

}  // namespace saedict::client
