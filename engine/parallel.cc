// ParallelFor on a lazily started, process-wide worker pool (see parallel.h).
//
// Jobs wait in a FIFO. A worker (or the job's caller) takes the next chunk
// of the front job under the mutex, runs it unlocked, then reports it done.
// A job leaves the queue once all its chunks are handed out; its caller
// returns once all are finished, and no worker touches a job after
// reporting its last chunk, so jobs can live on the caller's stack.
#include "engine/parallel.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace saedict::engine {
namespace {

struct Job {
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int64_t grain = 1;
  int64_t next = 0;      // first row not yet handed out
  int64_t finished = 0;  // rows whose chunk has returned
};

class Pool {
 public:
  explicit Pool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { WorkerLoop(); });
  }
  // The pool lives for the whole process (never destroyed): see Instance().

  void Run(Job* job) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(job);
    work_.SignalAll();
    while (job->next < job->n) RunChunk(job);
    while (job->finished < job->n) done_.Wait(&mu_);
  }

  static Pool& Instance() {
    static Pool* pool = new Pool(std::max(0, HardwareThreads() - 1));
    return *pool;
  }

 private:
  // Hands out and runs one chunk of `job`; mu_ is released while it runs.
  void RunChunk(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int64_t begin = job->next;
    const int64_t end = std::min(job->n, begin + job->grain);
    job->next = end;
    if (end == job->n) queue_.erase(std::find(queue_.begin(), queue_.end(), job));
    mu_.Unlock();
    (*job->fn)(begin, end);
    mu_.Lock();
    job->finished += end - begin;
    if (job->finished == job->n) done_.SignalAll();
  }

  void WorkerLoop() {
    absl::MutexLock lock(&mu_);
    for (;;) {
      while (queue_.empty()) work_.Wait(&mu_);
      RunChunk(queue_.front());
    }
  }

  absl::Mutex mu_;
  absl::CondVar work_;
  absl::CondVar done_;
  std::deque<Job*> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

std::atomic<int> parallelism_cap{0};  // 0: all hardware threads

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

void SetParallelism(int threads) { parallelism_cap.store(std::max(threads, 0)); }

int Parallelism() {
  static const int hardware_threads = HardwareThreads();
  const int cap = parallelism_cap.load();
  return cap == 0 ? hardware_threads : std::min(cap, hardware_threads);
}

void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  grain = std::max<int64_t>(grain, 1);
  if (n <= 0) return;
  const int threads = Parallelism();
  if (n <= grain || threads <= 1) {
    fn(0, n);
    return;
  }
  Job job;
  job.fn = &fn;
  job.n = n;
  job.grain = grain;
  Pool::Instance().Run(&job);
}

}  // namespace saedict::engine
