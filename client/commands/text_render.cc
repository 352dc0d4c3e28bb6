// Text rendering of tokens, contexts and histograms; see text_render.h.
#include "client/commands/text_render.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/commands/cli_util.h"

namespace saedict::client {
namespace {

constexpr absl::string_view kAnsiHighlight = "\x1b[1;4;31m";
constexpr absl::string_view kAnsiReset = "\x1b[0m";
constexpr absl::string_view kBlock = "\u2588";  // █

// U+2400 + c (the control picture of c), UTF-8 encoded. REQUIRES: c < 0x20.
std::string ControlPicture(unsigned char c) {
  const unsigned code = 0x2400 + c;
  std::string out;
  out.push_back(static_cast<char>(0xE0 | (code >> 12)));
  out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
  out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  return out;
}

// Appends `token` with control characters made visible; newlines (and tabs)
// are kept when `keep_layout`.
void AppendVisible(std::string& out, absl::string_view token, bool keep_layout) {
  for (char ch : token) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (keep_layout && (c == '\n' || c == '\t')) {
      out.push_back(ch);
    } else if (c == '\n') {
      absl::StrAppend(&out, "\u21b5");  // ↵
    } else if (c == '\t') {
      absl::StrAppend(&out, "\u21e5");  // ⇥
    } else if (c == '\r') {
      absl::StrAppend(&out, "\u240d");  // ␍
    } else if (c < 0x20) {
      absl::StrAppend(&out, ControlPicture(c));
    } else if (c == 0x7F) {
      absl::StrAppend(&out, "\u2421");  // ␡
    } else {
      out.push_back(ch);
    }
  }
}

bool AnyString(std::span<const std::string> strings) {
  return std::any_of(strings.begin(), strings.end(),
                     [](const std::string& s) { return !s.empty(); });
}

// Token i for display: its string, or <id> when it has none.
std::string TokenText(std::span<const int32_t> ids, std::span<const std::string> strings,
                      size_t i) {
  if (i < strings.size() && !strings[i].empty()) return strings[i];
  return absl::StrCat("<", ids[i], ">");
}

}  // namespace

std::string VisibleToken(absl::string_view token) {
  std::string out;
  AppendVisible(out, token, /*keep_layout=*/false);
  return out;
}

std::string Highlight(absl::string_view text, bool ansi) {
  if (ansi) return absl::StrCat(kAnsiHighlight, text, kAnsiReset);
  return absl::StrCat("[[", text, "]]");
}

std::string RenderTokenLine(std::span<const int32_t> ids, std::span<const std::string> strings,
                            std::optional<size_t> highlight, bool ansi) {
  const bool with_strings = AnyString(strings);
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string text =
        with_strings ? VisibleToken(TokenText(ids, strings, i)) : absl::StrCat(ids[i]);
    if (!with_strings && i > 0) out.push_back(' ');
    absl::StrAppend(&out, highlight == i ? Highlight(text, ansi) : text);
  }
  return out;
}

std::string RenderContext(const v1::Example& example, bool ansi) {
  std::vector<int32_t> ids;
  std::vector<std::string> strings;
  for (const v1::ContextToken& t : example.context()) {
    ids.push_back(t.token_id());
    strings.push_back(t.token());
  }
  std::optional<size_t> peak;
  if (example.peak_index() >= 0 && example.peak_index() < example.context_size()) {
    peak = static_cast<size_t>(example.peak_index());
  }
  return RenderTokenLine(ids, strings, peak, ansi);
}

std::string RenderDocumentText(const v1::Document& doc, std::optional<size_t> highlight,
                               bool ansi) {
  const std::span<const int32_t> ids(doc.token_ids().data(), doc.token_ids_size());
  std::vector<std::string> strings(doc.token_strings().begin(), doc.token_strings().end());
  if (!AnyString(strings)) return RenderTokenLine(ids, strings, highlight, ansi);
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string text = TokenText(ids, strings, i);
    if (highlight == i) {
      absl::StrAppend(&out, Highlight(VisibleToken(text), ansi));
    } else {
      AppendVisible(out, text, /*keep_layout=*/true);
    }
  }
  return out;
}

std::vector<std::string> RenderHistogram(
    const google::protobuf::RepeatedPtrField<v1::HistogramBin>& bins, int bar_width) {
  std::vector<std::string> ranges, counts;
  size_t range_width = 0, count_width = 0;
  int64_t largest = 0;
  for (const v1::HistogramBin& b : bins) {
    ranges.push_back(absl::StrCat("[", FormatValue(b.lower()), ", ", FormatValue(b.upper()), ")"));
    counts.push_back(FormatCount(b.count()));
    range_width = std::max(range_width, ranges.back().size());
    count_width = std::max(count_width, counts.back().size());
    largest = std::max(largest, b.count());
  }
  std::vector<std::string> lines;
  for (int i = 0; i < bins.size(); ++i) {
    int blocks = 0;
    if (largest > 0 && bins[i].count() > 0) {
      blocks = static_cast<int>(std::lround(static_cast<double>(bins[i].count()) * bar_width /
                                            static_cast<double>(largest)));
      blocks = std::max(blocks, 1);
    }
    std::string line = ranges[i] + std::string(range_width - ranges[i].size() + 2, ' ') +
                       std::string(count_width - counts[i].size(), ' ') + counts[i];
    if (blocks > 0) {
      absl::StrAppend(&line, "  ");
      for (int b = 0; b < blocks; ++b) absl::StrAppend(&line, kBlock);
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace saedict::client
