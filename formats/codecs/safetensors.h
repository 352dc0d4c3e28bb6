// Reader and writer for the safetensors format: an 8-byte little-endian
// header length N, N bytes of JSON {name: {dtype, shape, data_offsets},
// "__metadata__": {string: string}}, then the tensor bytes. The reader treats
// the file as untrusted: it rejects truncation, a header longer than the file,
// bad JSON, unknown dtypes, negative or overflowing shapes, offsets outside
// the data or overlapping, and byte ranges that do not match shape × dtype.
// Every message names the file (its label) and the tensor.
//
// Thread safety: a SafetensorsFile is immutable after Parse; const methods
// may be called from many threads. Free functions have no shared state.
#ifndef SAEDICT_FORMATS_CODECS_SAFETENSORS_H_
#define SAEDICT_FORMATS_CODECS_SAFETENSORS_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "formats/codecs/file_io.h"

namespace saedict::formats {

enum class StDType {
  kBool,
  kU8,
  kI8,
  kF8E4M3,
  kF8E5M2,
  kU16,
  kI16,
  kF16,
  kBF16,
  kU32,
  kI32,
  kF32,
  kU64,
  kI64,
  kF64,
};

const char* StDTypeName(StDType t);  // "F32", "BF16", ... as in the header
size_t StDTypeSize(StDType t);       // bytes per element
// INVALID_ARGUMENT "unknown dtype" for anything but the names above.
absl::StatusOr<StDType> ParseStDType(absl::string_view name);

struct SafetensorInfo {
  std::string name;
  StDType dtype = StDType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte range within the data section (after the header)
  uint64_t end = 0;
  uint64_t NumElements() const;  // product of shape; 1 for a scalar
};

class SafetensorsFile {
 public:
  // Validates `bytes`, the whole file. `label` (normally the path) names the
  // file in error messages. Errors are INVALID_ARGUMENT.
  static absl::StatusOr<SafetensorsFile> Parse(std::string bytes, std::string label);
  // files.ReadFile + Parse; NOT_FOUND when the file is missing,
  // PERMISSION_DENIED when `files` confines reads and the path leads out.
  static absl::StatusOr<SafetensorsFile> Read(const std::filesystem::path& path,
                                              const FileRoot& files = FileRoot::Unrestricted());

  const std::string& label() const { return label_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::vector<SafetensorInfo>& tensors() const { return tensors_; }  // by name
  const SafetensorInfo* Find(absl::string_view name) const;                // nullptr when absent
  absl::string_view Data(const SafetensorInfo& t) const;                   // the tensor's raw bytes

  // The tensor as float32, converted from F32, F16, BF16 or F64.
  // INVALID_ARGUMENT naming the file and tensor when it is missing or has
  // another dtype.
  absl::StatusOr<std::vector<float>> ReadF32(absl::string_view name) const;

 private:
  SafetensorsFile() = default;
  std::string bytes_;
  std::string label_;
  size_t data_start_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorInfo> tensors_;
};

// One tensor to write; `data` must hold exactly NumElements × StDTypeSize bytes.
struct SafetensorToWrite {
  std::string name;
  StDType dtype = StDType::kF32;
  std::vector<int64_t> shape;
  absl::string_view data;
};

// The file's bytes: tensors laid out contiguously in the order given, the
// header padded with spaces to a multiple of 8 bytes. INVALID_ARGUMENT on a
// duplicate or reserved name, a negative dimension or a data size mismatch.
absl::StatusOr<std::string> SerializeSafetensors(
    const std::vector<SafetensorToWrite>& tensors,
    const std::map<std::string, std::string>& metadata = {});

// SerializeSafetensors written atomically (see WriteFileAtomically).
absl::Status WriteSafetensorsFile(const std::filesystem::path& path,
                                  const std::vector<SafetensorToWrite>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

}  // namespace saedict::formats

#endif  // SAEDICT_FORMATS_CODECS_SAFETENSORS_H_
