// safetensors reader and writer (see safetensors.h).
#include "formats/codecs/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "formats/codecs/file_io.h"
#include "formats/codecs/float_convert.h"
#include "formats/codecs/json.h"
#include "util/status_macros.h"

namespace saedict::formats {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // as the reference implementation
constexpr int64_t kMaxDim = int64_t{1} << 53;
constexpr const char* kMetadataKey = "__metadata__";

struct DTypeEntry {
  StDType type;
  const char* name;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {StDType::kBool, "BOOL", 1},      {StDType::kU8, "U8", 1},          {StDType::kI8, "I8", 1},
    {StDType::kF8E4M3, "F8_E4M3", 1}, {StDType::kF8E5M2, "F8_E5M2", 1}, {StDType::kU16, "U16", 2},
    {StDType::kI16, "I16", 2},        {StDType::kF16, "F16", 2},        {StDType::kBF16, "BF16", 2},
    {StDType::kU32, "U32", 4},        {StDType::kI32, "I32", 4},        {StDType::kF32, "F32", 4},
    {StDType::kU64, "U64", 8},        {StDType::kI64, "I64", 8},        {StDType::kF64, "F64", 8},
};

absl::Status Bad(absl::string_view label, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(label, ": ", what));
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

// Element count of `shape`, or false on overflow of `limit`.
bool ShapeBytes(const std::vector<int64_t>& shape, size_t elem, uint64_t* bytes) {
  uint64_t n = elem;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  *bytes = n;
  return true;
}

absl::StatusOr<SafetensorInfo> ParseTensorEntry(const std::string& name, const Value& v,
                                                uint64_t data_size, absl::string_view label) {
  const std::string where = absl::StrCat(label, ": tensor '", name, "'");
  if (v.kind_case() != Value::kStructValue) {
    return Bad(where, absl::StrCat("entry must be an object, found ", DescribeJson(v)));
  }
  const Struct& obj = v.struct_value();
  SafetensorInfo info;
  info.name = name;
  SAEDICT_ASSIGN_OR_RETURN(std::optional<std::string> dtype, GetJsonString(obj, "dtype", where));
  if (!dtype) return Bad(where, "missing 'dtype'");
  auto parsed = ParseStDType(*dtype);
  if (!parsed.ok()) return Bad(where, parsed.status().message());
  info.dtype = *parsed;

  const Value* shape = FindJsonField(obj, "shape");
  if (shape == nullptr || shape->kind_case() != Value::kListValue) {
    return Bad(where, "missing or non-list 'shape'");
  }
  for (int i = 0; i < shape->list_value().values_size(); ++i) {
    SAEDICT_ASSIGN_OR_RETURN(
        int64_t d, JsonToInt(shape->list_value().values(i), absl::StrCat(where, ": shape[", i, "]"),
                             0, kMaxDim));
    info.shape.push_back(d);
  }
  const Value* offsets = FindJsonField(obj, "data_offsets");
  if (offsets == nullptr || offsets->kind_case() != Value::kListValue ||
      offsets->list_value().values_size() != 2) {
    return Bad(where, "'data_offsets' must be a list of two integers");
  }
  SAEDICT_ASSIGN_OR_RETURN(int64_t begin,
                           JsonToInt(offsets->list_value().values(0),
                                     absl::StrCat(where, ": data_offsets[0]"), 0, kMaxDim));
  SAEDICT_ASSIGN_OR_RETURN(int64_t end,
                           JsonToInt(offsets->list_value().values(1),
                                     absl::StrCat(where, ": data_offsets[1]"), 0, kMaxDim));
  info.begin = static_cast<uint64_t>(begin);
  info.end = static_cast<uint64_t>(end);
  if (info.begin > info.end || info.end > data_size) {
    return Bad(where, absl::StrCat("data_offsets [", begin, ",", end,
                                   "] out of range of the data section (", data_size, " bytes)"));
  }
  uint64_t want = 0;
  if (!ShapeBytes(info.shape, StDTypeSize(info.dtype), &want)) {
    return Bad(where, absl::StrCat("shape ", ShapeString(info.shape), " overflows"));
  }
  if (want != info.end - info.begin) {
    return Bad(where,
               absl::StrCat("data_offsets [", begin, ",", end, "] hold ", info.end - info.begin,
                            " bytes but shape ", ShapeString(info.shape), " x ",
                            StDTypeName(info.dtype), " needs ", want));
  }
  return info;
}

absl::Status ParseMetadata(const Value& v, absl::string_view label,
                           std::map<std::string, std::string>* out) {
  if (v.kind_case() != Value::kStructValue) {
    return Bad(label, absl::StrCat("__metadata__ must be an object, found ", DescribeJson(v)));
  }
  for (const auto& [key, value] : v.struct_value().fields()) {
    if (value.kind_case() != Value::kStringValue) {
      return Bad(label, absl::StrCat("__metadata__ key '", key, "' must be a string, found ",
                                     DescribeJson(value)));
    }
    (*out)[key] = value.string_value();
  }
  return absl::OkStatus();
}

}  // namespace

const char* StDTypeName(StDType t) {
  for (const auto& e : kDTypes) {
    if (e.type == t) return e.name;
  }
  return "?";
}

size_t StDTypeSize(StDType t) {
  for (const auto& e : kDTypes) {
    if (e.type == t) return e.size;
  }
  return 0;
}

absl::StatusOr<StDType> ParseStDType(absl::string_view name) {
  for (const auto& e : kDTypes) {
    if (name == e.name) return e.type;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype ", JsonQuote(name)));
}

uint64_t SafetensorInfo::NumElements() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);  // checked at parse time
  return n;
}

absl::StatusOr<SafetensorsFile> SafetensorsFile::Parse(std::string bytes, std::string label) {
  if (bytes.size() < 8) {
    return Bad(label, absl::StrCat("truncated safetensors file: ", bytes.size(),
                                   " bytes, need at least 8"));
  }
  uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > bytes.size() - 8) {
    return Bad(label, absl::StrCat("header length ", header_len, " exceeds the ", bytes.size() - 8,
                                   " bytes after the length field"));
  }
  if (header_len > kMaxHeaderBytes) {
    return Bad(label, absl::StrCat("header length ", header_len, " exceeds the limit of ",
                                   kMaxHeaderBytes));
  }
  SafetensorsFile file;
  file.label_ = std::move(label);
  file.data_start_ = 8 + header_len;
  const uint64_t data_size = bytes.size() - file.data_start_;
  SAEDICT_ASSIGN_OR_RETURN(Struct header,
                           ParseJsonObject(absl::string_view(bytes).substr(8, header_len),
                                           absl::StrCat(file.label_, ": header")));
  for (const auto& [name, value] : header.fields()) {
    if (name == kMetadataKey) {
      if (value.kind_case() == Value::kNullValue) continue;
      SAEDICT_RETURN_IF_ERROR(ParseMetadata(value, file.label_, &file.metadata_));
      continue;
    }
    SAEDICT_ASSIGN_OR_RETURN(SafetensorInfo info,
                             ParseTensorEntry(name, value, data_size, file.label_));
    file.tensors_.push_back(std::move(info));
  }
  // Overlap check over the non-empty ranges, in file order.
  std::vector<const SafetensorInfo*> by_offset;
  for (const auto& t : file.tensors_) {
    if (t.end > t.begin) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto* a, const auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end) {
      return Bad(file.label_, absl::StrCat("tensors '", by_offset[i - 1]->name, "' and '",
                                           by_offset[i]->name, "' overlap"));
    }
  }
  std::sort(file.tensors_.begin(), file.tensors_.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  file.bytes_ = std::move(bytes);
  return file;
}

absl::StatusOr<SafetensorsFile> SafetensorsFile::Read(const std::filesystem::path& path,
                                                      const FileRoot& files) {
  SAEDICT_ASSIGN_OR_RETURN(std::string bytes, files.ReadFile(path));
  return Parse(std::move(bytes), path.string());
}

const SafetensorInfo* SafetensorsFile::Find(absl::string_view name) const {
  auto it =
      std::lower_bound(tensors_.begin(), tensors_.end(), name,
                       [](const SafetensorInfo& t, absl::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

absl::string_view SafetensorsFile::Data(const SafetensorInfo& t) const {
  return absl::string_view(bytes_).substr(data_start_ + t.begin, t.end - t.begin);
}

absl::StatusOr<std::vector<float>> SafetensorsFile::ReadF32(absl::string_view name) const {
  const SafetensorInfo* t = Find(name);
  if (t == nullptr) return Bad(label_, absl::StrCat("missing tensor '", name, "'"));
  FloatKind kind;
  switch (t->dtype) {
    case StDType::kF32:
      kind = FloatKind::kF32;
      break;
    case StDType::kF16:
      kind = FloatKind::kF16;
      break;
    case StDType::kBF16:
      kind = FloatKind::kBF16;
      break;
    case StDType::kF64:
      kind = FloatKind::kF64;
      break;
    default:
      return Bad(label_, absl::StrCat("tensor '", name, "' has dtype ", StDTypeName(t->dtype),
                                      "; expected F32, F16, BF16 or F64"));
  }
  std::vector<float> out(t->NumElements());
  DecodeFloats(Data(*t), kind, out.data());
  return out;
}

absl::StatusOr<std::string> SerializeSafetensors(
    const std::vector<SafetensorToWrite>& tensors,
    const std::map<std::string, std::string>& metadata) {
  std::string header = "{";
  if (!metadata.empty()) {
    header += absl::StrCat(JsonQuote(kMetadataKey), ":{");
    bool first = true;
    for (const auto& [k, v] : metadata) {
      absl::StrAppend(&header, first ? "" : ",", JsonQuote(k), ":", JsonQuote(v));
      first = false;
    }
    header += "}";
  }
  std::set<absl::string_view> names;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    const std::string where = absl::StrCat("tensor '", t.name, "'");
    if (t.name == kMetadataKey || !names.insert(t.name).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": duplicate or reserved name"));
    }
    uint64_t want = 0;
    if (!ShapeBytes(t.shape, StDTypeSize(t.dtype), &want) || want != t.data.size()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": shape ", ShapeString(t.shape), " x ",
                                                     StDTypeName(t.dtype), " does not match ",
                                                     t.data.size(), " data bytes"));
    }
    absl::StrAppend(&header, header.size() > 1 ? "," : "", JsonQuote(t.name), ":{\"dtype\":\"",
                    StDTypeName(t.dtype), "\",\"shape\":[", absl::StrJoin(t.shape, ","),
                    "],\"data_offsets\":[", offset, ",", offset + want, "]}");
    offset += want;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t len = header.size();
  std::memcpy(out.data(), &len, 8);
  out.reserve(8 + header.size() + offset);
  out += header;
  for (const auto& t : tensors) out.append(t.data.data(), t.data.size());
  return out;
}

absl::Status WriteSafetensorsFile(const std::filesystem::path& path,
                                  const std::vector<SafetensorToWrite>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  SAEDICT_ASSIGN_OR_RETURN(std::string bytes, SerializeSafetensors(tensors, metadata));
  return WriteFileAtomically(path, bytes);
}

}  // namespace saedict::formats
