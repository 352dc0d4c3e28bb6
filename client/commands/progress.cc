// The CLI progress line; see progress.h.
#include "client/commands/progress.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands/cli_util.h"

namespace saedict::client {

std::string FormatEta(absl::Duration d) {
  if (d < absl::ZeroDuration() || d == absl::InfiniteDuration()) return "?";
  const int64_t s = absl::ToInt64Seconds(d + absl::Milliseconds(500));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%d:%02d", s / 60, s % 60);
  return absl::StrFormat("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
}

ProgressBar::ProgressBar(std::ostream& out, int64_t total, ProgressOptions options)
    : out_(out), total_(total), options_(std::move(options)), start_(options_.now()) {}

ProgressBar::~ProgressBar() { Finish(); }

std::string ProgressBar::Line(int64_t done, absl::Duration elapsed) const {
  done = std::clamp<int64_t>(done, 0, total_);
  const double fraction =
      total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  std::string line = options_.label;
  if (options_.terminal) {
    const int filled = static_cast<int>(std::floor(fraction * options_.bar_width));
    absl::StrAppend(&line, " [", std::string(filled, '#'),
                    std::string(options_.bar_width - filled, '.'), "]");
  }
  absl::StrAppendFormat(&line, "  %s/%s %s  %.1f%%", FormatCount(done), FormatCount(total_),
                        options_.unit, 100.0 * fraction);
  const double seconds = absl::ToDoubleSeconds(elapsed);
  if (done > 0 && seconds > 0) {
    const double rate = static_cast<double>(done) / seconds;
    absl::StrAppend(&line, "  ", FormatCount(static_cast<int64_t>(std::llround(rate))), " ",
                    options_.unit, "/s");
    if (done < total_) {
      absl::StrAppend(&line, "  ETA ",
                      FormatEta(absl::Seconds(static_cast<double>(total_ - done) / rate)));
    }
  }
  return line;
}

void ProgressBar::Update(int64_t done) {
  const std::string line = Line(done, options_.now() - start_);
  if (options_.terminal) {
    out_ << "\r" << line << "\x1b[K" << std::flush;
    open_line_ = true;
  } else {
    out_ << line << "\n" << std::flush;
  }
}

void ProgressBar::Finish() {
  if (open_line_) out_ << "\n" << std::flush;
  open_line_ = false;
}

}  // namespace saedict::client
