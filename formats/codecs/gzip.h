// Gzip (RFC 1952) decompression of an in-memory buffer with zlib, for the
// explanation exports people download (Neuronpedia's batch-N.jsonl.gz).
// Concatenated gzip members are decompressed one after the other (as gunzip
// does). The output is capped: a small file cannot make it allocate without
// bound.
//
// Thread safety: pure functions.
#ifndef SAEDICT_FORMATS_CODECS_GZIP_H_
#define SAEDICT_FORMATS_CODECS_GZIP_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace saedict::formats {

// Whether `bytes` starts with the gzip magic (1f 8b).
bool LooksGzipped(absl::string_view bytes);

// The decompressed bytes. INVALID_ARGUMENT "<label>: ..." for damaged or
// truncated data, RESOURCE_EXHAUSTED when the output would exceed max_bytes.
absl::StatusOr<std::string> Gunzip(absl::string_view compressed, size_t max_bytes,
                                   absl::string_view label);

}  // namespace saedict::formats

#endif  // SAEDICT_FORMATS_CODECS_GZIP_H_
