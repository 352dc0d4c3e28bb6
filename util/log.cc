#include "util/log.h"

#include <cstdio>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace saedict {

void Log(LogLevel level, absl::string_view message) {
  static const char* const kNames[] = {"I", "W", "E"};
  const std::string when =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  // One fprintf per line: stdio locks the stream for the whole call.
  std::fprintf(stderr, "%s %s %.*s\n", kNames[static_cast<int>(level)], when.c_str(),
               static_cast<int>(message.size()), message.data());
}

}  // namespace saedict
