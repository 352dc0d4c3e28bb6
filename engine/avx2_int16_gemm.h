// Avx2Int16Gemm: the FAST_EXACT screen's GEMM (engine/screen_gemm.h) on
// CPUs with AVX2 but neither AMX nor AVX512-BF16 (AMD Zen 2/3, Intel
// Haswell to Ice Lake), in exact integer arithmetic: VPMADDWD multiplies
// int16 pairs and adds the two products into an int32 lane.
//
// Stand-ins: each column j of B is quantized as W~_j = s_j·q (s_j =
// max_p |B[p, j]| / Q in float32, q = round(B / s_j) clamped to [-Q, Q]),
// each row of A likewise with its own s_i, Q = 2896. An encoded row is its
// scale (one float) and its q as int16 pairs. Accumulation is exact: blocks
// of 256 products add up to at most 256·Q² < 2^31 in int32 lanes, and each
// block's sum is converted to float32 and added to a float32 total. So
// |c~ - x~·W~_j| only holds the float32 roundings: nb conversions, nb - 1
// additions (nb = ceil(k / 256)) and the two scale multiplications, i.e.
// relative_error() = gamma(2·nb + 2) with u = 2^-23 (nearest or directed),
// plus absolute_error() = 2^-125·(1 + max s_j) for results below the normal
// range, flushed or not. A scale below the normal range is taken as 0 (its
// row or column's stand-in is then 0 and all of it is residual), so no
// denormal is ever an input.
// Compared with bf16 (8 significant bits per value), Q = 2896 gives about
// 12.5 bits relative to a row's largest value.
//
// B is packed at Create in 16-column panels: per pair of k rows (2t, 2t+1),
// the panel's 16 columns with their two q interleaved (64 bytes, two ymm),
// zero past k and n. Multiply runs a 6-row × 16-column kernel (12 int32
// accumulators; 4 rows where the build has only 16 vector registers): per k
// pair, two panel loads and six broadcasts of a row's (q[2t], q[2t+1]) feed
// 12 VPMADDWD + 12 VPADDD. ParallelFor splits the panels, so a panel (k/2 ×
// 64 bytes: 72 KiB for k = 2304) stays in L2 while all rows pass it; every
// output is computed by one thread.
//
// AVX512-VNNI's VPDPWSSD (VPMADDWD + VPADDD in one instruction) measured
// slower on AMD Zen 4 (70-78 GMAC/s on 2 cores in a 64-column zmm kernel
// like Avx512Bf16Gemm's, which reaches 205-219; this ymm kernel 117-151), so
// it is not used. On such CPUs the bf16 screen comes first anyway
// (CreateScreenGemm): its GEMM is faster there, though its bound is looser.
//
// Available() is false on CPUs without AVX2 or when the environment sets
// SAEDICT_NO_AVX2_INT16 (to a value other than 0).
//
// Thread safety: immutable after Create; EncodeRows and Multiply are const
// and may be called concurrently.
#ifndef SAEDICT_ENGINE_AVX2_INT16_GEMM_H_
#define SAEDICT_ENGINE_AVX2_INT16_GEMM_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/screen_gemm.h"

namespace saedict::engine {

class Avx2Int16Gemm final : public ScreenGemm {
 public:
  // The largest |q| of a quantized value.
  static constexpr int32_t kMaxQuantized = 2896;
  // k values per exact int32 block: kBlockDepth · kMaxQuantized² < 2^31.
  static constexpr int64_t kBlockDepth = 256;

  static bool Available();

  // b: [k, n] row-major float32, read during the call only. INVALID_ARGUMENT
  // for a null b or k, n <= 0; UNIMPLEMENTED when !Available().
  static absl::StatusOr<std::unique_ptr<Avx2Int16Gemm>> Create(const float* b, int64_t k,
                                                               int64_t n);

  // Scale (4 bytes) and k rounded up to even int16 values.
  int64_t encoded_row_bytes() const override { return 4 + 4 * k_pairs_; }
  void EncodeRows(const float* a, int64_t m, void* encoded, RowNorms* norms) const override;
  void Multiply(const void* encoded, int64_t m, float* c, int64_t ldc) const override;
  double relative_error() const override;
  double absolute_error() const override;
  int64_t packed_bytes() const override { return k_pairs_ * n_pad_ * 4 + n_pad_ * 4; }
  std::string_view name() const override { return "avx2-int16"; }
  // False: on AMD Zen 4 run as an AVX2 CPU (SAEDICT_NO_AVX512_BF16=1,
  // OPENBLAS_CORETYPE=Haswell, the AVX2 F32 kernel) FAST_EXACT with this
  // screen measured 0.92-1.20x the F32 encode at 2304x16384 k=64 and
  // 1.03x at 768x24576 k=32: its GEMM is only 1.35-1.5x sgemm there. So
  // `auto` stays F32 on AVX2-only CPUs until measured faster on one.
  bool faster_than_f32() const override { return false; }

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }

  ~Avx2Int16Gemm() override;

 private:
  Avx2Int16Gemm(int64_t k, int64_t n);
  void MultiplyPanels(const uint32_t* rows, int64_t m, float* c, int64_t ldc, int64_t panel_begin,
                      int64_t panel_end) const;

  int64_t k_, n_, k_pairs_, n_pad_;
  float max_column_scale_ = 0.0f;
  struct FreeDeleter {
    void operator()(void* p) const;
  };
  std::unique_ptr<uint32_t[], FreeDeleter> packed_;     // n_pad/16 panels × k_pairs × 16 words
  std::unique_ptr<float[], FreeDeleter> column_scale_;  // s_j, n_pad (0 past n)
};

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_AVX2_INT16_GEMM_H_
