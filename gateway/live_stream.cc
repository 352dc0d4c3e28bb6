#include "gateway/live_stream.h"

#include <utility>

namespace saedict::gateway {

LiveStream::LiveStream(Call call, size_t max_queued) : max_queued_(max_queued) {
  thread_ = std::thread([this, call = std::move(call)] {
    auto cancelled = [this] {
      absl::MutexLock lock(&mu_);
      return cancelled_;
    };
    LineSink emit = [this](std::string line) {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &LiveStream::RoomOrCancelled));
      if (cancelled_) return false;
      lines_.push_back(std::move(line));
      return true;
    };
    absl::Status status = call(emit, cancelled);
    absl::MutexLock lock(&mu_);
    status_ = std::move(status);
    done_ = true;
  });
}

LiveStream::~LiveStream() {
  Cancel();
  thread_.join();
}

std::optional<absl::Status> LiveStream::WaitForFirstLine() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &LiveStream::LineOrDone));
  if (lines_.empty()) return status_;
  return std::nullopt;
}

std::optional<std::string> LiveStream::Next() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &LiveStream::LineOrDone));
  if (lines_.empty()) return std::nullopt;
  std::string line = std::move(lines_.front());
  lines_.pop_front();
  return line;
}

absl::Status LiveStream::status() {
  absl::MutexLock lock(&mu_);
  return status_;
}

bool LiveStream::RoomOrCancelled() const { return cancelled_ || lines_.size() < max_queued_; }

bool LiveStream::LineOrDone() const { return done_ || !lines_.empty(); }

void LiveStream::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
}

}  // namespace saedict::gateway
