// Output helpers shared by the CLI commands: enum names, aligned tables and
// key/value blocks for humans, JSON for scripts (`--json`). Protobuf messages
// print as canonical proto3 JSON (snake_case field names, enum names, every
// field present even when zero; int64 fields appear as JSON strings).
//
// Thread safety: pure functions.
#ifndef SAEDICT_CLIENT_COMMANDS_OUTPUT_H_
#define SAEDICT_CLIENT_COMMANDS_OUTPUT_H_

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "formats/codecs/json.h"
#include "google/protobuf/message.h"
#include "saedict/v1/saedict.pb.h"

namespace saedict::client {

// Short lower-case names: "topk", "saelens", "layer_norm", "f16".
std::string ArchitectureName(v1::Architecture a);
std::string SourceFormatName(v1::SourceFormat f);
std::string NormalizationName(v1::Normalization n);
// "queued", "building", "ready", "failed"; "not scheduled" for UNSPECIFIED.
std::string IndexStateName(v1::IndexState s);

// "auto" | "saelens" | "sparsify" | "gemma_scope" | "gemma_scope_2" → SourceFormat.
absl::StatusOr<v1::SourceFormat> ParseSourceFormat(absl::string_view name);

// "512 B", "1.5 MiB (1572864 bytes)", "2.00 GiB (2147483648 bytes)".
std::string FormatBytes(int64_t bytes);

// One line of proto3 JSON, no trailing newline.
std::string MessageToJson(const google::protobuf::Message& message);

using formats::JsonQuote;  // "…" with JSON escapes

// Columns `s` takes on a terminal: UTF-8 code points, not counting ANSI
// escape sequences (every code point is taken as one column wide).
size_t DisplayWidth(absl::string_view s);

// `header` and `rows` as columns separated by two spaces, left-aligned, no
// trailing blanks. Empty cells (and cells missing from short rows) print "-"
// so that every line splits into the same number of fields. Widths are
// DisplayWidth()s, so UTF-8 and ANSI-coloured cells line up.
void WriteTable(std::ostream& out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

// "key:  value" lines with the values aligned; an empty value prints "-".
void WriteKeyValues(std::ostream& out,
                    const std::vector<std::pair<std::string, std::string>>& pairs);

// Every field of a DictionaryInfo as (name, human-readable value).
// "f32", "fast_exact", "bf16".
std::string ComputeModeName(v1::ComputeMode mode);

std::vector<std::pair<std::string, std::string>> DescribeDictionary(const v1::DictionaryInfo& d);

// The similarity index of a dictionary (DictionaryInfo.index) as (name,
// value) pairs: "index" (state, factory, exact or approximate, progress
// while building, the error when failed), its build details when ready,
// "neighbours" (state, per feature, done of `d_sae`) and "encoder_index".
std::vector<std::pair<std::string, std::string>> DescribeIndexStatus(const v1::IndexStatus& s,
                                                                     int64_t d_sae);

}  // namespace saedict::client

#endif  // SAEDICT_CLIENT_COMMANDS_OUTPUT_H_
