// A small command-line parser for the saedict CLI: per-subcommand flag specs,
// `--name=value`, `--name value` (non-bool flags), `--name` / `--name=false`
// (bool flags), `--` to end flags, `-h` as `--help`; dashes in a flag name
// stand for underscores (`--batch-tokens` is `--batch_tokens`). Values are checked
// against the flag's kind when parsed. Hand-written instead of absl flags so
// each subcommand has its own flag set and RunCli can run many times in one
// process (absl flags are process-global).
//
// Thread safety: pure functions; ParsedArgs is a plain value type.
#ifndef SAEDICT_CLIENT_CLI_ARGS_H_
#define SAEDICT_CLIENT_CLI_ARGS_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace saedict::client {

enum class FlagKind { kBool, kInt, kDouble, kString, kDuration };

struct FlagSpec {
  std::string name;  // without dashes: "top_k"
  FlagKind kind = FlagKind::kString;
  std::string default_value;  // as it would be typed: "0", "false", "60s"
  std::string help;           // one line
  std::string value_name;     // shown in usage: "N", "HOST:PORT"; empty for bools
};

// Spec builders (keep the command tables short).
inline FlagSpec BoolFlag(std::string name, std::string help) {
  return FlagSpec{std::move(name), FlagKind::kBool, "false", std::move(help), ""};
}
inline FlagSpec ValueFlag(std::string name, FlagKind kind, std::string default_value,
                          std::string value_name, std::string help) {
  return FlagSpec{std::move(name), kind, std::move(default_value), std::move(help),
                  std::move(value_name)};
}

class ParsedArgs {
 public:
  const std::vector<std::string>& positional() const { return positional_; }
  // True when the flag was given on the command line (not defaulted).
  bool IsSet(absl::string_view name) const;
  // REQUIRES: `name` is one of the specs ParseArgs was given, of that kind.
  bool GetBool(absl::string_view name) const;
  int64_t GetInt(absl::string_view name) const;
  // A kDouble flag's value; NaN when it has no value (an empty default).
  double GetDouble(absl::string_view name) const;
  const std::string& GetString(absl::string_view name) const;
  absl::Duration GetDuration(absl::string_view name) const;

 private:
  friend absl::StatusOr<ParsedArgs> ParseArgs(std::span<const std::string>,
                                              std::span<const FlagSpec* const>);
  struct Value {
    const FlagSpec* spec = nullptr;
    std::string text;
    bool set = false;
  };
  const Value& Find(absl::string_view name) const;

  std::vector<std::string> positional_;
  std::map<std::string, Value, std::less<>> values_;
};

// Parses `args` against `specs` (every spec gets its default first).
// INVALID_ARGUMENT for an unknown flag, a missing or malformed value.
absl::StatusOr<ParsedArgs> ParseArgs(std::span<const std::string> args,
                                     std::span<const FlagSpec* const> specs);

// Durations: absl syntax ("30s", "1m30s", "500ms") or plain seconds ("30").
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text);

// Aligned help lines, one per flag: "  --top_k=N   keep the N largest (default 0)".
std::string FormatFlagHelp(std::span<const FlagSpec* const> specs);

}  // namespace saedict::client

#endif  // SAEDICT_CLIENT_CLI_ARGS_H_
