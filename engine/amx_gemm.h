// AmxBf16Gemm: C[m, n] = A[m, k] · B[k, n] with bfloat16 inputs and float32
// accumulation on Intel AMX (TDPBF16PS), for the FAST_EXACT screen
// (engine/fast_exact.h); one of the ScreenGemm implementations
// (engine/screen_gemm.h).
//
// B is rounded to bf16 by Bf16Matmul::RoundToBf16 at Create and packed in
// tile order: per 32-column panel and 32-deep k block, two 16×(16 pairs)
// VNNI tiles, zero past k and n. Multiply packs A the same way (32-row
// blocks, two 16×32 tiles per k block, so every tile load is one contiguous
// KiB — loads with A's row stride measured 2.3× slower) and runs a 2×2 tile
// kernel (four 16×16 float32 accumulators) per (32-row block, panel); each
// thread of ParallelFor takes a range of panels, so a panel's B stays in L2
// while the row blocks pass. Accumulation is float32 in the hardware's own
// order (Intel documents round-to-nearest-even with denormals flushed); the
// screen's error bound allows for any summation order and for directed
// rounding (fast_exact.h), so results need not match any other GEMM.
//
// Available() is false on CPUs without AMX-TILE and AMX-BF16, when the
// kernel does not grant the tile data state (arch_prctl
// ARCH_REQ_XCOMP_PERM, requested once by Available()), or when the
// environment sets SAEDICT_NO_AMX (to a value other than 0): a way to run a
// machine with AMX as one without.
//
// Thread safety: immutable after Create; Multiply is const and may be called
// concurrently (each call and thread configures its own tiles).
#ifndef SAEDICT_ENGINE_AMX_GEMM_H_
#define SAEDICT_ENGINE_AMX_GEMM_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/screen_gemm.h"

namespace saedict::engine {

class AmxBf16Gemm final : public Bf16ScreenGemm {
 public:
  static bool Available();

  // b: [k, n] row-major float32, read during the call only. INVALID_ARGUMENT
  // for a null b or k, n <= 0; UNIMPLEMENTED when !Available().
  static absl::StatusOr<std::unique_ptr<AmxBf16Gemm>> Create(const float* b, int64_t k, int64_t n);

  // encoded: [m, k] row-major bf16 bits (EncodeRows); c: rows of ldc >= n
  // floats, columns [0, n) of the first m rows overwritten.
  void Multiply(const void* encoded, int64_t m, float* c, int64_t ldc) const override;

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  int64_t packed_bytes() const override { return k_pad_ * n_pad_ * 2; }
  std::string_view name() const override { return "amx-bf16"; }

  ~AmxBf16Gemm() override;

 private:
  AmxBf16Gemm(int64_t k, int64_t n);
  // Panels [panel_begin, panel_end) for the packed A of m_pad rows.
  void MultiplyPanels(const uint16_t* a_packed, int64_t m, int64_t m_pad, float* c, int64_t ldc,
                      int64_t panel_begin, int64_t panel_end) const;

  int64_t k_, n_, k_pad_, n_pad_;
  struct FreeDeleter {
    void operator()(uint16_t* p) const;
  };
  std::unique_ptr<uint16_t[], FreeDeleter> packed_;  // n_pad/32 panels × k_pad/32 blocks × 1024
};

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_AMX_GEMM_H_
