// Text rendering of corpus data for the CLI: tokens with their whitespace
// made visible, context windows with the peak token highlighted, and
// histograms as bars.
//
// Highlighting is ANSI (bold, underlined, red) when `ansi` is set, for a
// terminal, and `[[token]]` otherwise, so that logs and tests see it too.
//
// Thread safety: pure functions.
#ifndef SAEDICT_CLIENT_COMMANDS_TEXT_RENDER_H_
#define SAEDICT_CLIENT_COMMANDS_TEXT_RENDER_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "saedict/v1/saedict.pb.h"

namespace saedict::client {

// `token` on one line: newline → ↵, tab → ⇥, carriage return → ␍, other
// control characters → their Unicode control pictures (U+2400...), DEL → ␡.
// Spaces and other characters pass through.
std::string VisibleToken(absl::string_view token);

// Wraps `text` as the highlighted token.
std::string Highlight(absl::string_view text, bool ansi);

// One line of tokens: with display strings, their VisibleToken()s
// concatenated (a token with an empty string shows as <id>); without any,
// the ids separated by spaces. The token at `highlight` (if any) is
// highlighted.
std::string RenderTokenLine(std::span<const int32_t> ids, std::span<const std::string> strings,
                            std::optional<size_t> highlight, bool ansi);

// An example's context window on one line, its peak token highlighted.
std::string RenderContext(const v1::Example& example, bool ansi);

// A document's text for reading: token strings concatenated as they are
// (newlines stay newlines; other control characters are made visible), or
// the ids separated by spaces when there are no strings. The token at
// `highlight` is highlighted (whitespace in it made visible).
std::string RenderDocumentText(const v1::Document& doc, std::optional<size_t> highlight, bool ansi);

// One line per bin: "[lower, upper)  count  ████", columns aligned, the bar
// scaled so that the largest bin gets `bar_width` blocks (a non-empty bin
// gets at least one).
std::vector<std::string> RenderHistogram(
    const google::protobuf::RepeatedPtrField<v1::HistogramBin>& bins, int bar_width = 40);

}  // namespace saedict::client

#endif  // SAEDICT_CLIENT_COMMANDS_TEXT_RENDER_H_
