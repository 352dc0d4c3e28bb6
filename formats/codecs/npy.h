// NumPy .npy reader and writer: format versions 1.0, 2.0 and 3.0, C order
// only, little-endian numeric dtypes ('<f2' '<f4' '<f8', '<i1'..'<i8',
// '<u1'..'<u8', '|b1'; 1-byte types may use '|'). Fortran order, big-endian,
// structured and object dtypes are rejected. Files are untrusted: headers,
// shapes and data sizes are checked, and errors name the file (its label).
//
// Thread safety: free functions with no shared state; NpyArray is a plain value.
#ifndef SAEDICT_FORMATS_CODECS_NPY_H_
#define SAEDICT_FORMATS_CODECS_NPY_H_

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace saedict::formats {

enum class NpyDType { kBool, kU8, kI8, kU16, kI16, kU32, kI32, kU64, kI64, kF16, kF32, kF64 };

const char* NpyDescr(NpyDType t);  // the descr numpy writes: "<f4", "|u1", "|b1", ...
size_t NpyDTypeSize(NpyDType t);   // bytes per element

// One array: dtype, shape (empty for a 0-d scalar) and the raw little-endian
// C-order element bytes (NumElements() * NpyDTypeSize(dtype) of them).
struct NpyArray {
  NpyDType dtype = NpyDType::kF32;
  std::vector<int64_t> shape;
  std::string data;
  uint64_t NumElements() const;  // product of shape; 1 for a scalar
};

// Parses a whole .npy file. `label` (normally the path) names the file in
// errors, which are INVALID_ARGUMENT. The by-value overload reuses the buffer.
absl::StatusOr<NpyArray> ParseNpy(std::string bytes, absl::string_view label);
// ReadFileToString + ParseNpy; NOT_FOUND when the file is missing.
absl::StatusOr<NpyArray> ReadNpyFile(const std::filesystem::path& path);

// The .npy bytes (version 1.0, or 2.0 when the header needs it), header
// padded to 64 bytes as numpy does. INVALID_ARGUMENT when data.size() does
// not match the shape or a dimension is negative.
absl::StatusOr<std::string> SerializeNpy(const NpyArray& array);
// SerializeNpy written atomically (temp file + rename).
absl::Status WriteNpyFile(const std::filesystem::path& path, const NpyArray& array);

// Element conversion. NpyToFloat32 accepts f2/f4/f8 (f8 rounds to nearest
// float); NpyToInt64 accepts the integer and bool dtypes (u8 values above
// INT64_MAX are an error). Other dtypes: INVALID_ARGUMENT naming `label`.
absl::StatusOr<std::vector<float>> NpyToFloat32(const NpyArray& array, absl::string_view label);
absl::StatusOr<std::vector<int64_t>> NpyToInt64(const NpyArray& array, absl::string_view label);

// Builders. REQUIRES: values.size() equals the product of shape.
NpyArray NpyFromFloat32(std::vector<int64_t> shape, std::span<const float> values);
NpyArray NpyFromInt32(std::vector<int64_t> shape, std::span<const int32_t> values);
NpyArray NpyFromInt64(std::vector<int64_t> shape, std::span<const int64_t> values);

}  // namespace saedict::formats

#endif  // SAEDICT_FORMATS_CODECS_NPY_H_
