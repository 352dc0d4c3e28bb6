// Clock: the time source of the engine's waits (the batcher's queue delay
// and request deadlines), so tests inject a manual clock instead of relying
// on real-time margins. Clock::Real() is absl::Now() and absl::CondVar's own
// deadline wait.
//
// Thread safety: implementations are thread-safe.
#ifndef SAEDICT_ENGINE_CLOCK_H_
#define SAEDICT_ENGINE_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace saedict::engine {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Waits on `cv` until it is signalled or Now() reaches `deadline`; may
  // return early (callers re-check their condition). REQUIRES: `mu` held.
  virtual void WaitUntil(absl::Mutex* mu, absl::CondVar* cv, absl::Time deadline) = 0;

  // The process-wide real clock (never destroyed).
  static Clock* Real();
};

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_CLOCK_H_
