// Wire Tensor / SparseCodes conversions; see tensor_wire.h.
#include "wire/tensor_wire.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "util/half.h"

namespace saedict::wire {
namespace {

static_assert(std::endian::native == std::endian::little,
              "saedict wire tensors are little-endian; big-endian hosts need byte swaps");

std::string ShapeString(std::span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

template <typename T>
void AppendRaw(std::string& out, const std::vector<T>& v) {
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Copies `bytes` into a vector of T; the caller has checked the size.
template <typename T>
std::vector<T> FromRaw(const std::string& bytes) {
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

}  // namespace

int64_t DTypeSize(v1::DType dtype) {
  switch (dtype) {
    case v1::DTYPE_F32:
      return 4;
    case v1::DTYPE_F16:
    case v1::DTYPE_BF16:
      return 2;
    default:
      return 0;
  }
}

absl::string_view DTypeName(v1::DType dtype) {
  switch (dtype) {
    case v1::DTYPE_F32:
      return "f32";
    case v1::DTYPE_F16:
      return "f16";
    case v1::DTYPE_BF16:
      return "bf16";
    default:
      return "unspecified";
  }
}

absl::StatusOr<int64_t> NumElements(std::span<const int64_t> shape, absl::string_view field) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": negative dimension in shape ", ShapeString(shape)));
    }
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": element count of shape ", ShapeString(shape), " overflows"));
    }
    n *= d;
  }
  return n;
}

absl::StatusOr<v1::Tensor> FloatsToTensor(std::span<const float> values,
                                          std::span<const int64_t> shape, v1::DType dtype) {
  absl::StatusOr<int64_t> n = NumElements(shape, "tensor");
  if (!n.ok()) return n.status();
  if (*n != static_cast<int64_t>(values.size())) {
    return absl::InvalidArgumentError(absl::StrCat("tensor: shape ", ShapeString(shape), " holds ",
                                                   *n, " elements but ", values.size(),
                                                   " values were given"));
  }
  v1::Tensor t;
  t.set_dtype(dtype);
  for (int64_t d : shape) t.add_shape(d);
  std::string& data = *t.mutable_data();
  switch (dtype) {
    case v1::DTYPE_F32:
      data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
      break;
    case v1::DTYPE_F16:
    case v1::DTYPE_BF16: {
      std::vector<uint16_t> halves(values.size());
      for (size_t i = 0; i < values.size(); ++i) {
        halves[i] = dtype == v1::DTYPE_F16 ? FloatToF16(values[i]) : FloatToBf16(values[i]);
      }
      AppendRaw(data, halves);
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("tensor: unsupported dtype ", static_cast<int>(dtype)));
  }
  return t;
}

absl::StatusOr<v1::Tensor> RawToTensor(absl::string_view bytes, std::span<const int64_t> shape,
                                       v1::DType dtype) {
  const int64_t elem = DTypeSize(dtype);
  if (elem == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor: unsupported dtype ", static_cast<int>(dtype)));
  }
  absl::StatusOr<int64_t> n = NumElements(shape, "tensor");
  if (!n.ok()) return n.status();
  if (*n > std::numeric_limits<int64_t>::max() / elem ||
      *n * elem != static_cast<int64_t>(bytes.size())) {
    return absl::InvalidArgumentError(absl::StrCat("tensor: ", bytes.size(), " bytes of ",
                                                   DTypeName(dtype), " do not match shape ",
                                                   ShapeString(shape)));
  }
  v1::Tensor t;
  t.set_dtype(dtype);
  for (int64_t d : shape) t.add_shape(d);
  t.set_data(bytes.data(), bytes.size());
  return t;
}

absl::StatusOr<std::vector<float>> TensorToFloats(const v1::Tensor& tensor,
                                                  absl::string_view field) {
  const int64_t elem = DTypeSize(tensor.dtype());
  if (elem == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".dtype: ", static_cast<int>(tensor.dtype()), " (", v1::DType_Name(tensor.dtype()),
        ") is not supported; expected DTYPE_F32, DTYPE_F16 or DTYPE_BF16"));
  }
  std::span<const int64_t> shape(tensor.shape().data(), tensor.shape().size());
  absl::StatusOr<int64_t> n = NumElements(shape, field);
  if (!n.ok()) return n.status();
  if (*n > std::numeric_limits<int64_t>::max() / elem) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".shape: ", ShapeString(shape), " is too large (byte size overflows)"));
  }
  if (*n * elem != static_cast<int64_t>(tensor.data().size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".data: ", tensor.data().size(), " bytes, but shape ", ShapeString(shape), " of ",
        v1::DType_Name(tensor.dtype()), " needs ", *n * elem));
  }
  if (tensor.dtype() == v1::DTYPE_F32) return FromRaw<float>(tensor.data());
  std::vector<uint16_t> halves = FromRaw<uint16_t>(tensor.data());
  std::vector<float> out(halves.size());
  for (size_t i = 0; i < halves.size(); ++i) {
    out[i] = tensor.dtype() == v1::DTYPE_F16 ? F16ToFloat(halves[i]) : Bf16ToFloat(halves[i]);
  }
  return out;
}

absl::StatusOr<v1::SparseCodes> CsrToProto(const CsrCodes& codes) {
  if (absl::Status s = codes.Validate(); !s.ok()) return s;
  v1::SparseCodes out;
  out.set_num_rows(codes.num_rows);
  out.set_num_features(codes.num_features);
  AppendRaw(*out.mutable_row_offsets(), codes.row_offsets);
  AppendRaw(*out.mutable_indices(), codes.indices);
  AppendRaw(*out.mutable_values(), codes.values);
  return out;
}

absl::StatusOr<CsrCodes> CsrFromProto(const v1::SparseCodes& codes) {
  // (num_rows + 1) * 8 must not wrap around.
  if (codes.num_rows() < 0 ||
      static_cast<uint64_t>(codes.num_rows()) >= UINT64_MAX / sizeof(uint64_t) - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("codes.num_rows: ", codes.num_rows(), " is out of range"));
  }
  const uint64_t want_offsets = (static_cast<uint64_t>(codes.num_rows()) + 1) * sizeof(uint64_t);
  if (codes.row_offsets().size() != want_offsets) {
    return absl::InvalidArgumentError(
        absl::StrCat("codes.row_offsets: ", codes.row_offsets().size(),
                     " bytes, expected 8 × (num_rows + 1) = ", want_offsets));
  }
  if (codes.indices().size() % sizeof(uint32_t) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("codes.indices: ", codes.indices().size(),
                                                   " bytes is not a whole number of uint32"));
  }
  const uint64_t nnz = codes.indices().size() / sizeof(uint32_t);
  if (codes.values().size() != nnz * sizeof(float)) {
    return absl::InvalidArgumentError(absl::StrCat("codes.values: ", codes.values().size(),
                                                   " bytes, expected nnz × 4 = ", nnz * 4));
  }
  CsrCodes out;
  out.num_rows = codes.num_rows();
  out.num_features = codes.num_features();
  out.row_offsets = FromRaw<uint64_t>(codes.row_offsets());
  out.indices = FromRaw<uint32_t>(codes.indices());
  out.values = FromRaw<float>(codes.values());
  if (absl::Status s = out.Validate(); !s.ok()) return s;
  return out;
}

}  // namespace saedict::wire
