// Internal to formats/: the per-format dictionary loaders behind
// LoadDictionary and the tensor checks they share. Not for use outside
// formats/ (tests excepted).
//
// Thread safety: free functions with no shared state.
#ifndef SAEDICT_FORMATS_LOADER_INTERNAL_H_
#define SAEDICT_FORMATS_LOADER_INTERNAL_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/dictionary.h"
#include "formats/codecs/file_io.h"
#include "formats/codecs/npy.h"
#include "formats/codecs/safetensors.h"
#include "formats/dictionary_loader.h"

namespace saedict::formats::internal {

// Per-format loaders. SAELens and sparsify take the folder; Gemma Scope the
// .npz file itself. Every file is opened through `files` (no loader calls
// ReadFileToString or std::filesystem directly), so LoadOptions::root holds
// for each of them.
absl::StatusOr<LoadedDictionary> LoadSaeLens(const std::filesystem::path& dir,
                                             const FileRoot& files);
absl::StatusOr<LoadedDictionary> LoadSparsify(const std::filesystem::path& dir,
                                              const FileRoot& files);
absl::StatusOr<LoadedDictionary> LoadGemmaScope(const std::filesystem::path& npz,
                                                const FileRoot& files);
// Gemma Scope 2: the folder holding params.safetensors.
absl::StatusOr<LoadedDictionary> LoadGemmaScope2(const std::filesystem::path& dir,
                                                 const FileRoot& files);

// "[64,512]".
std::string ShapeToString(const std::vector<int64_t>& shape);

// INVALID_ARGUMENT "<file>: tensor '<name>' has shape [..], expected [..]".
absl::Status CheckShape(absl::string_view file, absl::string_view name,
                        const std::vector<int64_t>& actual, const std::vector<int64_t>& expected);

// INVALID_ARGUMENT naming the file, tensor, first non-finite value and its index.
absl::Status CheckFinite(absl::string_view file, absl::string_view name,
                         const std::vector<int64_t>& shape, const std::vector<float>& values);

// A float tensor of `st` with the expected shape and finite values.
// Missing tensor: INVALID_ARGUMENT "<file>: missing tensor '<name>'".
absl::StatusOr<std::vector<float>> ReadTensor(const SafetensorsFile& st, absl::string_view name,
                                              const std::vector<int64_t>& expected_shape);
// Like ReadTensor, but nullopt when the tensor is absent.
absl::StatusOr<std::optional<std::vector<float>>> ReadOptionalTensor(
    const SafetensorsFile& st, absl::string_view name, const std::vector<int64_t>& expected_shape);

// The same checks for an .npy array named `name` within `file`.
absl::StatusOr<std::vector<float>> NpyTensor(const NpyArray& array, absl::string_view file,
                                             absl::string_view name,
                                             const std::vector<int64_t>& expected_shape);

// DType of a float tensor on disk (F64 is reported as kF32: read, then rounded).
DType SourceDType(StDType t);

// Row-major [rows, cols] -> [cols, rows].
std::vector<float> Transpose(const std::vector<float>& m, int64_t rows, int64_t cols);

// Folds SAELens's expected_average_only_in scaling factor s into the weights
// (W_enc *= s, W_dec /= s, b_dec /= s; tied matching pursuit: b_dec /= s and
// the residual threshold /= s), as SAELens's fold_activation_norm_scaling_factor.
void FoldActivationScale(engine::Dictionary* d, double s);

// Runs Dictionary::Validate, prefixing any error with `file`.
absl::Status ValidateLoaded(const engine::Dictionary& d, absl::string_view file);

}  // namespace saedict::formats::internal

#endif  // SAEDICT_FORMATS_LOADER_INTERNAL_H_
