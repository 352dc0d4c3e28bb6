// The real Clock (see clock.h).
#include "engine/clock.h"

namespace saedict::engine {
namespace {

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  void WaitUntil(absl::Mutex* mu, absl::CondVar* cv, absl::Time deadline) override {
    cv->WaitWithDeadline(mu, deadline);
  }
};

}  // namespace

Clock* Clock::Real() {
  static RealClock* clock = new RealClock;
  return clock;
}

}  // namespace saedict::engine
