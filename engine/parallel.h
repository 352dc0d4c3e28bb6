// ParallelFor: splits a loop over rows across a process-wide pool of worker
// threads (one per hardware thread, minus the caller, which also works).
// The engine uses it for the per-row passes between GEMMs (activation and
// top-k, matching-pursuit updates, reconstruction): the GEMM already uses
// every core through OpenBLAS, and a single-threaded row pass would
// otherwise become the bottleneck on many-core machines. Workers block on a
// condition variable when idle (no spinning that would steal cores from
// OpenBLAS).
//
// Thread safety: ParallelFor may be called from any number of threads at
// once; jobs queue and every caller works on its own job, so it cannot
// deadlock. fn must not throw.
#ifndef SAEDICT_ENGINE_PARALLEL_H_
#define SAEDICT_ENGINE_PARALLEL_H_

#include <cstdint>
#include <functional>

namespace saedict::engine {

// Calls fn(begin, end) on disjoint chunks covering [0, n), each at most
// `grain` long (grain >= 1), and returns when all have finished. Runs inline
// when n <= grain or the machine has one hardware thread.
void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_PARALLEL_H_
