// ProgressBar: the progress line of long CLI operations (saedict ingest) on
// stderr: done/total, percentage, rate and ETA.
//
//   ingest [##########..........]  4,096/8,192 tokens  50.0%  2,048 tokens/s  ETA 2s
//
// On a terminal the line is redrawn in place (\r, erase to end of line) with
// a bar; elsewhere (a log file, a test) each update is its own line without
// the bar. Time comes from an injectable clock so tests get exact output.
//
// Thread safety: not thread-safe; update from one thread.
#ifndef SAEDICT_CLIENT_COMMANDS_PROGRESS_H_
#define SAEDICT_CLIENT_COMMANDS_PROGRESS_H_

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace saedict::client {

struct ProgressOptions {
  std::string label = "progress";  // first word of the line
  std::string unit = "items";      // "tokens"
  bool terminal = false;           // redraw in place with a bar
  int bar_width = 24;              // characters of the bar (terminal only)
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

class ProgressBar {
 public:
  // Starts the clock. REQUIRES: total >= 0.
  ProgressBar(std::ostream& out, int64_t total, ProgressOptions options);

  // Prints the line for `done` units (clamped to [0, total]).
  void Update(int64_t done);
  // Ends a terminal line with a newline (no-op elsewhere, or when nothing was
  // printed). Idempotent; the destructor calls it.
  void Finish();
  ~ProgressBar();

  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // The text of the line for `done` units after `elapsed` (no \r).
  std::string Line(int64_t done, absl::Duration elapsed) const;

 private:
  std::ostream& out_;
  const int64_t total_;
  const ProgressOptions options_;
  const absl::Time start_;
  bool open_line_ = false;  // a terminal line was drawn and not ended
};

// "45s", "3:07", "1:02:03"; "?" for an infinite or negative duration.
std::string FormatEta(absl::Duration d);

}  // namespace saedict::client

#endif  // SAEDICT_CLIENT_COMMANDS_PROGRESS_H_
