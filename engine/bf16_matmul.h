// Bf16Matmul: C[m,n] = A[m,k] · B[k,n] with bfloat16 inputs and float32
// accumulation/output, for the encoder's ComputeMode::kBF16. B (the encoder
// weights) is converted once at Create; Run converts A per call.
//
// PLACEHOLDER owned by the engine: the oneDNN implementation replaces this
// file and bf16_matmul.cc; this build reports Available() == false.
//
// Thread safety: Run is const and may be called concurrently.
#ifndef SAEDICT_ENGINE_BF16_MATMUL_H_
#define SAEDICT_ENGINE_BF16_MATMUL_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace saedict::engine {

class Bf16Matmul {  // C[m,n] = A[m,k] · B[k,n], bf16 inputs, f32 accumulate/output. Thread-safe Run.
 public:
  static bool Available();  // built with oneDNN and the CPU has avx512_bf16 or AMX
  static absl::StatusOr<std::unique_ptr<Bf16Matmul>> Create(const float* b, int64_t k, int64_t n);
  absl::Status Run(const float* a, int64_t m, float* c) const;
  ~Bf16Matmul();

 private:
  struct Impl;
  explicit Bf16Matmul(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_BF16_MATMUL_H_
