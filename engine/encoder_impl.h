// Encoder::Impl: the encoder's precomputed state and the shared steps of
// encode / decode / intervene, split over encoder.cc (encode),
// encoder_decode.cc (decode, reconstruction, intervene) and
// matching_pursuit.cc. Private to the engine.
//
// Thread safety: every method is const; scratch is per call or
// thread_local; the lazily built BF16 matmul is guarded by a once_flag.
#ifndef SAEDICT_ENGINE_ENCODER_IMPL_H_
#define SAEDICT_ENGINE_ENCODER_IMPL_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/bf16_matmul.h"
#include "engine/encoder.h"
#include "engine/fast_exact.h"
#include "engine/invariant_gemm.h"
#include "engine/normalization.h"

namespace saedict::engine {

// INVALID_ARGUMENT naming the first row and feature whose value is not
// finite (finite but huge inputs overflow float32 in the GEMM).
absl::Status CheckFiniteCodes(const SparseCodes& codes);

class Encoder::Impl {
 public:
  Impl(std::shared_ptr<const Dictionary> dictionary, const EncoderOptions& options);
  ~Impl();

  const Dictionary& dict() const { return *dictionary_; }
  const DictionaryConfig& config() const { return dictionary_->config; }
  const InvariantGemm& gemm() const { return *gemm_; }
  const EncoderOptions& options() const { return options_; }

  // INVALID_ARGUMENT for a size mismatch, a non-finite value or a bad top_k;
  // UNIMPLEMENTED for kBF16 when unavailable.
  absl::Status ValidateInput(absl::Span<const float> x, int64_t n,
                             const EncodeOptions& options) const;
  // ValidateInput without the BF16 availability check (Encoder::ValidateEncodeInput).
  absl::Status ValidateValues(absl::Span<const float> x, int64_t n,
                              const EncodeOptions& options) const;

  // Rows [r0, r0 + m) of x (row-major [*, d_in]): their norms into norms[0, m)
  // and x' into a [m, d_in]; INVALID_ARGUMENT naming the first row whose x'
  // could overflow float32 in the encoder GEMM.
  absl::Status PreprocessTile(const float* x, int64_t r0, int64_t m, float* a,
                              RowNorm* norms) const;

  // x is [n, d_in] and `codes` has n rows of d_sae features: the check of
  // the calls given codes already encoded from x (FinishEncode, ApplyEdits).
  absl::Status CheckEncodedShape(absl::Span<const float> x, int64_t n,
                                 const SparseCodes& codes) const;
  // ComputeRowNorm of each of x's n rows: the norms EncodeCodes records.
  std::vector<RowNorm> RowNorms(absl::Span<const float> x, int64_t n) const;

  // Encode's steps after EncodeCodes: the finiteness check of the codes,
  // then the reconstruction and row error options ask for (norms: [n]).
  absl::Status FinishEncode(absl::Span<const float> x, int64_t n, const EncodeOptions& options,
                            absl::Span<const RowNorm> norms, EncodeResult* result) const;

  // Encodes validated input: fills `codes` and each row's normalization;
  // `stats` (may be null) gets the fast exact screen's counts.
  absl::Status EncodeCodes(absl::Span<const float> x, int64_t n, const EncodeOptions& options,
                           SparseCodes* codes, std::vector<RowNorm>* norms,
                           FastExactStats* stats = nullptr) const;

  // The screen for kFastExact, or null when the F32 path serves it.
  const FastExactScreen* fast_exact() const { return fast_exact_.get(); }
  // The mode that runs for a requested one (kFastExact may become kF32).
  ComputeMode EffectiveMode(ComputeMode requested) const;

  // x_hat [decoder_dim] for one row of codes, normalization undone with
  // `norm`. A skip transcoder adds x_row W_skip^T when x_row is not null
  // (its input row [d_in]); Decode, which has no input, passes null.
  void ReconstructRow(const uint32_t* indices, const float* values, int64_t nnz,
                      const RowNorm& norm, const float* x_row, float* out) const;

  // out += scale * sum_e values[e] * decode_factor(indices[e]) * W_dec[indices[e]].
  void AccumulateDecode(const uint32_t* indices, const float* values, int64_t nnz, float scale,
                        float* out) const;

 private:
  // c[m, d_sae] = a[m, d_in] · W_enc (W_dec^T for matching pursuit).
  absl::Status EncoderGemm(const float* a, int64_t m, ComputeMode mode, float* c) const;
  absl::StatusOr<const Bf16Matmul*> GetBf16() const;

  // Matching pursuit over one tile: `residual` [m, d_in] holds x' and is
  // consumed; `scores` is [m, d_sae] scratch. Appends m rows to `codes`.
  absl::Status MatchingPursuitTile(float* residual, int64_t m, int32_t k, ComputeMode mode,
                                   float* scores, SparseCodes* codes) const;

  std::shared_ptr<const Dictionary> dictionary_;
  EncoderOptions options_;
  const float* b_dec_in_ = nullptr;     // b_dec when subtracted from the input
  bool add_b_dec_on_decode_ = true;     // matching pursuit adds b_dec only when subtracted
  std::vector<float> feature_scale_;    // topk rescale: ||W_dec_i||; gated: exp(r_mag)
  std::vector<float> decode_factor_;    // topk rescale: 1 / ||W_dec_i||; else empty
  std::vector<float> decoder_norm_sq_;  // matching pursuit: ||W_dec_i||^2
  std::unique_ptr<InvariantGemm> gemm_;
  // Largest sum_p |W_pj| (× the topk/gated feature scale): bounds |pre| / max|x'|.
  double max_column_abs_sum_ = 0.0;
  // Pre-activations are kept below this (a margin under FLT_MAX for b_enc,
  // the gated magnitude path and the decode).
  static constexpr double kOverflowLimit = 1e36;
  // Rows per tile in kFastExact mode (see EncodeCodes).
  static constexpr int64_t kFastExactTileRows = 4096;

  mutable absl::once_flag bf16_once_;
  mutable absl::Status bf16_status_;
  mutable std::unique_ptr<Bf16Matmul> bf16_;
  std::unique_ptr<FastExactScreen> fast_exact_;  // built at construction, or null
};

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_ENCODER_IMPL_H_
