// OpenBLAS thread-count configuration. OpenBLAS's own default ran GEMMs at
// about half speed on the machines we measured, so the engine sets the count
// explicitly, once, before its first GEMM.
//
// Thread safety: safe to call from any thread; the setting is process-wide.
#ifndef SAEDICT_ENGINE_BLAS_THREADS_H_
#define SAEDICT_ENGINE_BLAS_THREADS_H_

namespace saedict::engine {

// Sets OpenBLAS's thread count to n; n <= 0 means the number of hardware
// threads this process may run on (its CPU affinity mask).
void ConfigureBlasThreads(int n);

// Calls ConfigureBlasThreads(0) unless ConfigureBlasThreads already ran.
void EnsureBlasThreadsConfigured();

// The number of hardware threads this process may run on (>= 1).
int HardwareThreads();

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_BLAS_THREADS_H_
