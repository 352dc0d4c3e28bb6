// Helpers of the corpus commands; see cli_util.h.
#include "client/commands/cli_util.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/commands/command.h"
#include "util/status_macros.h"

namespace saedict::client {

bool IsTerminal(const std::ostream& stream) {
  if (&stream == &std::cout) return isatty(STDOUT_FILENO) == 1;
  if (&stream == &std::cerr || &stream == &std::clog) return isatty(STDERR_FILENO) == 1;
  return false;
}

absl::StatusOr<bool> UseColor(absl::string_view color_flag, const std::ostream& stream) {
  if (color_flag == "always") return true;
  if (color_flag == "never") return false;
  if (color_flag == "auto") {
    const char* no_color = std::getenv("NO_COLOR");
    return IsTerminal(stream) && (no_color == nullptr || no_color[0] == '\0');
  }
  return InputError(absl::StrCat("--color wants auto, always or never, got '", color_flag, "'"));
}

absl::Status CheckName(absl::string_view what, absl::string_view name) {
  if (name.empty()) return InputError(absl::StrCat(what, " is empty"));
  if (name.size() > 128) {
    return InputError(absl::StrCat(what, " is ", name.size(), " characters long; at most 128"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return InputError(
          absl::StrCat(what, " '", name, "' may only hold letters, digits, '.', '_' and '-'"));
    }
  }
  if (name == "." || name == "..") {
    return InputError(absl::StrCat(what, " may not be '", name, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseIntArg(absl::string_view what, absl::string_view text, int64_t min,
                                    int64_t max) {
  int64_t v;
  if (!absl::SimpleAtoi(text, &v)) {
    return InputError(absl::StrCat(what, " wants an integer, got '", text, "'"));
  }
  if (v < min || v > max) {
    return InputError(absl::StrCat(what, " must be in [", min, ", ", max, "], got ", v));
  }
  return v;
}

absl::StatusOr<uint64_t> ParseUint64Arg(absl::string_view what, absl::string_view text) {
  uint64_t v;
  if (text.empty() || text[0] == '-' || text[0] == '+' || !absl::SimpleAtoi(text, &v)) {
    return InputError(absl::StrCat(what, " wants a non-negative integer, got '", text, "'"));
  }
  return v;
}

absl::Status CheckRange(absl::string_view flag, int64_t value, int64_t min, int64_t max) {
  if (value < min || value > max) {
    return InputError(absl::StrCat(flag, " must be in [", min, ", ", max, "], got ", value));
  }
  return absl::OkStatus();
}

absl::Status CheckRange(absl::string_view flag, double value, double min, double max,
                        bool min_open) {
  const bool above_min = min_open ? value > min : value >= min;
  if (!(above_min && value <= max)) {  // NaN fails both
    return InputError(
        absl::StrCat(flag, " must be in ", min_open ? "(" : "[", min, ", ", max, "], got ", value));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ParseIdList(absl::string_view flag,
                                                     absl::string_view text) {
  std::vector<std::string> ids = absl::StrSplit(text, ',');
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i].empty()) {
      return InputError(absl::StrCat(flag, " '", text,
                                     "' has an empty entry; want comma-separated dictionary ids"));
    }
    SAEDICT_RETURN_IF_ERROR(CheckName(flag, ids[i]));
    for (size_t j = 0; j < i; ++j) {
      if (ids[i] == ids[j]) {
        return InputError(absl::StrCat(flag, " lists '", ids[i], "' twice"));
      }
    }
  }
  return ids;
}

FlagSpec WaitFlag() {
  return ValueFlag("wait", FlagKind::kDuration, "", "DURATION",
                   "retry this long while the index is not ready yet (30s, 2m, ...)");
}

absl::Duration WaitFlagValue(const ParsedArgs& args) {
  return args.IsSet("wait") ? args.GetDuration("wait") : absl::ZeroDuration();
}

std::optional<v1::IndexStatus> IndexStatusOf(Client& client, const std::string& id) {
  v1::GetDictionaryRequest req;
  req.set_id(id);
  absl::StatusOr<v1::GetDictionaryResponse> resp = client.GetDictionary(req);
  if (!resp.ok()) return std::nullopt;
  return resp->dictionary().index();
}

std::string FormatCount(int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -(n + 1) + uint64_t{1} : static_cast<uint64_t>(n));
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return n < 0 ? "-" + out : out;
}

std::string FormatValue(double v) { return absl::StrFormat("%.4g", v); }

absl::StatusOr<std::optional<v1::ComputeMode>> ComputeModeArg(absl::string_view flag_value,
                                                              bool bf16_shorthand) {
  std::optional<v1::ComputeMode> mode;
  if (flag_value == "f32") {
    mode = v1::COMPUTE_MODE_F32;
  } else if (flag_value == "fast_exact") {
    mode = v1::COMPUTE_MODE_FAST_EXACT;
  } else if (flag_value == "bf16") {
    mode = v1::COMPUTE_MODE_BF16;
  } else if (!flag_value.empty()) {
    return InputError(absl::InvalidArgumentError(
        absl::StrCat("--compute_mode must be f32, fast_exact or bf16, got '", flag_value, "'")));
  }
  if (bf16_shorthand) {
    if (mode.has_value() && *mode != v1::COMPUTE_MODE_BF16) {
      return InputError(absl::InvalidArgumentError(
          absl::StrCat("--bf16 contradicts --compute_mode=", flag_value)));
    }
    mode = v1::COMPUTE_MODE_BF16;
  }
  return mode;
}

}  // namespace saedict::client
