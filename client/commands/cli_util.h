// Small helpers shared by the corpus and similarity commands (ingest, doc,
// feature, checkpoint, similar, family, families): terminal detection,
// argument checks that fail as InputError (exit 2, see command.h), number
// formatting and waiting for a similarity index.
//
// Thread safety: free functions with no shared state (IsTerminal reads the
// process's fds; IndexStatusOf and RetryWhileNotReady call the server).
#ifndef SAEDICT_CLIENT_COMMANDS_CLI_UTIL_H_
#define SAEDICT_CLIENT_COMMANDS_CLI_UTIL_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/commands/command.h"
#include "saedict/v1/saedict.pb.h"

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

// --compute_mode: "" (unset: the dictionary's default), "f32", "fast_exact"
// or "bf16"; `bf16_shorthand` (--bf16) means "bf16" and conflicts with any
// other value. InputError for anything else.
absl::StatusOr<std::optional<v1::ComputeMode>> ComputeModeArg(absl::string_view flag_value,
                                                              bool bf16_shorthand);
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

// A kDouble flag value in [min, max] (NaN is outside); InputError
// "--name must be in [min, max], got v" otherwise. With `min_open` the lower
// bound is excluded: "(min, max]".
absl::Status CheckRange(absl::string_view flag, double value, double min, double max,
                        bool min_open = false);

// "a,b,c" → {"a", "b", "c"}: dictionary ids for --against. InputError naming
// `flag` for an empty list, an empty or malformed id (CheckName) or one
// listed twice.
absl::StatusOr<std::vector<std::string>> ParseIdList(absl::string_view flag,
                                                     absl::string_view text);

// --wait=DURATION of the commands that need a similarity index, and its
// value (zero when not given: no retries).
FlagSpec WaitFlag();
absl::Duration WaitFlagValue(const ParsedArgs& args);

// The similarity index status of dictionary `id` (GetDictionary); nullopt
// when it cannot be read.
std::optional<v1::IndexStatus> IndexStatusOf(Client& client, const std::string& id);

// Calls `call` until it succeeds, or fails with another code than
// FAILED_PRECONDITION (an index or the neighbours not READY yet), or `wait`
// has passed (zero: one call), polling every 200 ms; `gave_up()` is asked
// after each FAILED_PRECONDITION and stops the wait when it returns true
// (say, the index build FAILED). Returns the last answer; without a wait, a
// FAILED_PRECONDITION says that --wait would retry.
template <typename T, typename Call, typename GaveUp>
absl::StatusOr<T> RetryWhileNotReady(absl::Duration wait, Call call, GaveUp gave_up) {
  const absl::Time deadline = absl::Now() + wait;
  while (true) {
    absl::StatusOr<T> result = call();
    if (result.ok() || !absl::IsFailedPrecondition(result.status())) return result;
    if (wait <= absl::ZeroDuration()) {
      return absl::FailedPreconditionError(
          absl::StrCat(result.status().message(), "; --wait=DURATION retries until then"));
    }
    if (absl::Now() >= deadline || gave_up()) return result;
    absl::SleepFor(std::min(absl::Milliseconds(200), deadline - absl::Now()));
  }
}

// 1234567 → "1,234,567".
std::string FormatCount(int64_t n);

// A float for tables: 4 significant digits ("0.1235", "12.35", "1.235e+05").
std::string FormatValue(double v);

}  // namespace saedict::client

#endif  // SAEDICT_CLIENT_COMMANDS_CLI_UTIL_H_
