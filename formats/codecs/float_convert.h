// Conversion between packed little-endian float encodings (F16, BF16, F32,
// F64) and float32 arrays, shared by the safetensors and .npy code.
//
// Thread safety: pure functions.
#ifndef SAEDICT_FORMATS_CODECS_FLOAT_CONVERT_H_
#define SAEDICT_FORMATS_CODECS_FLOAT_CONVERT_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "absl/strings/string_view.h"
#include "util/half.h"

namespace saedict::formats {

static_assert(std::endian::native == std::endian::little,
              "formats/ reads and writes little-endian data by memcpy");

enum class FloatKind { kF16, kBF16, kF32, kF64 };

inline size_t FloatKindSize(FloatKind k) {
  switch (k) {
    case FloatKind::kF16:
    case FloatKind::kBF16:
      return 2;
    case FloatKind::kF32:
      return 4;
    case FloatKind::kF64:
      return 8;
  }
  return 0;
}

// Decodes raw.size() / FloatKindSize(kind) values into out[0..n).
// REQUIRES: raw.size() is a multiple of the element size; out has room.
inline void DecodeFloats(absl::string_view raw, FloatKind kind, float* out) {
  const size_t n = raw.size() / FloatKindSize(kind);
  if (n == 0) return;  // out may be null
  const char* p = raw.data();
  switch (kind) {
    case FloatKind::kF32:
      std::memcpy(out, p, n * 4);
      return;
    case FloatKind::kF64:
      for (size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      return;
    case FloatKind::kF16:
    case FloatKind::kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = kind == FloatKind::kF16 ? F16ToFloat(h) : Bf16ToFloat(h);
      }
      return;
  }
}

// Encodes `values` as packed little-endian `kind` (rounding to nearest even).
inline std::string EncodeFloats(std::span<const float> values, FloatKind kind) {
  std::string out(values.size() * FloatKindSize(kind), '\0');
  char* p = out.data();
  for (size_t i = 0; i < values.size(); ++i) {
    switch (kind) {
      case FloatKind::kF32:
        std::memcpy(p + 4 * i, &values[i], 4);
        break;
      case FloatKind::kF64: {
        const double d = values[i];
        std::memcpy(p + 8 * i, &d, 8);
        break;
      }
      case FloatKind::kF16:
      case FloatKind::kBF16: {
        const uint16_t h = kind == FloatKind::kF16 ? FloatToF16(values[i]) : FloatToBf16(values[i]);
        std::memcpy(p + 2 * i, &h, 2);
        break;
      }
    }
  }
  return out;
}

}  // namespace saedict::formats

#endif  // SAEDICT_FORMATS_CODECS_FLOAT_CONVERT_H_
