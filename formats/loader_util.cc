// Tensor checks and weight folding shared by the dictionary loaders
// (see loader_internal.h).
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "formats/loader_internal.h"
#include "util/status_macros.h"

namespace saedict::formats::internal {

std::string ShapeToString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

absl::Status CheckShape(absl::string_view file, absl::string_view name,
                        const std::vector<int64_t>& actual, const std::vector<int64_t>& expected) {
  if (actual == expected) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(file, ": tensor '", name, "' has shape ",
                                                 ShapeToString(actual), ", expected ",
                                                 ShapeToString(expected)));
}

absl::Status CheckFinite(absl::string_view file, absl::string_view name,
                         const std::vector<int64_t>& shape, const std::vector<float>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isfinite(values[i])) continue;
    // The multi-index of flat index i, e.g. [3,17].
    std::vector<int64_t> index(shape.size());
    uint64_t rest = i;
    for (size_t d = shape.size(); d-- > 0;) {
      index[d] = static_cast<int64_t>(rest % static_cast<uint64_t>(shape[d]));
      rest /= static_cast<uint64_t>(shape[d]);
    }
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": tensor '", name, "' has non-finite value ", values[i], " at index ",
                     ShapeToString(index), " (flat ", i, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::vector<float>>> ReadOptionalTensor(
    const SafetensorsFile& st, absl::string_view name, const std::vector<int64_t>& expected_shape) {
  const SafetensorInfo* info = st.Find(name);
  if (info == nullptr) return std::optional<std::vector<float>>();
  SAEDICT_RETURN_IF_ERROR(CheckShape(st.label(), name, info->shape, expected_shape));
  SAEDICT_ASSIGN_OR_RETURN(std::vector<float> values, st.ReadF32(name));
  SAEDICT_RETURN_IF_ERROR(CheckFinite(st.label(), name, info->shape, values));
  return std::optional<std::vector<float>>(std::move(values));
}

absl::StatusOr<std::vector<float>> ReadTensor(const SafetensorsFile& st, absl::string_view name,
                                              const std::vector<int64_t>& expected_shape) {
  SAEDICT_ASSIGN_OR_RETURN(std::optional<std::vector<float>> values,
                           ReadOptionalTensor(st, name, expected_shape));
  if (!values) {
    return absl::InvalidArgumentError(absl::StrCat(st.label(), ": missing tensor '", name, "'"));
  }
  return std::move(*values);
}

absl::StatusOr<std::vector<float>> NpyTensor(const NpyArray& array, absl::string_view file,
                                             absl::string_view name,
                                             const std::vector<int64_t>& expected_shape) {
  SAEDICT_RETURN_IF_ERROR(CheckShape(file, name, array.shape, expected_shape));
  SAEDICT_ASSIGN_OR_RETURN(std::vector<float> values,
                           NpyToFloat32(array, absl::StrCat(file, ": array '", name, "'")));
  SAEDICT_RETURN_IF_ERROR(CheckFinite(file, name, array.shape, values));
  return values;
}

DType SourceDType(StDType t) {
  switch (t) {
    case StDType::kF16:
      return DType::kF16;
    case StDType::kBF16:
      return DType::kBF16;
    default:
      return DType::kF32;
  }
}

std::vector<float> Transpose(const std::vector<float>& m, int64_t rows, int64_t cols) {
  std::vector<float> out(m.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = m[r * cols + c];
  }
  return out;
}

void FoldActivationScale(engine::Dictionary* d, double s) {
  const float sf = static_cast<float>(s);
  for (float& v : d->b_dec) v /= sf;
  if (d->config.architecture == engine::Architecture::kMatchingPursuit) {
    // Tied: scaling the input scales the codes, not the atoms.
    d->config.mp_residual_threshold /= sf;
    return;
  }
  for (float& v : d->w_enc) v *= sf;
  for (float& v : d->w_dec) v /= sf;
}

absl::Status ValidateLoaded(const engine::Dictionary& d, absl::string_view file) {
  absl::Status s = d.Validate();
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(file, ": ", s.message()));
}

}  // namespace saedict::formats::internal
