// Command-line parsing for the saedict CLI; see cli_args.h.
#include "client/cli_args.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace saedict::client {
namespace {

absl::StatusOr<bool> ParseBool(absl::string_view name, absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "true" || t == "1" || t == "yes") return true;
  if (t == "false" || t == "0" || t == "no") return false;
  return absl::InvalidArgumentError(
      absl::StrCat("flag --", name, " wants true or false, got '", text, "'"));
}

// Checks that `text` parses as the spec's kind.
absl::Status CheckValue(const FlagSpec& spec, absl::string_view text) {
  switch (spec.kind) {
    case FlagKind::kBool:
      return ParseBool(spec.name, text).status();
    case FlagKind::kInt: {
      int64_t v;
      if (!absl::SimpleAtoi(text, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", spec.name, " wants an integer, got '", text, "'"));
      }
      return absl::OkStatus();
    }
    case FlagKind::kDouble: {
      double v;
      if (!absl::SimpleAtod(text, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", spec.name, " wants a number, got '", text, "'"));
      }
      return absl::OkStatus();
    }
    case FlagKind::kDuration: {
      absl::StatusOr<absl::Duration> d = ParseDurationFlag(text);
      if (!d.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", spec.name, ": ", d.status().message()));
      }
      return absl::OkStatus();
    }
    case FlagKind::kString:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text) {
  absl::Duration d;
  double seconds;
  if (absl::SimpleAtod(text, &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d)) {
    return absl::InvalidArgumentError(
        absl::StrCat("want a duration such as 30s, 500ms or 2m, got '", text, "'"));
  }
  if (d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("duration must be positive, got '", text, "'"));
  }
  return d;
}

bool ParsedArgs::IsSet(absl::string_view name) const { return Find(name).set; }

bool ParsedArgs::GetBool(absl::string_view name) const {
  return ParseBool(name, Find(name).text).value_or(false);
}

int64_t ParsedArgs::GetInt(absl::string_view name) const {
  int64_t v = 0;
  (void)absl::SimpleAtoi(Find(name).text, &v);
  return v;
}

double ParsedArgs::GetDouble(absl::string_view name) const {
  double v;
  if (!absl::SimpleAtod(Find(name).text, &v)) return std::numeric_limits<double>::quiet_NaN();
  return v;
}

const std::string& ParsedArgs::GetString(absl::string_view name) const { return Find(name).text; }

absl::Duration ParsedArgs::GetDuration(absl::string_view name) const {
  return ParseDurationFlag(Find(name).text).value_or(absl::ZeroDuration());
}

const ParsedArgs::Value& ParsedArgs::Find(absl::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) {
    // A programming error: the command asked for a flag it never declared.
    std::fprintf(stderr, "saedict: internal error: undeclared flag --%.*s\n",
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return it->second;
}

absl::StatusOr<ParsedArgs> ParseArgs(std::span<const std::string> args,
                                     std::span<const FlagSpec* const> specs) {
  ParsedArgs parsed;
  for (const FlagSpec* spec : specs) {
    parsed.values_[spec->name] = ParsedArgs::Value{spec, spec->default_value, false};
  }
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      parsed.positional_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    absl::string_view body(arg);
    body.remove_prefix(absl::StartsWith(body, "--") ? 2 : 1);
    if (arg == "-h") body = "help";
    const size_t eq = body.find('=');
    const absl::string_view name = body.substr(0, eq);
    // `--batch-tokens` is accepted for `--batch_tokens`.
    std::string canonical(name);
    std::replace(canonical.begin(), canonical.end(), '-', '_');
    auto it = parsed.values_.find(canonical);
    if (it == parsed.values_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    ParsedArgs::Value& value = it->second;
    if (eq != absl::string_view::npos) {
      value.text = std::string(body.substr(eq + 1));
    } else if (value.spec->kind == FlagKind::kBool) {
      value.text = "true";
    } else if (i + 1 < args.size()) {
      value.text = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
    }
    if (absl::Status s = CheckValue(*value.spec, value.text); !s.ok()) return s;
    value.set = true;
  }
  return parsed;
}

std::string FormatFlagHelp(std::span<const FlagSpec* const> specs) {
  std::vector<std::string> left;
  size_t width = 0;
  for (const FlagSpec* spec : specs) {
    std::string l = absl::StrCat("  --", spec->name);
    if (spec->kind != FlagKind::kBool) {
      absl::StrAppend(&l, "=", spec->value_name.empty() ? "VALUE" : spec->value_name);
    }
    width = std::max(width, l.size());
    left.push_back(std::move(l));
  }
  std::string out;
  for (size_t i = 0; i < specs.size(); ++i) {
    const FlagSpec& spec = *specs[i];
    absl::StrAppendFormat(&out, "%-*s  %s", static_cast<int>(width), left[i], spec.help);
    if (spec.kind != FlagKind::kBool && !spec.default_value.empty()) {
      absl::StrAppend(&out, " (default ", spec.default_value, ")");
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace saedict::client
