#include "server/wire_codec.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "util/half.h"
#include "util/status_macros.h"

namespace saedict::server {
namespace {

absl::StatusOr<size_t> DTypeSize(v1::DType dtype, absl::string_view field) {
  switch (dtype) {
    case v1::DTYPE_F32:
      return 4;
    case v1::DTYPE_F16:
    case v1::DTYPE_BF16:
      return 2;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".dtype: ", static_cast<int>(dtype), " (", v1::DType_Name(dtype),
                       ") is not supported; expected DTYPE_F32, DTYPE_F16 or DTYPE_BF16"));
  }
}

template <typename T>
std::string ToBytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

template <typename T>
absl::StatusOr<std::vector<T>> FromBytes(const std::string& bytes, uint64_t expected_count,
                                         absl::string_view field) {
  if (bytes.size() != expected_count * sizeof(T)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", bytes.size(), " bytes, expected ",
                                                   expected_count, " × ", sizeof(T), " = ",
                                                   expected_count * sizeof(T)));
  }
  std::vector<T> out(expected_count);
  if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

}  // namespace

absl::StatusOr<DenseRows> DecodeMatrix(const v1::Tensor& tensor, int64_t expected_cols,
                                       absl::string_view field) {
  SAEDICT_ASSIGN_OR_RETURN(const size_t elem, DTypeSize(tensor.dtype(), field));
  if (tensor.shape_size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".shape: [", absl::StrJoin(tensor.shape(), ","), "] has rank ",
                     tensor.shape_size(), "; expected [n, ", expected_cols, "]"));
  }
  const int64_t rows = tensor.shape(0), cols = tensor.shape(1);
  if (rows < 0 || cols != expected_cols) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".shape: [", rows, ",", cols,
                                                   "] does not match d_in ", expected_cols,
                                                   "; expected [n, ", expected_cols, "]"));
  }
  // Checked before multiplying: a hostile shape must not wrap around.
  if (static_cast<uint64_t>(rows) > UINT64_MAX / elem / static_cast<uint64_t>(cols)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".shape: [", rows, ",", cols, "] is too large (byte size overflows)"));
  }
  const uint64_t count = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  if (tensor.data().size() != count * elem) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".data: ", tensor.data().size(), " bytes, but shape [", rows, ",", cols,
                     "] of ", v1::DType_Name(tensor.dtype()), " needs ", count * elem));
  }
  DenseRows out{rows, cols, std::vector<float>(count)};
  const char* src = tensor.data().data();
  for (uint64_t i = 0; i < count; ++i) {
    float v;
    if (tensor.dtype() == v1::DTYPE_F32) {
      std::memcpy(&v, src + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      v = tensor.dtype() == v1::DTYPE_F16 ? F16ToFloat(h) : Bf16ToFloat(h);
    }
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i / cols, ",", i % cols, "] is ", v, "; values must be finite"));
    }
    out.values[i] = v;
  }
  return out;
}

v1::Tensor EncodeTensor(const std::vector<float>& values, std::vector<int64_t> shape) {
  v1::Tensor t;
  t.set_dtype(v1::DTYPE_F32);
  for (int64_t d : shape) t.add_shape(d);
  t.set_data(ToBytes(values));
  return t;
}

v1::SparseCodes EncodeCodes(const engine::SparseCodes& codes) {
  v1::SparseCodes out;
  out.set_num_rows(codes.num_rows);
  out.set_num_features(codes.num_features);
  out.set_row_offsets(ToBytes(codes.row_offsets));
  out.set_indices(ToBytes(codes.indices));
  out.set_values(ToBytes(codes.values));
  return out;
}

absl::StatusOr<engine::SparseCodes> DecodeCodes(const v1::SparseCodes& codes,
                                                int64_t expected_features) {
  if (codes.num_features() != expected_features) {
    return absl::InvalidArgumentError(absl::StrCat("codes.num_features: ", codes.num_features(),
                                                   " does not match d_sae ", expected_features));
  }
  // (num_rows + 1) * 8 must not wrap around.
  if (codes.num_rows() < 0 ||
      static_cast<uint64_t>(codes.num_rows()) >= UINT64_MAX / sizeof(uint64_t) - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("codes.num_rows: ", codes.num_rows(), " is out of range"));
  }
  engine::SparseCodes out;
  out.num_rows = codes.num_rows();
  out.num_features = codes.num_features();
  SAEDICT_ASSIGN_OR_RETURN(
      out.row_offsets,
      FromBytes<uint64_t>(codes.row_offsets(), static_cast<uint64_t>(codes.num_rows()) + 1,
                          "codes.row_offsets"));
  const uint64_t nnz = codes.indices().size() / sizeof(uint32_t);
  SAEDICT_ASSIGN_OR_RETURN(out.indices, FromBytes<uint32_t>(codes.indices(), nnz, "codes.indices"));
  SAEDICT_ASSIGN_OR_RETURN(out.values, FromBytes<float>(codes.values(), nnz, "codes.values"));
  SAEDICT_RETURN_IF_ERROR(out.Validate());
  return out;
}

}  // namespace saedict::server
