// FastExactScreen: the screen of ComputeMode::kFastExact — exact float32
// codes from a low-precision GEMM plus an exact re-computation of the few
// features that can still be in the answer.
//
// For one tile of preprocessed rows x (DESIGN.md §2) and every feature j:
//  1. c~_j = x~ · W~_j, a low-precision GEMM of stand-ins x~ and W~_j for x
//     and W_j (a ScreenGemm, engine/screen_gemm.h: saedict's own AMX or
//     AVX512-BF16 kernel with bf16 stand-ins, or its AVX2 kernel with int16
//     stand-ins and exact integer sums; oneDNN 2.6's matmul measured 2.3×
//     slower on AMX and its AVX512-BF16 path slower than the F32 kernel;
//     CPUs with none of them run F32 instead).
//  2. A proven bound E_j with |c_j - c~_j| <= E_j, where c_j is the exact
//     path's value (InvariantGemm's fixed FMA chain). Writing dx = x - x~
//     and dW_j = W_j - W~_j (both known exactly), and u = 2^-24:
//       |c_j - x·W_j|          <= g · ||x|| ||W_j||          (the FMA chain)
//       |x·W_j - x~·W~_j|      =  |dx·W_j + x~·dW_j| <= ||dx|| ||W_j|| + ||x~|| ||dW_j||
//       |x~·W~_j - c~_j|       <= r · ||x~|| ||W~_j|| + a    (the screen's arithmetic)
//     by Cauchy-Schwarz and the standard recursive-summation bound, with
//     g = d_in·u / (1 - d_in·u) and r, a the ScreenGemm's relative_error()
//     and absolute_error() (bf16: g for u' = 2^-23, allowing for a directed
//     rounding inside the hardware's dot product, and 3·d_in·2^-126 for
//     flushed denormals; int16: only the float32 roundings after the exact
//     integer sums). The per-feature norms are made once at Create by the
//     ScreenGemm (rounded up); the per-row norms per tile in double.
//     E_j is then inflated by (1 + 4/d_in + 2^-16) to cover the float32
//     arithmetic that evaluates it and forms c~ ± E (g·||x||·||W_j|| >=
//     d_in·u·|c~| up to E, so a rounding of c~ ± E is within E·4/d_in).
//  3. The interval [c~ - E, c~ + E] maps through the activation's positive
//     part (monotone in c, engine/activation.h) to [L_j, U_j]. With tau the
//     k-th largest L (0 when no k applies or fewer than k are positive),
//     feature j can be selected only if U_j > 0 and U_j >= tau: every other
//     feature is inactive or strictly below the k-th selected value.
//  4. Those candidates get their exact c_j from InvariantGemm::MultiplyBlock
//     (whole 8-column blocks, the same FMA chain as the F32 path; grouped by
//     block over a large tile so the F32 weights stream once per tile), so the
//     activation over them selects exactly the F32 path's features with its
//     values — bit for bit, and batch-invariant because each value is one
//     fixed chain. A row with more than max_candidates candidates, or a
//     non-finite c~, is computed densely by InvariantGemm (a "fallback").
//
// Memory: the screen's packed copy of W_enc (2 bytes per weight, padded to
// multiples of 32 (AMX), 64 (AVX512-BF16) or 16 columns (AVX2 int16, plus a
// float scale per feature)) plus three floats per feature, beside the F32
// packed copy.
//
// Thread safety: immutable after Create; Run is const and may be called
// concurrently (each call brings its own scratch).
#ifndef SAEDICT_ENGINE_FAST_EXACT_H_
#define SAEDICT_ENGINE_FAST_EXACT_H_

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/activation.h"
#include "engine/invariant_gemm.h"
#include "engine/screen_gemm.h"

namespace saedict::engine {

struct FastExactStats {
  int64_t rows = 0;           // rows screened
  int64_t fallback_rows = 0;  // rows computed densely instead
  int64_t candidates = 0;     // candidates summed over the screened, non-fallback rows
  int64_t blocks = 0;         // 8-column blocks recomputed exactly, summed likewise
};

// What Run produces for a tile (see Run).
struct ScreenedRows {
  std::vector<std::vector<uint32_t>> features;
  std::vector<std::vector<float>> values;
  std::vector<int64_t> dense_index;  // -1, or the row's index in `dense`
  std::vector<float> dense;          // [fallback rows, d_sae]
};

struct FastExactOptions {
  // Rows with more candidates than this fall back to the dense exact path.
  // 0: d_sae / 32 (at that point the candidate blocks cost about as much as
  // the dense row), at least 64.
  int64_t max_candidates = 0;
  // Rows per group of the exact phase (Run); 0: about 8 MiB of rows, at
  // least 256. Changes speed only; tests set it small to cross groups.
  int64_t exact_group_rows = 0;
  // Multiplies the proven bound. Only tests set it below 1, to show that a
  // bound too small is caught by CheckBound and changes results.
  double bound_scale = 1.0;
};

class FastExactScreen {
 public:
  // True when Create can succeed here (ScreenGemmAvailable()).
  static bool Available();

  // w_enc: [d_in, d_sae] row-major, read during the call only.
  // INVALID_ARGUMENT for bad shapes or options; UNIMPLEMENTED without a
  // screen GEMM (none of AMX-BF16, AVX512-BF16 and AVX2).
  static absl::StatusOr<std::unique_ptr<FastExactScreen>> Create(const float* w_enc, int64_t d_in,
                                                                 int64_t d_sae,
                                                                 const FastExactOptions& options);

  // a: [m, d_in] preprocessed rows (m may be large: the exact blocks are
  // computed once for all m rows, so a block's weights are read once per
  // call); scratch: [scratch_rows, d_sae] for the screen GEMM, which runs in
  // sub-tiles of scratch_rows. `params` is the activation the codes will use.
  // On return, for each row i: dense_index[i] >= 0 when it fell back (its
  // exact GEMM output is dense[dense_index[i] * d_sae ...]); otherwise
  // features[i] lists, ascending, every feature that can be selected and
  // values[i] their exact GEMM outputs.
  absl::Status Run(const float* a, int64_t m, const ActivationParams& params,
                   const InvariantGemm& exact, float* scratch, int64_t scratch_rows,
                   ScreenedRows* out, FastExactStats* stats) const;

  // Step 1 and 2 alone, for tests: c_screen = c~ and bound = E, both [m, d_sae].
  absl::Status ScreenWithBound(const float* a, int64_t m, float* c_screen, float* bound) const;

  // INTERNAL naming the first (row, feature) where |exact - screen| > bound
  // (all [m, n]); OK when the bound holds everywhere.
  static absl::Status CheckBound(const float* exact, const float* screen, const float* bound,
                                 int64_t m, int64_t n);

  int64_t max_candidates() const { return max_candidates_; }
  // Bytes this screen holds: the packed low-precision weights and the norms.
  int64_t bytes() const;
  // The screen GEMM in use ("amx-bf16", "avx512-bf16", "avx2-int16").
  std::string_view gemm_name() const { return gemm_->name(); }
  // ScreenGemm::faster_than_f32 of that GEMM.
  bool faster_than_f32() const { return gemm_->faster_than_f32(); }

 private:
  FastExactScreen(int64_t d_in, int64_t d_sae, const FastExactOptions& options);

  struct RowCoefficients {
    float a, b, c, d;  // E_j = a·||W_j|| + b·||W~_j|| + c·||dW_j|| + d
  };
  // 64-bit words of `rows` encoded rows.
  int64_t EncodedWords(int64_t rows) const;
  // Encodes the tile for the screen GEMM and fills coefficients[i] per row.
  void EncodeTile(const float* a, int64_t m, void* encoded,
                  std::vector<RowCoefficients>* coefficients) const;
  // E for every feature of one row.
  void RowBound(const RowCoefficients& co, float* bound) const;
  // The activation interval of every feature of one row with GEMM outputs
  // c (see the header comment); false when c or an end is not finite.
  bool Interval(const ActivationParams& p, const RowCoefficients& co, const float* c, float* lower,
                float* upper) const;

  int64_t d_in_;
  int64_t d_sae_;
  std::unique_ptr<ScreenGemm> gemm_;
  int64_t max_candidates_;
  int64_t exact_group_rows_;
  double bound_scale_;
};

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_FAST_EXACT_H_
