// Conversions between client-side vectors and the wire messages of
// saedict.v1: dense Tensor (raw little-endian F32/F16/BF16 bytes + shape) and
// CSR SparseCodes (raw little-endian u64 offsets, u32 indices, F32 values).
// Every check fails with INVALID_ARGUMENT naming the field and the value, so
// a bad server reply or a bad input file is reported, never trusted.
//
// Thread safety: pure functions.
#ifndef SAEDICT_WIRE_TENSOR_WIRE_H_
#define SAEDICT_WIRE_TENSOR_WIRE_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "saedict/v1/saedict.pb.h"
#include "util/sparse_codes.h"

namespace saedict::wire {

// Bytes per element of a wire dtype; 0 for DTYPE_UNSPECIFIED / unknown values.
int64_t DTypeSize(v1::DType dtype);

// Lower-case name: "f32", "f16", "bf16", "unspecified".
absl::string_view DTypeName(v1::DType dtype);

// Number of elements of `shape`; INVALID_ARGUMENT for a negative dimension or
// an element count that overflows int64. `field` names the tensor in messages.
absl::StatusOr<int64_t> NumElements(std::span<const int64_t> shape, absl::string_view field);

// F32 values → a Tensor of `dtype` (F32 copies; F16/BF16 round to nearest
// even). INVALID_ARGUMENT when prod(shape) != values.size() or the dtype is
// unspecified.
absl::StatusOr<v1::Tensor> FloatsToTensor(std::span<const float> values,
                                          std::span<const int64_t> shape, v1::DType dtype);

// Raw little-endian bytes already in `dtype` (e.g. an F16 .npy payload) → a
// Tensor, without conversion. Checks bytes.size() against shape and dtype.
absl::StatusOr<v1::Tensor> RawToTensor(absl::string_view bytes, std::span<const int64_t> shape,
                                       v1::DType dtype);

// Tensor → F32 values (F16/BF16 widened exactly). Checks the dtype and that
// data.size() == prod(shape) * sizeof(dtype). `field` names the tensor.
absl::StatusOr<std::vector<float>> TensorToFloats(const v1::Tensor& tensor,
                                                  absl::string_view field = "tensor");

// The shared CSR type (util/sparse_codes.h) under the client's old name.
using CsrCodes = ::saedict::SparseCodes;

// Validated CsrCodes → wire SparseCodes.
absl::StatusOr<v1::SparseCodes> CsrToProto(const CsrCodes& codes);

// Wire SparseCodes → CsrCodes: checks byte lengths (multiples of the element
// size, offsets == num_rows + 1) and then SparseCodes::Validate.
absl::StatusOr<CsrCodes> CsrFromProto(const v1::SparseCodes& codes);

using ::saedict::AppendRows;

}  // namespace saedict::wire

#endif  // SAEDICT_WIRE_TENSOR_WIRE_H_
