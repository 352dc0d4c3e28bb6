// ManualClock: an engine::Clock that moves only when a test calls Advance(),
// so timing behaviour (queue delays, deadlines) is tested without real-time
// margins. Advance() wakes every waiter so it re-checks against the new time.
//
// Thread safety: thread-safe. Advance() must not be called with a waiter's
// mutex held.
#ifndef SAEDICT_TESTS_TEST_UTIL_MANUAL_CLOCK_H_
#define SAEDICT_TESTS_TEST_UTIL_MANUAL_CLOCK_H_

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/clock.h"

namespace saedict::testing {

class ManualClock final : public engine::Clock {
 public:
  explicit ManualClock(absl::Time start = absl::UnixEpoch()) : now_(start) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }

  void WaitUntil(absl::Mutex* mu, absl::CondVar* cv, absl::Time deadline) override {
    {
      absl::MutexLock lock(&mu_);
      if (now_ >= deadline) return;
      waiters_.emplace_back(mu, cv);
    }
    cv->Wait(mu);  // signalled by its owner or by Advance()
    absl::MutexLock lock(&mu_);
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), std::make_pair(mu, cv)));
  }

  void Advance(absl::Duration d) {
    std::vector<std::pair<absl::Mutex*, absl::CondVar*>> waiters;
    {
      absl::MutexLock lock(&mu_);
      now_ += d;
      waiters = waiters_;
    }
    for (auto& [mu, cv] : waiters) {
      absl::MutexLock lock(mu);  // the waiter is inside Wait: no lost wake-up
      cv->SignalAll();
    }
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_;
  std::vector<std::pair<absl::Mutex*, absl::CondVar*>> waiters_;
};

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_TEST_UTIL_MANUAL_CLOCK_H_
