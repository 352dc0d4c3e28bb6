// Activation .npy and codes .npz files of the CLI; see array_files.h.
#include "client/commands/array_files.h"

#include <cstring>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "formats/codecs/npy.h"
#include "formats/codecs/npz.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

using formats::NpyArray;
using formats::NpyDType;

template <typename T>
NpyArray RawArray(NpyDType dtype, std::vector<int64_t> shape, const std::vector<T>& values) {
  NpyArray a;
  a.dtype = dtype;
  a.shape = std::move(shape);
  a.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  return a;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// The named 1-D array of `arrays`, or INVALID_ARGUMENT naming the file.
absl::StatusOr<const NpyArray*> Get1D(const std::map<std::string, NpyArray>& arrays,
                                      const std::string& file, const std::string& name) {
  auto it = arrays.find(name);
  if (it == arrays.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": no array '", name, "' (want row_offsets, indices, values, shape)"));
  }
  if (it->second.shape.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        file, ": array '", name, "' must be 1-D, has shape ", ShapeString(it->second.shape)));
  }
  return &it->second;
}

// Integers of a 1-D array, each checked to lie in [0, max].
template <typename T>
absl::StatusOr<std::vector<T>> ReadIndexArray(const std::map<std::string, NpyArray>& arrays,
                                              const std::string& file, const std::string& name,
                                              int64_t max) {
  SAEDICT_ASSIGN_OR_RETURN(const NpyArray* a, Get1D(arrays, file, name));
  const std::string label = absl::StrCat(file, ": ", name);
  SAEDICT_ASSIGN_OR_RETURN(std::vector<int64_t> wide, formats::NpyToInt64(*a, label));
  std::vector<T> out(wide.size());
  for (size_t i = 0; i < wide.size(); ++i) {
    if (wide[i] < 0 || wide[i] > max) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, "[", i, "] = ", wide[i], " is out of range [0, ", max, "]"));
    }
    out[i] = static_cast<T>(wide[i]);
  }
  return out;
}

}  // namespace

absl::StatusOr<Activations> ReadActivationsNpy(const std::filesystem::path& path) {
  SAEDICT_ASSIGN_OR_RETURN(NpyArray array, formats::ReadNpyFile(path));
  const std::string file = path.string();
  Activations out;
  if (array.shape.size() == 2) {
    out.rows = array.shape[0];
    out.cols = array.shape[1];
  } else if (array.shape.size() == 1) {
    out.rows = 1;
    out.cols = array.shape[0];
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        file, ": activations must have shape [n, d_in], got ", ShapeString(array.shape)));
  }
  switch (array.dtype) {
    case NpyDType::kF32:
      out.dtype = v1::DTYPE_F32;
      out.data = std::move(array.data);
      break;
    case NpyDType::kF16:
      out.dtype = v1::DTYPE_F16;
      out.data = std::move(array.data);
      break;
    case NpyDType::kF64: {
      SAEDICT_ASSIGN_OR_RETURN(std::vector<float> f, formats::NpyToFloat32(array, file));
      out.dtype = v1::DTYPE_F32;
      out.data.assign(reinterpret_cast<const char*>(f.data()), f.size() * sizeof(float));
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(file, ": activations have dtype ",
                                                     formats::NpyDescr(array.dtype),
                                                     "; want float32, float16 or float64"));
  }
  return out;
}

absl::Status WriteCodesNpz(const std::filesystem::path& path, const wire::CsrCodes& codes,
                           const EncodeExtras& extras) {
  std::map<std::string, NpyArray> arrays;
  arrays["row_offsets"] = RawArray(NpyDType::kU64, {codes.num_rows + 1}, codes.row_offsets);
  arrays["indices"] = RawArray(NpyDType::kU32, {codes.nnz()}, codes.indices);
  arrays["values"] = formats::NpyFromFloat32({codes.nnz()}, codes.values);
  const int64_t shape[2] = {codes.num_rows, codes.num_features};
  arrays["shape"] = formats::NpyFromInt64({2}, shape);
  if (!extras.reconstruction.empty()) {
    arrays["reconstruction"] =
        formats::NpyFromFloat32({codes.num_rows, extras.d_in}, extras.reconstruction);
  }
  if (!extras.row_error.empty()) {
    arrays["row_error"] = formats::NpyFromFloat32({codes.num_rows}, extras.row_error);
  }
  return formats::WriteNpzFile(path, arrays);
}

absl::StatusOr<wire::CsrCodes> ReadCodesNpz(const std::filesystem::path& path) {
  SAEDICT_ASSIGN_OR_RETURN(auto arrays, formats::ReadNpzFile(path));
  const std::string file = path.string();
  SAEDICT_ASSIGN_OR_RETURN(
      std::vector<int64_t> shape,
      ReadIndexArray<int64_t>(arrays, file, "shape", std::numeric_limits<int64_t>::max() - 1));
  if (shape.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": shape must hold 2 values (n, d_sae), has ", shape.size()));
  }
  wire::CsrCodes codes;
  codes.num_rows = shape[0];
  codes.num_features = shape[1];
  SAEDICT_ASSIGN_OR_RETURN(
      codes.row_offsets,
      ReadIndexArray<uint64_t>(arrays, file, "row_offsets", std::numeric_limits<int64_t>::max()));
  SAEDICT_ASSIGN_OR_RETURN(
      codes.indices,
      ReadIndexArray<uint32_t>(arrays, file, "indices", std::numeric_limits<uint32_t>::max()));
  SAEDICT_ASSIGN_OR_RETURN(const NpyArray* values, Get1D(arrays, file, "values"));
  SAEDICT_ASSIGN_OR_RETURN(codes.values,
                           formats::NpyToFloat32(*values, absl::StrCat(file, ": values")));
  if (absl::Status s = codes.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", s.message()));
  }
  return codes;
}

absl::Status WriteMatrixNpy(const std::filesystem::path& path, int64_t rows, int64_t cols,
                            const std::vector<float>& values) {
  return formats::WriteNpyFile(path, formats::NpyFromFloat32({rows, cols}, values));
}

}  // namespace saedict::client
