// The input files of `saedict ingest`, read and checked before anything is
// sent, and the packing of documents into batches:
//  - tokens: a 1-D .npy of token ids [T], int32 or int64 (any integer dtype,
//    each id in [0, 2^31));
//  - docs: JSON lines {"doc_id": int, "start": int, "length": int, ...}, one
//    document per line (other keys, such as "text", are ignored; blank lines
//    are skipped); document d is tokens[start, start + length);
//  - vocab: a JSON list of strings, token id → display string.
// Every error names the file (and the line or entry) and the offending value.
//
// Thread safety: free functions with no shared state.
#ifndef SAEDICT_CLIENT_COMMANDS_INGEST_INPUT_H_
#define SAEDICT_CLIENT_COMMANDS_INGEST_INPUT_H_

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace saedict::client {

// One document: tokens [start, start + length) of the token file.
struct DocSpan {
  uint64_t doc_id = 0;
  int64_t start = 0;
  int64_t length = 0;
};

// NOT_FOUND for a missing file, INVALID_ARGUMENT for another rank, a float
// dtype or an id outside [0, 2^31).
absl::StatusOr<std::vector<int32_t>> ReadTokenIds(const std::filesystem::path& path);

// Parses docs.jsonl. INVALID_ARGUMENT "<file>:<line>: ..." for bad JSON, a
// missing or non-integer doc_id / start / length, length < 1, a range past
// `num_tokens`, or a doc_id seen on an earlier line.
absl::StatusOr<std::vector<DocSpan>> ReadDocsJsonl(const std::filesystem::path& path,
                                                   int64_t num_tokens);

// Parses vocab.json (a list of strings). INVALID_ARGUMENT otherwise.
absl::StatusOr<std::vector<std::string>> ReadVocabJson(const std::filesystem::path& path);

// OK when every token of `docs` is < vocab_size; INVALID_ARGUMENT naming
// the first token (document, position, id) otherwise.
absl::Status CheckTokensInVocab(std::span<const int32_t> tokens, std::span<const DocSpan> docs,
                                int64_t vocab_size, const std::string& vocab_label);

// Packs whole documents, in order, into batches of at most `batch_tokens`
// tokens; a document longer than that is a batch of its own. Returns
// [begin, end) ranges of document indices. REQUIRES: batch_tokens > 0.
std::vector<std::pair<size_t, size_t>> PlanBatches(std::span<const DocSpan> docs,
                                                   int64_t batch_tokens);

}  // namespace saedict::client

#endif  // SAEDICT_CLIENT_COMMANDS_INGEST_INPUT_H_
