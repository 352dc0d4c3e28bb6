// Small helpers shared by the corpus commands (ingest, doc, feature,
// checkpoint): terminal detection, argument checks that fail as InputError
// (exit 2, see command.h) and number formatting.
//
// Thread safety: pure functions (IsTerminal reads the process's fds).
#ifndef SAEDICT_CLIENT_COMMANDS_CLI_UTIL_H_
#define SAEDICT_CLIENT_COMMANDS_CLI_UTIL_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/commands/command.h"

namespace saedict::client {

// True when `stream` is std::cout / std::cerr / std::clog and that file
// descriptor is a terminal. Streams the tests capture are never terminals.
bool IsTerminal(const std::ostream& stream);

// Whether to use ANSI colour on `stream` for --color=auto|always|never: auto
// is "a terminal, and NO_COLOR is not set". InputError for another value.
absl::StatusOr<bool> UseColor(absl::string_view color_flag, const std::ostream& stream);

// Names of corpora and checkpoints: [A-Za-z0-9._-]{1,128}, not "." or "..".
// InputError naming `what` ("--corpus", "NAME") otherwise.
absl::Status CheckName(absl::string_view what, absl::string_view name);

// An integer argument in [min, max]; InputError naming `what` otherwise.
absl::StatusOr<int64_t> ParseIntArg(absl::string_view what, absl::string_view text, int64_t min,
                                    int64_t max);
absl::StatusOr<uint64_t> ParseUint64Arg(absl::string_view what, absl::string_view text);

// `result`, its error (if any) marked as an InputError.
template <typename T>
absl::StatusOr<T> AsInputError(absl::StatusOr<T> result) {
  if (!result.ok()) return InputError(result.status());
  return result;
}

// A flag value in [min, max]; InputError "--name must be in [min, max], got v".
absl::Status CheckRange(absl::string_view flag, int64_t value, int64_t min, int64_t max);

// 1234567 → "1,234,567".
std::string FormatCount(int64_t n);

// A float for tables: 4 significant digits ("0.1235", "12.35", "1.235e+05").
std::string FormatValue(double v);

}  // namespace saedict::client

#endif  // SAEDICT_CLIENT_COMMANDS_CLI_UTIL_H_
