// ParallelFor: splits a loop over rows across a process-wide pool of worker
// threads (one per hardware thread, minus the caller, which also works).
// The engine uses it for the per-row passes between GEMMs (activation and
// top-k, matching-pursuit updates, reconstruction): the GEMM already uses
// every core through OpenBLAS, and a single-threaded row pass would
// otherwise become the bottleneck on many-core machines. Workers block on a
// condition variable when idle (no spinning that would steal cores from
// OpenBLAS).
//
// Results of the engine never depend on how a loop was split: every caller
// computes each element in one chunk with fixed arithmetic, so the thread
// count (SetParallelism) changes speed, not bits.
//
// Thread safety: ParallelFor may be called from any number of threads at
// once; jobs queue and every caller works on its own job, so it cannot
// deadlock. fn must not throw. SetParallelism is safe at any time; loops
// already running keep the parallelism they started with.
#ifndef SAEDICT_ENGINE_PARALLEL_H_
#define SAEDICT_ENGINE_PARALLEL_H_

#include <cstdint>
#include <functional>

namespace saedict::engine {

// Calls fn(begin, end) on disjoint chunks covering [0, n), each at most
// `grain` long (grain >= 1), and returns when all have finished. Runs inline
// when n <= grain or the machine has one hardware thread.
void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// The number of hardware threads this process may run on (its CPU affinity
// mask; >= 1).
int HardwareThreads();

// SetParallelism(1) runs every later loop inline on its caller (one thread);
// any other value (the default, 0) lets loops use the whole pool. Parallelism()
// is 1 or HardwareThreads(). For tests and benchmarks that compare thread counts.
void SetParallelism(int threads);
int Parallelism();

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_PARALLEL_H_
