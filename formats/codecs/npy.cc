// NumPy .npy reader and writer (see npy.h).
#include "formats/codecs/npy.h"

#include <cstring>
#include <limits>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "formats/codecs/file_io.h"
#include "formats/codecs/float_convert.h"
#include "util/status_macros.h"

namespace saedict::formats {
namespace {

constexpr absl::string_view kMagic = "\x93NUMPY";
constexpr int64_t kMaxDim = int64_t{1} << 53;

struct DTypeEntry {
  NpyDType type;
  char kind;  // numpy kind letter
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {NpyDType::kBool, 'b', 1}, {NpyDType::kU8, 'u', 1},  {NpyDType::kI8, 'i', 1},
    {NpyDType::kU16, 'u', 2},  {NpyDType::kI16, 'i', 2}, {NpyDType::kU32, 'u', 4},
    {NpyDType::kI32, 'i', 4},  {NpyDType::kU64, 'u', 8}, {NpyDType::kI64, 'i', 8},
    {NpyDType::kF16, 'f', 2},  {NpyDType::kF32, 'f', 4}, {NpyDType::kF64, 'f', 8},
};

absl::Status Bad(absl::string_view label, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(label, ": ", what));
}

// Parses the header's Python dict literal:
//   {'descr': '<f4', 'fortran_order': False, 'shape': (64, 512), }
class HeaderParser {
 public:
  explicit HeaderParser(absl::string_view s) : s_(s) {}

  absl::Status Parse(absl::string_view label, std::string* descr, bool* fortran,
                     std::vector<int64_t>* shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    if (!Eat('{')) return Bad(label, "npy header is not a dict literal");
    while (!Eat('}')) {
      std::optional<std::string> key = String();
      if (!key || !Eat(':')) return Error(label);
      if (*key == "descr") {
        std::optional<std::string> v = String();
        if (!v)
          return Bad(label, "npy 'descr' must be a string (structured dtypes are not supported)");
        *descr = *v;
        have_descr = true;
      } else if (*key == "fortran_order") {
        if (Word("True")) {
          *fortran = true;
        } else if (Word("False")) {
          *fortran = false;
        } else {
          return Error(label);
        }
        have_fortran = true;
      } else if (*key == "shape") {
        if (!Tuple(shape)) return Error(label);
        have_shape = true;
      } else {
        return Bad(label, absl::StrCat("unexpected npy header key '", *key, "'"));
      }
      if (!Eat(',')) {
        if (!Eat('}')) return Error(label);
        break;
      }
    }
    if (!have_descr || !have_fortran || !have_shape) {
      return Bad(label, "npy header lacks one of 'descr', 'fortran_order', 'shape'");
    }
    Skip();
    if (pos_ != s_.size()) return Error(label);
    return absl::OkStatus();
  }

 private:
  absl::Status Error(absl::string_view label) const {
    return Bad(label, absl::StrCat("malformed npy header at offset ", pos_, ": ",
                                   absl::CEscape(s_.substr(0, 120))));
  }
  void Skip() {
    while (pos_ < s_.size() && absl::ascii_isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool Eat(char c) {
    Skip();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Word(absl::string_view w) {
    Skip();
    if (s_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }
  std::optional<std::string> String() {
    Skip();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) return std::nullopt;
    const char quote = s_[pos_++];
    size_t end = s_.find(quote, pos_);
    if (end == absl::string_view::npos) return std::nullopt;
    std::string out(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return out;
  }
  bool Tuple(std::vector<int64_t>* out) {
    out->clear();
    if (!Eat('(')) return false;
    while (!Eat(')')) {
      Skip();
      int64_t v = 0;
      size_t digits = 0;
      while (pos_ < s_.size() && absl::ascii_isdigit(static_cast<unsigned char>(s_[pos_]))) {
        v = v * 10 + (s_[pos_++] - '0');
        if (v > kMaxDim) return false;
        ++digits;
      }
      if (digits == 0) return false;
      if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;  // Python 2 long suffix
      out->push_back(v);
      if (!Eat(',')) {
        if (!Eat(')')) return false;
        break;
      }
    }
    return true;
  }

  absl::string_view s_;
  size_t pos_ = 0;
};

absl::StatusOr<NpyDType> ParseDescr(absl::string_view descr, absl::string_view label) {
  if (descr.size() >= 3) {
    const char order = descr[0];
    const char kind = descr[1];
    size_t size = 0;
    for (char c : descr.substr(2)) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) || size > 16) {
        size = 0;
        break;
      }
      size = size * 10 + static_cast<size_t>(c - '0');
    }
    for (const auto& e : kDTypes) {
      if (e.kind != kind || e.size != size) continue;
      if (order == '<' || (order == '|' && size == 1)) return e.type;
      if (order == '>' && size > 1) {
        return Bad(label, absl::StrCat("big-endian npy dtype '", descr, "' is not supported"));
      }
    }
  }
  return Bad(label, absl::StrCat("unsupported npy dtype '", descr, "'"));
}

template <typename T>
NpyArray FromValues(NpyDType dtype, std::vector<int64_t> shape, std::span<const T> values) {
  NpyArray a;
  a.dtype = dtype;
  a.shape = std::move(shape);
  a.data.assign(reinterpret_cast<const char*>(values.data()), values.size_bytes());
  return a;
}

template <typename T>
void AppendInts(absl::string_view raw, std::vector<int64_t>* out) {
  for (size_t i = 0; i + sizeof(T) <= raw.size(); i += sizeof(T)) {
    T v;
    std::memcpy(&v, raw.data() + i, sizeof(T));
    out->push_back(static_cast<int64_t>(v));
  }
}

}  // namespace

const char* NpyDescr(NpyDType t) {
  switch (t) {
    case NpyDType::kBool:
      return "|b1";
    case NpyDType::kU8:
      return "|u1";
    case NpyDType::kI8:
      return "|i1";
    case NpyDType::kU16:
      return "<u2";
    case NpyDType::kI16:
      return "<i2";
    case NpyDType::kU32:
      return "<u4";
    case NpyDType::kI32:
      return "<i4";
    case NpyDType::kU64:
      return "<u8";
    case NpyDType::kI64:
      return "<i8";
    case NpyDType::kF16:
      return "<f2";
    case NpyDType::kF32:
      return "<f4";
    case NpyDType::kF64:
      return "<f8";
  }
  return "?";
}

size_t NpyDTypeSize(NpyDType t) {
  for (const auto& e : kDTypes) {
    if (e.type == t) return e.size;
  }
  return 0;
}

uint64_t NpyArray::NumElements() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

absl::StatusOr<NpyArray> ParseNpy(std::string bytes, absl::string_view label) {
  if (bytes.size() < 10 || absl::string_view(bytes).substr(0, 6) != kMagic) {
    return Bad(label, "not an npy file (bad magic or truncated)");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t len_bytes = 0;
  if (major == 1) {
    len_bytes = 2;
  } else if (major == 2 || major == 3) {
    len_bytes = 4;
  } else {
    return Bad(label, absl::StrCat("unsupported npy format version ", major, ".",
                                   static_cast<unsigned char>(bytes[7])));
  }
  if (bytes.size() < 8 + len_bytes) return Bad(label, "truncated npy header");
  uint32_t header_len = 0;
  std::memcpy(&header_len, bytes.data() + 8, len_bytes);  // little-endian host
  const size_t header_start = 8 + len_bytes;
  if (header_len > bytes.size() - header_start) {
    return Bad(label, absl::StrCat("npy header length ", header_len, " exceeds the file (",
                                   bytes.size(), " bytes)"));
  }
  std::string descr;
  bool fortran = false;
  NpyArray out;
  HeaderParser parser(absl::string_view(bytes).substr(header_start, header_len));
  SAEDICT_RETURN_IF_ERROR(parser.Parse(label, &descr, &fortran, &out.shape));
  if (fortran) return Bad(label, "fortran_order arrays are not supported; save in C order");
  SAEDICT_ASSIGN_OR_RETURN(out.dtype, ParseDescr(descr, label));
  uint64_t want = NpyDTypeSize(out.dtype);
  for (int64_t d : out.shape) {
    if (__builtin_mul_overflow(want, static_cast<uint64_t>(d), &want)) {
      return Bad(label, "npy shape overflows");
    }
  }
  const size_t data_start = header_start + header_len;
  if (bytes.size() - data_start != want) {
    return Bad(label, absl::StrCat("npy data is ", bytes.size() - data_start, " bytes but shape (",
                                   absl::StrJoin(out.shape, ", "), ") x ", descr, " needs ", want));
  }
  bytes.erase(0, data_start);
  out.data = std::move(bytes);
  return out;
}

absl::StatusOr<NpyArray> ReadNpyFile(const std::filesystem::path& path) {
  SAEDICT_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  return ParseNpy(std::move(bytes), path.string());
}

absl::StatusOr<std::string> SerializeNpy(const NpyArray& array) {
  uint64_t want = NpyDTypeSize(array.dtype);
  for (int64_t d : array.shape) {
    if (d < 0 || __builtin_mul_overflow(want, static_cast<uint64_t>(d), &want)) {
      return absl::InvalidArgumentError("npy shape has a negative dimension or overflows");
    }
  }
  if (want != array.data.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("npy data is ", array.data.size(), " bytes but the shape needs ", want));
  }
  std::string shape = absl::StrJoin(array.shape, ", ");
  if (array.shape.size() == 1) shape += ",";
  std::string header = absl::StrCat("{'descr': '", NpyDescr(array.dtype),
                                    "', 'fortran_order': False, 'shape': (", shape, "), }");
  size_t prefix = 10;  // magic, version, 2-byte length
  if (header.size() + 1 + prefix > 65535) prefix = 12;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::string out(kMagic);
  out.push_back(static_cast<char>(prefix == 10 ? 1 : 2));
  out.push_back('\0');
  const uint32_t len = static_cast<uint32_t>(header.size());
  out.append(reinterpret_cast<const char*>(&len), prefix - 8);
  out.reserve(out.size() + header.size() + array.data.size());
  out += header;
  out += array.data;
  return out;
}

absl::Status WriteNpyFile(const std::filesystem::path& path, const NpyArray& array) {
  SAEDICT_ASSIGN_OR_RETURN(std::string bytes, SerializeNpy(array));
  return WriteFileAtomically(path, bytes);
}

absl::StatusOr<std::vector<float>> NpyToFloat32(const NpyArray& array, absl::string_view label) {
  FloatKind kind;
  switch (array.dtype) {
    case NpyDType::kF16:
      kind = FloatKind::kF16;
      break;
    case NpyDType::kF32:
      kind = FloatKind::kF32;
      break;
    case NpyDType::kF64:
      kind = FloatKind::kF64;
      break;
    default:
      return Bad(label, absl::StrCat("npy dtype ", NpyDescr(array.dtype),
                                     " is not a float type (<f2, <f4, <f8)"));
  }
  std::vector<float> out(array.NumElements());
  DecodeFloats(array.data, kind, out.data());
  return out;
}

absl::StatusOr<std::vector<int64_t>> NpyToInt64(const NpyArray& array, absl::string_view label) {
  std::vector<int64_t> out;
  out.reserve(array.NumElements());
  const absl::string_view raw = array.data;
  switch (array.dtype) {
    case NpyDType::kBool:
    case NpyDType::kU8:
      AppendInts<uint8_t>(raw, &out);
      break;
    case NpyDType::kI8:
      AppendInts<int8_t>(raw, &out);
      break;
    case NpyDType::kU16:
      AppendInts<uint16_t>(raw, &out);
      break;
    case NpyDType::kI16:
      AppendInts<int16_t>(raw, &out);
      break;
    case NpyDType::kU32:
      AppendInts<uint32_t>(raw, &out);
      break;
    case NpyDType::kI32:
      AppendInts<int32_t>(raw, &out);
      break;
    case NpyDType::kI64:
      AppendInts<int64_t>(raw, &out);
      break;
    case NpyDType::kU64:
      for (size_t i = 0; i + 8 <= raw.size(); i += 8) {
        uint64_t v;
        std::memcpy(&v, raw.data() + i, 8);
        if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return Bad(label, absl::StrCat("u8 element ", i / 8, " = ", v, " exceeds int64"));
        }
        out.push_back(static_cast<int64_t>(v));
      }
      break;
    default:
      return Bad(label,
                 absl::StrCat("npy dtype ", NpyDescr(array.dtype), " is not an integer type"));
  }
  return out;
}

NpyArray NpyFromFloat32(std::vector<int64_t> shape, std::span<const float> values) {
  return FromValues(NpyDType::kF32, std::move(shape), values);
}
NpyArray NpyFromInt32(std::vector<int64_t> shape, std::span<const int32_t> values) {
  return FromValues(NpyDType::kI32, std::move(shape), values);
}
NpyArray NpyFromInt64(std::vector<int64_t> shape, std::span<const int64_t> values) {
  return FromValues(NpyDType::kI64, std::move(shape), values);
}

}  // namespace saedict::formats
