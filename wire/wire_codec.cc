#include "wire/wire_codec.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "wire/tensor_wire.h"
#include "util/status_macros.h"

namespace saedict::wire {
namespace {

template <typename T>
std::string ToBytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

}  // namespace

absl::StatusOr<DenseRows> DecodeMatrix(const v1::Tensor& tensor, int64_t expected_cols,
                                       absl::string_view field) {
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
  // dtype, byte length and size overflow are the wire layer's checks.
  SAEDICT_ASSIGN_OR_RETURN(std::vector<float> values, wire::TensorToFloats(tensor, field));
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i / cols, ",", i % cols, "] is ",
                                                     values[i], "; values must be finite"));
    }
  }
  return DenseRows{rows, cols, std::move(values)};
}

v1::Tensor EncodeTensor(const std::vector<float>& values, std::vector<int64_t> shape) {
  v1::Tensor t;
  t.set_dtype(v1::DTYPE_F32);
  for (int64_t d : shape) t.add_shape(d);
  t.set_data(ToBytes(values));
  return t;
}

v1::SparseCodes EncodeCodes(const SparseCodes& codes) {
  v1::SparseCodes out;
  out.set_num_rows(codes.num_rows);
  out.set_num_features(codes.num_features);
  out.set_row_offsets(ToBytes(codes.row_offsets));
  out.set_indices(ToBytes(codes.indices));
  out.set_values(ToBytes(codes.values));
  return out;
}

absl::StatusOr<SparseCodes> DecodeCodes(const v1::SparseCodes& codes,
                                                int64_t expected_features) {
  if (codes.num_features() != expected_features) {
    return absl::InvalidArgumentError(absl::StrCat("codes.num_features: ", codes.num_features(),
                                                   " does not match d_sae ", expected_features));
  }
  // Byte lengths and the CSR invariants are the wire layer's checks.
  SAEDICT_ASSIGN_OR_RETURN(wire::CsrCodes csr, wire::CsrFromProto(codes));
  SparseCodes out;
  out.num_rows = csr.num_rows;
  out.num_features = csr.num_features;
  out.row_offsets = std::move(csr.row_offsets);
  out.indices = std::move(csr.indices);
  out.values = std::move(csr.values);
  return out;
}

}  // namespace saedict::wire
