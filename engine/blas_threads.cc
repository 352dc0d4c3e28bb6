// OpenBLAS thread-count configuration (see blas_threads.h).
#include "engine/blas_threads.h"

#include <cblas.h>
#include <sched.h>

#include <atomic>
#include <thread>

namespace saedict::engine {
namespace {
std::atomic<bool> configured{false};
}  // namespace

int HardwareThreads() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return count;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

void ConfigureBlasThreads(int n) {
  openblas_set_num_threads(n > 0 ? n : HardwareThreads());
  configured.store(true, std::memory_order_release);
}

void EnsureBlasThreadsConfigured() {
  if (!configured.exchange(true, std::memory_order_acq_rel)) {
    openblas_set_num_threads(HardwareThreads());
  }
}

}  // namespace saedict::engine
