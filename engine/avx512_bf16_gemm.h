// Avx512Bf16Gemm: the FAST_EXACT screen's bf16 GEMM (engine/screen_gemm.h)
// on CPUs with AVX512-BF16 but no AMX (AMD Zen 4 and later, Intel Cooper
// Lake), with VDPBF16PS: each instruction adds, per float32 lane, two bf16
// products to the accumulator.
//
// B is rounded to bf16 at Create and packed in 64-column panels: for each
// pair of k rows (2p, 2p+1), the panel's 64 columns with their two values
// interleaved (256 bytes, four zmm), zero past k and n. Multiply runs a
// 6-row × 64-column kernel (24 zmm accumulators): per k pair, four panel
// loads and six broadcasts of a row's (x[2p], x[2p+1]) feed 24 VDPBF16PS.
// Rows are read in place (a bf16 row's pair is one 32-bit word); an odd k
// copies A with a zero column appended. ParallelFor splits the panels, so a
// panel (k/2 × 256 bytes: 295 KiB for k = 2304) stays in L2 while all rows
// pass it; every output is computed by one thread.
//
// Arithmetic: the products are exact in float32 and each VDPBF16PS adds
// them with float32 roundings (round-to-nearest-even, denormals flushed, as
// the ISA documents), so the contract of screen_gemm.h holds.
//
// Available() is false on CPUs without AVX512F + AVX512-BF16 or when the
// environment sets SAEDICT_NO_AVX512_BF16 (to a value other than 0).
//
// Thread safety: immutable after Create; Multiply is const and may be called
// concurrently.
#ifndef SAEDICT_ENGINE_AVX512_BF16_GEMM_H_
#define SAEDICT_ENGINE_AVX512_BF16_GEMM_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/screen_gemm.h"

namespace saedict::engine {

class Avx512Bf16Gemm final : public Bf16ScreenGemm {
 public:
  static bool Available();

  // b: [k, n] row-major float32, read during the call only. INVALID_ARGUMENT
  // for a null b or k, n <= 0; UNIMPLEMENTED when !Available().
  static absl::StatusOr<std::unique_ptr<Avx512Bf16Gemm>> Create(const float* b, int64_t k,
                                                                int64_t n);

  void Multiply(const void* encoded, int64_t m, float* c, int64_t ldc) const override;
  int64_t packed_bytes() const override { return k_pairs_ * n_pad_ * 4; }
  std::string_view name() const override { return "avx512-bf16"; }

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }

  ~Avx512Bf16Gemm() override;

 private:
  Avx512Bf16Gemm(int64_t k, int64_t n);
  // Panels [panel_begin, panel_end) for the rows at a_words (bf16 pairs as
  // 32-bit words, row stride lda_words words).
  void MultiplyPanels(const void* a_words, int64_t lda_words, int64_t m, float* c, int64_t ldc,
                      int64_t panel_begin, int64_t panel_end) const;

  int64_t k_, n_, k_pairs_, n_pad_;
  struct FreeDeleter {
    void operator()(uint32_t* p) const;
  };
  std::unique_ptr<uint32_t[], FreeDeleter> packed_;  // n_pad/64 panels × k_pairs × 64 words
};

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_AVX512_BF16_GEMM_H_
