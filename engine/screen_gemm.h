// ScreenGemm: the low-precision GEMM of the FAST_EXACT screen
// (engine/fast_exact.h): C[m, n] = A[m, k] · B[k, n] with bfloat16 inputs
// (rounded by Bf16Matmul::RoundToBf16) and float32 accumulation.
//
// Contract every implementation keeps, and the only thing the screen's error
// bound assumes: each output is the sum of its k exact bf16 products (a
// bf16 × bf16 product is exact in float32) in some order, with one float32
// rounding per addition (nearest or directed), denormal inputs and results
// possibly flushed to zero. Results need not match any other GEMM, nor
// another implementation, nor another CPU.
//
// Implementations, picked by CreateScreenGemm in this order:
//   AmxBf16Gemm     Intel AMX (TDPBF16PS tiles)          engine/amx_gemm.h
//   Avx512Bf16Gemm  AVX512-BF16 (VDPBF16PS), e.g. Zen 4  engine/avx512_bf16_gemm.h
// Each has its own Available() and an environment switch to disable it
// (SAEDICT_NO_AMX, SAEDICT_NO_AVX512_BF16), so one machine can test the next
// one down the list and the path without any.
//
// Thread safety: implementations are immutable after creation; Multiply is
// const and may be called concurrently.
#ifndef SAEDICT_ENGINE_SCREEN_GEMM_H_
#define SAEDICT_ENGINE_SCREEN_GEMM_H_

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"

namespace saedict::engine {

class ScreenGemm {
 public:
  virtual ~ScreenGemm() = default;

  // a_bf16: [m, k] row-major bf16 bits; c: rows of ldc >= n floats, columns
  // [0, n) of the first m rows overwritten.
  virtual void Multiply(const uint16_t* a_bf16, int64_t m, float* c, int64_t ldc) const = 0;
  // Bytes of the packed bf16 copy of B.
  virtual int64_t packed_bytes() const = 0;
  // "amx-bf16" or "avx512-bf16", for logs and benchmarks.
  virtual std::string_view name() const = 0;
};

// True when some implementation runs on this CPU (and is not switched off).
bool ScreenGemmAvailable();

// b: [k, n] row-major float32, read during the call only. INVALID_ARGUMENT
// for a null b or k, n <= 0; UNIMPLEMENTED when !ScreenGemmAvailable().
absl::StatusOr<std::unique_ptr<ScreenGemm>> CreateScreenGemm(const float* b, int64_t k, int64_t n);

// Gemm::Create (an implementation above) as a ScreenGemm: the one upcast that
// CreateScreenGemm and the implementation tests share.
template <typename Gemm>
absl::StatusOr<std::unique_ptr<ScreenGemm>> CreateScreenGemmAs(const float* b, int64_t k,
                                                               int64_t n) {
  absl::StatusOr<std::unique_ptr<Gemm>> gemm = Gemm::Create(b, k, n);
  if (!gemm.ok()) return gemm.status();
  return std::unique_ptr<ScreenGemm>(std::move(gemm).value());
}

// True when the environment variable `name` is set to something other than
// "" or "0" (the implementations' off switches).
bool EnvironmentSwitchSet(const char* name);

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_SCREEN_GEMM_H_
