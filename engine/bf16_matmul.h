// Bf16Matmul: C[m,n] = A[m,k] · B[k,n] with bfloat16 inputs and float32
// accumulation/output, for the encoder's ComputeMode::kBF16.
//
// Built on oneDNN's matmul primitive (compiled in when SAEDICT_HAVE_DNNL is
// defined for this file). B (the encoder weights) is converted once, at
// Create, to bf16 in the blocked layout oneDNN's matmul prefers; Run rounds
// A to bf16 (round-to-nearest-even) tile by tile and writes C row-major.
// Accuracy: each product sees inputs rounded to 8 significant bits, so
// |C - C_f32| is about 2^-8 · sqrt(k) · |a|·|b| in the worst rows; the
// accumulation itself is float32.
//
// Without oneDNN, or on a CPU with neither AVX512-BF16 nor AMX, Available()
// is false and Create returns UNIMPLEMENTED.
//
// Thread safety: Create is safe from any thread. Run is const and may be
// called concurrently on one object: every call brings its own stream,
// scratchpad and bf16 buffers; the primitive cache is mutex-guarded. Each
// call parallelises over oneDNN's OpenMP threads, so concurrent calls share
// (oversubscribe) the cores rather than run faster.
#ifndef SAEDICT_ENGINE_BF16_MATMUL_H_
#define SAEDICT_ENGINE_BF16_MATMUL_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace saedict::engine {

class Bf16Matmul {
 public:
  // True when this build has oneDNN and oneDNN reports at least the
  // avx512_core_bf16 ISA (AVX512-BF16 or AMX) on this CPU. Honours
  // ONEDNN_MAX_CPU_ISA. Cheap after the first call.
  static bool Available();

  // b: [k, n] row-major float32, read during the call only (not retained).
  // INVALID_ARGUMENT for a null b, k or n <= 0, or k*n too large;
  // UNIMPLEMENTED when !Available(); INTERNAL when oneDNN fails.
  static absl::StatusOr<std::unique_ptr<Bf16Matmul>> Create(const float* b, int64_t k, int64_t n);

  // a: [m, k] row-major float32; c: [m, n] row-major float32, overwritten.
  // m == 0 is a no-op. INVALID_ARGUMENT for m < 0 or null pointers with
  // m > 0; INTERNAL when oneDNN fails.
  absl::Status Run(const float* a, int64_t m, float* c) const;

  // Run for an A already rounded by RoundToBf16 (a_bf16: [m, k] bf16 bits).
  absl::Status RunBf16(const uint16_t* a_bf16, int64_t m, float* c) const;

  // The float32 -> bf16 rounding Run applies to A and Create applied to B:
  // round to nearest even (the AVX512-BF16 instruction where the CPU has it,
  // which reads subnormal inputs as zero). Callers that bound the rounding
  // error (engine/fast_exact.h) compute it from these exact bits.
  static void RoundToBf16(const float* src, int64_t count, uint16_t* dst);

  int64_t k() const;
  int64_t n() const;

  ~Bf16Matmul();

 private:
  struct Impl;
  explicit Bf16Matmul(std::unique_ptr<Impl> impl);
  // Run / RunBf16: exactly one of a (rounded here) and a_rounded is set.
  absl::Status RunImpl(const float* a, const uint16_t* a_rounded, int64_t m, float* c) const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_BF16_MATMUL_H_
