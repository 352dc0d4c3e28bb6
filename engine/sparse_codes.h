// SparseCodes: CSR sparse latents of a batch of tokens. A plain value type;
// not synchronised (confine to one thread or share as const).
#ifndef SAEDICT_ENGINE_SPARSE_CODES_H_
#define SAEDICT_ENGINE_SPARSE_CODES_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace saedict::engine {

struct SparseCodes {
  int64_t num_rows = 0;
  int64_t num_features = 0;           // d_sae
  std::vector<uint64_t> row_offsets;  // num_rows + 1 entries, row_offsets[0] == 0
  std::vector<uint32_t> indices;      // ascending within each row
  std::vector<float> values;          // same length as indices

  // OK when offsets are monotone and consistent with indices/values, indices
  // ascend strictly within a row and are < num_features, values are finite.
  // INVALID_ARGUMENT naming the first offending row/entry otherwise.
  absl::Status Validate() const;
  int64_t nnz() const { return static_cast<int64_t>(indices.size()); }
};

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_SPARSE_CODES_H_
