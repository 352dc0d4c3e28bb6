// Value encoding of a forward record (the codes of every token of one
// document under one dictionary):
//   [format u8: 0 = f32, 1 = f16]
//   [varint num_tokens]
//   [varint nnz] x num_tokens
//   [varint index delta] x total nnz   (per row: first index as is, then
//                                       index - previous index - 1)
//   [value] x total nnz                (little-endian f32 or IEEE half)
// Grouping the streams keeps similar bytes together for block compression.
//
// Thread safety: pure functions.
#ifndef SAEDICT_STORAGE_CODES_CODEC_H_
#define SAEDICT_STORAGE_CODES_CODEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/corpus_store.h"

namespace saedict::storage {

void AppendVarint(std::string* out, uint64_t v);
// Reads one varint from the front of *in and advances it; false when
// truncated or longer than 10 bytes.
bool ReadVarint(absl::string_view* in, uint64_t* v);

// REQUIRES: `codes` is well formed (row_offsets start at 0, ascend and end at
// indices.size() == values.size(); indices strictly ascend within a row).
// With kF16 the values are converted with FloatToF16 (callers check they are
// finite in half first).
std::string EncodeCodes(const DocumentCodes& codes, ValuePrecision precision);

// INTERNAL naming `what` when the bytes are malformed (unknown format,
// truncation, trailing bytes, an index past u32).
absl::StatusOr<StoredCodes> DecodeCodes(absl::string_view bytes, absl::string_view what);

// One feature's value at every row of the record (0 where it is inactive),
// num_rows long; the same checks as DecodeCodes, without materializing the
// other features' indices and values (the index scans read many records for
// one feature each).
absl::StatusOr<std::vector<float>> DecodeFeatureValues(absl::string_view bytes, uint32_t feature,
                                                       absl::string_view what);

}  // namespace saedict::storage

#endif  // SAEDICT_STORAGE_CODES_CODEC_H_
