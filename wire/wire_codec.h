// Conversions between wire messages (saedict.v1 Tensor / SparseCodes) and the
// service's value types (dense F32 rows, util's SparseCodes), with the validation the API promises:
// every error is INVALID_ARGUMENT naming the field and the offending value.
//
// Thread safety: pure functions.
#ifndef SAEDICT_WIRE_WIRE_CODEC_H_
#define SAEDICT_WIRE_WIRE_CODEC_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "saedict/v1/saedict.pb.h"
#include "util/sparse_codes.h"

namespace saedict::wire {

struct DenseRows {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> values;  // rows * cols, row-major F32
};

// A [n, expected_cols] tensor of F32/F16/BF16 → F32 rows. Checks dtype,
// rank, the column count, byte length against the shape and finiteness.
// `field` names the request field in messages ("activations").
absl::StatusOr<DenseRows> DecodeMatrix(const v1::Tensor& tensor, int64_t expected_cols,
                                       absl::string_view field);

// F32 tensor of the given shape.
v1::Tensor EncodeTensor(const std::vector<float>& values, std::vector<int64_t> shape);

v1::SparseCodes EncodeCodes(const SparseCodes& codes);

// Wire CSR → engine CSR; checks byte lengths and expected_features, then
// SparseCodes::Validate().
absl::StatusOr<SparseCodes> DecodeCodes(const v1::SparseCodes& codes, int64_t expected_features);

}  // namespace saedict::wire

#endif  // SAEDICT_WIRE_WIRE_CODEC_H_
