// Forward record codec (see codes_codec.h).
#include "storage/codes_codec.h"

#include <algorithm>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "util/half.h"

namespace saedict::storage {
namespace {

constexpr uint8_t kFormatF32 = 0;
constexpr uint8_t kFormatF16 = 1;

absl::Status Malformed(absl::string_view what, absl::string_view why) {
  return absl::InternalError(absl::StrCat("storage: forward record ", what, " is corrupt: ", why));
}

// ReadVarint with the one-byte case (most row lengths and index deltas)
// inline: the index scans decode many records per query.
inline bool ReadVarintInline(absl::string_view* in, uint64_t* v) {
  if (!in->empty() && static_cast<unsigned char>(in->front()) < 0x80) {
    *v = static_cast<unsigned char>(in->front());
    in->remove_prefix(1);
    return true;
  }
  return ReadVarint(in, v);
}

}  // namespace

void AppendVarint(std::string* out, uint64_t v) {
  char buf[10];
  int n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}

bool ReadVarint(absl::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0, i = 0; i < 10 && i < static_cast<int>(in->size()); ++i, shift += 7) {
    const auto byte = static_cast<unsigned char>((*in)[i]);
    result |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) {
      in->remove_prefix(i + 1);
      *v = result;
      return true;
    }
  }
  return false;
}

std::string EncodeCodes(const DocumentCodes& codes, ValuePrecision precision) {
  const int64_t tokens = codes.num_rows;
  const size_t nnz = codes.values.size();
  std::string out;
  out.reserve(1 + 5 + tokens + nnz * (precision == ValuePrecision::kF16 ? 4 : 6));
  out.push_back(static_cast<char>(precision == ValuePrecision::kF16 ? kFormatF16 : kFormatF32));
  AppendVarint(&out, static_cast<uint64_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t)
    AppendVarint(&out, codes.row_offsets[t + 1] - codes.row_offsets[t]);
  for (int64_t t = 0; t < tokens; ++t) {
    uint64_t next = 0;  // smallest index the row may still hold
    for (uint64_t j = codes.row_offsets[t]; j < codes.row_offsets[t + 1]; ++j) {
      AppendVarint(&out, codes.indices[j] - next);
      next = uint64_t{codes.indices[j]} + 1;
    }
  }
  if (precision == ValuePrecision::kF16) {
    for (float v : codes.values) {
      const uint16_t h = FloatToF16(v);
      const char b[2] = {static_cast<char>(h & 0xFF), static_cast<char>(h >> 8)};
      out.append(b, 2);
    }
  } else {
    for (float v : codes.values) {
      uint32_t bits;
      std::memcpy(&bits, &v, sizeof bits);
      const char b[4] = {static_cast<char>(bits), static_cast<char>(bits >> 8),
                         static_cast<char>(bits >> 16), static_cast<char>(bits >> 24)};
      out.append(b, 4);
    }
  }
  return out;
}

absl::StatusOr<StoredCodes> DecodeCodes(absl::string_view bytes, absl::string_view what) {
  if (bytes.empty()) return Malformed(what, "empty");
  const auto format = static_cast<uint8_t>(bytes[0]);
  if (format != kFormatF32 && format != kFormatF16) {
    return Malformed(what, absl::StrCat("unknown format byte ", format));
  }
  bytes.remove_prefix(1);
  StoredCodes out;
  out.precision = format == kFormatF16 ? ValuePrecision::kF16 : ValuePrecision::kF32;
  uint64_t tokens = 0;
  if (!ReadVarintInline(&bytes, &tokens)) return Malformed(what, "truncated token count");
  if (tokens > bytes.size()) return Malformed(what, "token count exceeds the record");
  DocumentCodes& codes = out.codes;
  codes.num_rows = static_cast<int64_t>(tokens);
  codes.row_offsets.resize(tokens + 1);
  for (uint64_t t = 0; t < tokens; ++t) {
    uint64_t nnz = 0;
    if (!ReadVarintInline(&bytes, &nnz)) return Malformed(what, "truncated row length");
    // Each index takes at least one byte: bounds the allocation below.
    if (nnz > bytes.size() || codes.row_offsets[t] + nnz > bytes.size()) {
      return Malformed(what, "row lengths exceed the record");
    }
    codes.row_offsets[t + 1] = codes.row_offsets[t] + nnz;
  }
  const uint64_t total = codes.row_offsets[tokens];
  codes.indices.resize(total);
  for (uint64_t t = 0; t < tokens; ++t) {
    uint64_t next = 0;
    for (uint64_t j = codes.row_offsets[t]; j < codes.row_offsets[t + 1]; ++j) {
      uint64_t delta = 0;
      if (!ReadVarintInline(&bytes, &delta)) return Malformed(what, "truncated index");
      const uint64_t index = next + delta;
      if (delta > 0xFFFFFFFFull || index > 0xFFFFFFFFull) return Malformed(what, "index past u32");
      codes.indices[j] = static_cast<uint32_t>(index);
      next = index + 1;
    }
  }
  const size_t width = format == kFormatF16 ? 2 : 4;
  if (bytes.size() != total * width) {
    return Malformed(what, absl::StrCat(bytes.size(), " value bytes for ", total, " values"));
  }
  codes.values.resize(total);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (uint64_t j = 0; j < total; ++j, p += width) {
    if (width == 2) {
      codes.values[j] = F16ToFloat(static_cast<uint16_t>(p[0] | (p[1] << 8)));
    } else {
      const uint32_t bits =
          uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
      std::memcpy(&codes.values[j], &bits, sizeof bits);
    }
  }
  return out;
}

absl::StatusOr<std::vector<float>> DecodeFeatureValues(absl::string_view bytes, uint32_t feature,
                                                       absl::string_view what) {
  if (bytes.empty()) return Malformed(what, "empty");
  const auto format = static_cast<uint8_t>(bytes[0]);
  if (format != kFormatF32 && format != kFormatF16) {
    return Malformed(what, absl::StrCat("unknown format byte ", format));
  }
  bytes.remove_prefix(1);
  uint64_t tokens = 0;
  if (!ReadVarintInline(&bytes, &tokens)) return Malformed(what, "truncated token count");
  if (tokens > bytes.size()) return Malformed(what, "token count exceeds the record");
  // Row lengths are re-read while walking the indices: remember where they start.
  const absl::string_view lengths_start = bytes;
  uint64_t total = 0;
  for (uint64_t t = 0; t < tokens; ++t) {
    uint64_t nnz = 0;
    if (!ReadVarintInline(&bytes, &nnz)) return Malformed(what, "truncated row length");
    if (nnz > bytes.size() || total + nnz > bytes.size()) {
      return Malformed(what, "row lengths exceed the record");
    }
    total += nnz;
  }
  absl::string_view lengths = lengths_start;
  std::vector<float> values(tokens, 0.0f);
  // (row, position among all values) of the feature's entries.
  std::vector<std::pair<uint64_t, uint64_t>> hits;
  uint64_t j = 0;
  for (uint64_t t = 0; t < tokens; ++t) {
    uint64_t nnz = 0;
    ReadVarintInline(&lengths, &nnz);  // validated above
    uint64_t next = 0;
    for (uint64_t e = 0; e < nnz; ++e, ++j) {
      uint64_t delta = 0;
      if (!ReadVarintInline(&bytes, &delta)) return Malformed(what, "truncated index");
      const uint64_t index = next + delta;
      if (delta > 0xFFFFFFFFull || index > 0xFFFFFFFFull) return Malformed(what, "index past u32");
      if (index == feature) hits.emplace_back(t, j);
      next = index + 1;
    }
  }
  const size_t width = format == kFormatF16 ? 2 : 4;
  if (bytes.size() != total * width) {
    return Malformed(what, absl::StrCat(bytes.size(), " value bytes for ", total, " values"));
  }
  const auto* base = reinterpret_cast<const unsigned char*>(bytes.data());
  for (const auto& [row, at] : hits) {
    const unsigned char* p = base + at * width;
    if (width == 2) {
      values[row] = F16ToFloat(static_cast<uint16_t>(p[0] | (p[1] << 8)));
    } else {
      const uint32_t bits =
          uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
      std::memcpy(&values[row], &bits, sizeof bits);
    }
  }
  return values;
}

}  // namespace saedict::storage
