// CLI output helpers; see output.h.
#include "client/commands/output.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "wire/tensor_wire.h"
#include "google/protobuf/util/json_util.h"

namespace saedict::client {
namespace {

// The enum value's name without `prefix`, lower-cased: ARCHITECTURE_TOPK → topk.
template <typename Enum>
std::string ShortName(const std::string& full, absl::string_view prefix, Enum value) {
  if (full.empty()) return absl::StrCat("unknown(", static_cast<int>(value), ")");
  absl::string_view s(full);
  absl::ConsumePrefix(&s, prefix);
  return absl::AsciiStrToLower(s);
}

}  // namespace

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  const double mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
  if (mib < 1024) return absl::StrFormat("%.1f MiB (%d bytes)", mib, bytes);
  return absl::StrFormat("%.2f GiB (%d bytes)", mib / 1024.0, bytes);
}

std::string ArchitectureName(v1::Architecture a) {
  return ShortName(v1::Architecture_Name(a), "ARCHITECTURE_", a);
}
std::string SourceFormatName(v1::SourceFormat f) {
  return ShortName(v1::SourceFormat_Name(f), "SOURCE_FORMAT_", f);
}
std::string NormalizationName(v1::Normalization n) {
  return ShortName(v1::Normalization_Name(n), "NORMALIZATION_", n);
}

std::string IndexStateName(v1::IndexState s) {
  if (s == v1::INDEX_STATE_UNSPECIFIED) return "not scheduled";
  return ShortName(v1::IndexState_Name(s), "INDEX_STATE_", s);
}

absl::StatusOr<v1::SourceFormat> ParseSourceFormat(absl::string_view name) {
  for (v1::SourceFormat f : {v1::SOURCE_FORMAT_AUTO, v1::SOURCE_FORMAT_SAELENS,
                             v1::SOURCE_FORMAT_SPARSIFY, v1::SOURCE_FORMAT_GEMMA_SCOPE,
                             v1::SOURCE_FORMAT_GEMMA_SCOPE_2}) {
    if (SourceFormatName(f) == name) return f;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--format wants auto, saelens, sparsify, gemma_scope or gemma_scope_2, got '", name, "'"));
}

std::string MessageToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  // Printing a well-formed message cannot fail; an empty object is the fallback.
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

size_t DisplayWidth(absl::string_view s) {
  size_t width = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0x1b && i + 1 < s.size() && s[i + 1] == '[') {  // CSI: ESC [ params final
      i += 2;
      while (i < s.size() && !(s[i] >= 0x40 && s[i] <= 0x7e)) ++i;
      continue;
    }
    if ((c & 0xC0) != 0x80) ++width;  // not a UTF-8 continuation byte
  }
  return width;
}

void WriteTable(std::ostream& out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) width[c] = DisplayWidth(header[c]);
  for (const auto& row : rows) {
    for (size_t c = 0; c < header.size() && c < row.size(); ++c) {
      width[c] = std::max(width[c], std::max<size_t>(DisplayWidth(row[c]), 1));
    }
  }
  auto write_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t c = 0; c < header.size(); ++c) {
      const std::string cell = c < row.size() && !row[c].empty() ? row[c] : "-";
      if (c + 1 < header.size()) {
        absl::StrAppend(&line, cell, std::string(width[c] - DisplayWidth(cell) + 2, ' '));
      } else {
        absl::StrAppend(&line, cell);
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  };
  write_row(header);
  for (const auto& row : rows) write_row(row);
}

void WriteKeyValues(std::ostream& out,
                    const std::vector<std::pair<std::string, std::string>>& pairs) {
  size_t width = 0;
  for (const auto& [key, value] : pairs) width = std::max(width, key.size() + 1);
  for (const auto& [key, value] : pairs) {
    out << key << ":" << std::string(width - key.size() - 1 + 2, ' ')
        << (value.empty() ? "-" : value) << "\n";
  }
}

std::string ComputeModeName(v1::ComputeMode mode) {
  switch (mode) {
    case v1::COMPUTE_MODE_BF16:
      return "bf16";
    case v1::COMPUTE_MODE_FAST_EXACT:
      return "fast_exact";
    default:
      return "f32";
  }
}


std::vector<std::pair<std::string, std::string>> DescribeDictionary(const v1::DictionaryInfo& d) {
  std::vector<std::pair<std::string, std::string>> kv = {
      {"id", d.id()},
      {"model", d.model_name()},
      {"hook", d.hook_name()},
      {"architecture", ArchitectureName(d.architecture())},
      {"d_in", absl::StrCat(d.d_in())},
      {"d_sae", absl::StrCat(d.d_sae())},
      {"k", absl::StrCat(d.k())},
      {"normalization", NormalizationName(d.normalization())},
      {"apply_b_dec_to_input", d.apply_b_dec_to_input() ? "true" : "false"},
      {"rescale_acts_by_decoder_norm", d.rescale_acts_by_decoder_norm() ? "true" : "false"},
  };
  if (d.architecture() == v1::ARCHITECTURE_MATCHING_PURSUIT) {
    kv.emplace_back("mp_residual_threshold", absl::StrCat(d.mp_residual_threshold()));
  }
  if (d.matryoshka_widths_size() > 0) {
    kv.emplace_back("matryoshka_widths", absl::StrJoin(d.matryoshka_widths(), ","));
  }
  if (d.d_out() > 0) {  // a transcoder: decodes to another hook
    kv.emplace_back("transcoder", d.skip_connection() ? "skip (W_skip)" : "yes");
    kv.emplace_back("d_out", absl::StrCat(d.d_out()));
    kv.emplace_back("hook_out", d.hook_name_out());
  }
  kv.emplace_back("format", SourceFormatName(d.source_format()));
  kv.emplace_back("source_path", d.source_path());
  kv.emplace_back("source_dtype", std::string(wire::DTypeName(d.source_dtype())));
  kv.emplace_back("weight_bytes", FormatBytes(d.weight_bytes()));
  kv.emplace_back("default_compute_mode", ComputeModeName(d.default_compute_mode()));
  kv.emplace_back("fast_exact", d.fast_exact_ready()
                                    ? absl::StrCat("ready, ", d.fast_exact_screen(), " screen, ",
                                                   FormatBytes(d.fast_exact_bytes()))
                                    : "not available (runs f32)");
  if (d.has_loaded_at()) {
    const absl::Time t =
        absl::FromUnixSeconds(d.loaded_at().seconds()) + absl::Nanoseconds(d.loaded_at().nanos());
    kv.emplace_back("loaded_at", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone()));
  }
  return kv;
}

std::vector<std::pair<std::string, std::string>> DescribeIndexStatus(const v1::IndexStatus& s,
                                                                     int64_t d_sae) {
  std::string index = IndexStateName(s.state());
  if (s.state() == v1::INDEX_STATE_BUILDING) {
    absl::StrAppendFormat(&index, " (%.0f%%)", 100.0 * s.progress());
  }
  if (!s.factory().empty()) {
    absl::StrAppend(&index, ", ", s.factory(), s.exact() ? " (exact)" : " (approximate)");
  }
  std::vector<std::pair<std::string, std::string>> kv = {{"index", index}};
  if (!s.error().empty()) kv.emplace_back("index_error", s.error());
  if (s.state() == v1::INDEX_STATE_READY) {
    kv.emplace_back("index_source", s.loaded_from_disk()
                                        ? "read from disk"
                                        : absl::StrFormat("built in %.3g s", s.build_seconds()));
    kv.emplace_back("index_memory", FormatBytes(s.memory_bytes()));
  }
  std::string neighbours = IndexStateName(s.neighbours_state());
  if (s.neighbours_per_feature() > 0) {
    absl::StrAppend(&neighbours, ", ", s.neighbours_per_feature(), " per feature");
  }
  if (s.neighbours_state() == v1::INDEX_STATE_BUILDING ||
      (s.neighbours_state() == v1::INDEX_STATE_READY && s.neighbours_done() != d_sae)) {
    absl::StrAppend(&neighbours, ", ", s.neighbours_done(), " of ", d_sae, " features done");
  }
  if (s.neighbours_state() == v1::INDEX_STATE_READY && s.neighbours_seconds() > 0) {
    absl::StrAppendFormat(&neighbours, " in %.3g s", s.neighbours_seconds());
  }
  kv.emplace_back("neighbours", neighbours);
  kv.emplace_back("encoder_index", s.encoder_state() == v1::INDEX_STATE_UNSPECIFIED
                                       ? "not built (built by the first encoder search)"
                                       : IndexStateName(s.encoder_state()));
  return kv;
}

}  // namespace saedict::client
