// SparseCodes: the one CSR value type for sparse latents, shared by every
// layer — the engine's encode output, the wire codec, the client library
// and the corpus store's per-document codes (engine::SparseCodes,
// client::CsrCodes and storage::DocumentCodes are this type under their
// layer's name). A plain value type: not synchronised (confine to one thread
// or share as const).
//
// Invariants (checked by Validate(), once at each boundary where codes come
// from outside: the wire, a stored record, a caller of the store):
// row_offsets has num_rows + 1 entries, starts at 0, is monotone and ends at
// nnz; indices ascend strictly within a row and are < num_features; values
// are finite and as many as indices.
#ifndef SAEDICT_UTIL_SPARSE_CODES_H_
#define SAEDICT_UTIL_SPARSE_CODES_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace saedict {

struct SparseCodes {
  int64_t num_rows = 0;
  int64_t num_features = 0;                 // d_sae
  std::vector<uint64_t> row_offsets = {0};  // num_rows + 1 entries, row_offsets[0] == 0
  std::vector<uint32_t> indices;            // ascending within each row
  std::vector<float> values;                // same length as indices

  int64_t nnz() const { return static_cast<int64_t>(indices.size()); }

  // OK when the invariants above hold; INVALID_ARGUMENT naming the first
  // offending row or entry ("codes: row R feature F ...") otherwise.
  absl::Status Validate() const;

  // The value of `feature` in `row` (binary search), 0 when inactive.
  // REQUIRES: 0 <= row < num_rows and the invariants.
  float ValueAt(int64_t row, uint32_t feature) const;
};

// Rows [begin, end) of `codes` as codes of their own (offsets rebased to 0).
// REQUIRES: 0 <= begin <= end <= codes.num_rows and the invariants.
SparseCodes SliceRows(const SparseCodes& codes, int64_t begin, int64_t end);

// Appends the rows of `tail` to `head` (results that arrive in chunks). An
// empty head (no rows) adopts tail's num_features. INVALID_ARGUMENT when
// num_features differ or tail's offsets are inconsistent.
absl::Status AppendRows(SparseCodes& head, const SparseCodes& tail);

}  // namespace saedict

#endif  // SAEDICT_UTIL_SPARSE_CODES_H_
