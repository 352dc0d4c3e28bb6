// Minimal leveled logging to stderr (Debian's Abseil 20220623 predates
// absl/log). One line per call, prefixed with UTC time and level.
// Thread safety: lines from concurrent calls never interleave.
#ifndef SAEDICT_UTIL_LOG_H_
#define SAEDICT_UTIL_LOG_H_

#include "absl/strings/string_view.h"

namespace saedict {

enum class LogLevel { kInfo, kWarning, kError };

void Log(LogLevel level, absl::string_view message);
inline void LogInfo(absl::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarning(absl::string_view m) { Log(LogLevel::kWarning, m); }
inline void LogError(absl::string_view m) { Log(LogLevel::kError, m); }

}  // namespace saedict

#endif  // SAEDICT_UTIL_LOG_H_
