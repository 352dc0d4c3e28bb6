// SparseCodes: structural validation of a CSR batch.
#include "engine/sparse_codes.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace saedict::engine {

absl::Status SparseCodes::Validate() const {
  if (num_rows < 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_rows must be >= 0, got ", num_rows));
  }
  if (num_features < 0 || num_features > (int64_t{1} << 32)) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_features must be in [0, 2^32], got ", num_features));
  }
  if (static_cast<int64_t>(row_offsets.size()) != num_rows + 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("row_offsets has ", row_offsets.size(),
                     " entries, expected num_rows + 1 = ", num_rows + 1));
  }
  if (row_offsets[0] != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("row_offsets[0] must be 0, got ", row_offsets[0]));
  }
  if (values.size() != indices.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("values has ", values.size(), " entries but indices has ", indices.size()));
  }
  if (row_offsets.back() != indices.size()) {
    return absl::InvalidArgumentError(absl::StrCat("row_offsets[num_rows] = ", row_offsets.back(),
                                                   " but there are ", indices.size(), " entries"));
  }
  for (int64_t r = 0; r < num_rows; ++r) {
    const uint64_t begin = row_offsets[r];
    const uint64_t end = row_offsets[r + 1];
    if (end < begin || end > indices.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "row ", r, ": row_offsets not monotone or out of range (", begin, ", ", end, ")"));
    }
    for (uint64_t e = begin; e < end; ++e) {
      if (indices[e] >= num_features) {
        return absl::InvalidArgumentError(absl::StrCat(
            "row ", r, " entry ", e, ": feature ", indices[e], " >= num_features ", num_features));
      }
      if (e > begin && indices[e] <= indices[e - 1]) {
        return absl::InvalidArgumentError(
            absl::StrCat("row ", r, " entry ", e, ": feature ", indices[e],
                         " does not ascend strictly after ", indices[e - 1]));
      }
      if (!std::isfinite(values[e])) {
        return absl::InvalidArgumentError(
            absl::StrCat("row ", r, " entry ", e, ": non-finite value ", values[e]));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace saedict::engine
