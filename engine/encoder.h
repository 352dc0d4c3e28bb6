// Encoder: encode / decode / intervene for one dictionary on the CPU.
//
// Math (DESIGN.md §2): x' = normalize(x) [- b_dec when apply_b_dec_to_input];
// pre = x' W_enc + b_enc; then the architecture's activation. Decode is
// f W_dec + b_dec followed by undoing the normalization. F32 mode is exact
// float32; FAST_EXACT mode returns the same codes bit for bit, found by a
// bfloat16 screen with a proven error bound and an exact re-computation of
// the candidates (engine/fast_exact.h); BF16 mode runs the encoder GEMM in
// bfloat16 with float32 accumulation (oneDNN when built with it) and is
// approximate.
//
// Batch invariance (F32 mode): a row's codes — indices and values — and its
// reconstruction and row error (and the same in FAST_EXACT mode, which
// equals F32 bit for bit) are bit-identical whatever other rows share
// its call, its position in the call, the call's size, the tile size and the
// thread count (engine/parallel.h SetParallelism), on one machine. The
// encoder GEMM is InvariantGemm (one fixed FMA chain per element, see
// engine/invariant_gemm.h); every other step works on one row with fixed
// arithmetic. So codes stored by Ingest equal what Encode returns for the
// same row. Not promised: identity across CPU models or builds (today's
// kernels agree bit for bit, but a future kernel may not), nor for BF16
// mode (oneDNN may block its reduction by batch size).
//
// Thread safety: all methods are const and safe to call concurrently. The
// encoder processes rows in tiles so the GEMM output stays in cache while the
// activation/top-k pass runs over it.
#ifndef SAEDICT_ENGINE_ENCODER_H_
#define SAEDICT_ENGINE_ENCODER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/dictionary.h"
#include "engine/fast_exact.h"
#include "engine/invariant_gemm.h"
#include "engine/sparse_codes.h"

namespace saedict::engine {

struct RowNorm;  // engine/normalization.h

// kFastExact: the F32 result, bit for bit, by the screened path where the
// dictionary has one (fast_exact_ready()); elsewhere (matching pursuit, no
// screen on this CPU, screen turned off) it runs the F32 path, and
// EncodeResult::compute_mode says kF32.
enum class ComputeMode { kF32, kBF16, kFastExact };

struct EncodeOptions {
  // 0: the dictionary's own k (topk, matching pursuit) or no cap (others).
  // > 0: topk/MP use this k; other architectures keep only the top_k largest.
  // Must be <= d_sae.
  int32_t top_k = 0;
  bool return_reconstruction = false;  // fill EncodeResult::reconstruction
  bool return_row_error = false;       // fill EncodeResult::row_squared_error
  ComputeMode compute_mode = ComputeMode::kF32;
};

struct EncodeResult {
  SparseCodes codes;
  std::vector<float> reconstruction;     // [n, d_in] when asked
  std::vector<float> row_squared_error;  // [n], ||x - x_hat||^2, when asked
  ComputeMode compute_mode = ComputeMode::kF32;  // the mode that ran
  FastExactStats fast_exact;                     // kFastExact: what the screen did
};

enum class EditOp { kSet, kAdd, kScale, kAblate };
struct FeatureEdit {
  uint32_t feature = 0;
  EditOp op = EditOp::kAblate;
  float value = 0.0f;
  std::vector<int64_t> rows;  // empty: every row
};

struct InterveneResult {
  std::vector<float> activations;  // [n, d_in] = x + (f' - f) W_dec (normalization undone)
  SparseCodes edited_codes;        // f'
  ComputeMode compute_mode = ComputeMode::kF32;  // the mode the encode ran in
};

struct EncoderOptions {
  int64_t tile_rows = 256;  // rows per GEMM tile
  // F32 GEMM kernel; kAuto: the widest this CPU runs. All give identical bits.
  InvariantGemm::Kernel kernel = InvariantGemm::Kernel::kAuto;
  // Build the FAST_EXACT screen at Create (a bf16 or int16 copy of W_enc, 2
  // bytes per weight) when this CPU can run it (FastExactAvailable()) and the
  // architecture selects by threshold or top-k (not matching pursuit).
  bool fast_exact = true;
  FastExactOptions fast_exact_options;
  // The mode callers get when they do not choose one (default_compute_mode());
  // unset: fastest_exact_mode(). kBF16 needs Bf16Available().
  std::optional<ComputeMode> default_compute_mode;
};

class Encoder {
 public:
  // INVALID_ARGUMENT when dictionary->Validate() fails; UNIMPLEMENTED for a
  // default_compute_mode of kBF16 without BF16 here.
  static absl::StatusOr<std::unique_ptr<Encoder>> Create(
      std::shared_ptr<const Dictionary> dictionary, const EncoderOptions& options = {});
  ~Encoder();

  const Dictionary& dictionary() const { return *dictionary_; }
  const std::shared_ptr<const Dictionary>& shared_dictionary() const { return dictionary_; }
  // SHA-256 of the weights this encoder serves (engine/content_hash.h).
  const std::string& content_sha256() const { return content_sha256_; }

  // x: [n, d_in] row-major float32. INVALID_ARGUMENT when x.size() != n*d_in,
  // a value is NaN/Inf (names row and column), or options.top_k is out of
  // range; UNIMPLEMENTED for kBF16 when the build has no BF16 path.
  absl::StatusOr<EncodeResult> Encode(absl::Span<const float> x, int64_t n,
                                      const EncodeOptions& options = {}) const;

  // The steps of Encode around its GEMM and activation, for another backend
  // of this dictionary (engine/cuda), so that its checks, errors, input and
  // host-side outputs are Encode's own.
  //
  // Encode's input checks (sizes, a non-finite value naming row and column,
  // top_k, row error of a transcoder, compute_mode), without the check that
  // this CPU can run kBF16.
  absl::Status ValidateEncodeInput(absl::Span<const float> x, int64_t n,
                                   const EncodeOptions& options) const;
  // x' (DESIGN.md §2: normalized, b_dec subtracted when the dictionary
  // does) of rows [begin, end) of validated x ([*, d_in]) into out
  // [(end - begin) * d_in], bit for bit as Encode computes it.
  // INVALID_ARGUMENT for a bad row range, or naming the first row whose x'
  // is too large for float32 arithmetic with this dictionary (Encode's error).
  absl::Status PreprocessRows(absl::Span<const float> x, int64_t begin, int64_t end,
                              float* out) const;
  // Encode's work after the codes: INVALID_ARGUMENT naming a non-finite
  // activation, then result->reconstruction / row_squared_error as options
  // ask, computed from result->codes as Encode does (on this CPU:
  // O(nnz * d_out), plus O(n * d_in * d_out) for a skip transcoder).
  // REQUIRES: result->codes satisfies SparseCodes::Validate(); INVALID_ARGUMENT
  // when it does not have n rows of d_sae features or x is not [n, d_in].
  absl::Status FinishEncode(absl::Span<const float> x, int64_t n, const EncodeOptions& options,
                            EncodeResult* result) const;

  // codes.num_features must equal d_sae. Returns [num_rows, d_in].
  absl::StatusOr<std::vector<float>> Decode(const SparseCodes& codes) const;

  // Encodes x, applies edits (feature < d_sae, rows < n), returns
  // x + (f' - f) W_dec so the SAE's error term is preserved.
  absl::StatusOr<InterveneResult> Intervene(absl::Span<const float> x, int64_t n,
                                            absl::Span<const FeatureEdit> edits,
                                            const EncodeOptions& options = {}) const;

  // Intervene in two steps, so the encode can run elsewhere (the batcher, a
  // worker): codes must be Encode(x, n)'s codes; the result equals
  // Intervene(x, n, edits) bit for bit then (its compute_mode is left kF32:
  // the caller knows the mode its encode ran in). INVALID_ARGUMENT when x
  // or codes do not have n rows of this dictionary, or an edit is invalid.
  absl::StatusOr<InterveneResult> ApplyEdits(absl::Span<const float> x, int64_t n,
                                             const SparseCodes& codes,
                                             absl::Span<const FeatureEdit> edits) const;
  // The edit checks of Intervene / ApplyEdits alone (before an encode).
  absl::Status ValidateEdits(int64_t n, absl::Span<const FeatureEdit> edits) const;

  // The F32 GEMM kernel in use ("avx512", "avx2" or "portable").
  std::string_view f32_kernel_name() const;

  // True when this build and CPU can run ComputeMode::kBF16.
  static bool Bf16Available();

  // True when this CPU can run a FAST_EXACT screen (AMX-BF16, AVX512-BF16 or
  // AVX2; engine/screen_gemm.h).
  static bool FastExactAvailable();
  // True when that screen is also the fastest exact mode here (a bf16 one;
  // the AVX2 int16 screen runs only when asked for, see ScreenGemm::
  // faster_than_f32): what fastest_exact_mode() of a screened dictionary is.
  static bool FastExactFastest();

  // True when kFastExact runs the screened path for this dictionary.
  bool fast_exact_ready() const;
  // The fastest mode that is exact here: kFastExact when ready and its
  // screen is faster than F32 (faster_than_f32), else kF32.
  ComputeMode fastest_exact_mode() const;
  // EncoderOptions::default_compute_mode, else fastest_exact_mode().
  ComputeMode default_compute_mode() const;
  // Bytes of the FAST_EXACT screen's low-precision weights and norms (0 when
  // not ready).
  int64_t fast_exact_bytes() const;
  // The screen GEMM's name ("amx-bf16", "avx512-bf16", "avx2-int16"); ""
  // when not ready.
  std::string_view fast_exact_screen() const;

 private:
  class Impl;
  explicit Encoder(std::unique_ptr<Impl> impl, std::shared_ptr<const Dictionary> dictionary);
  InterveneResult EditEncoded(absl::Span<const float> x, int64_t n, const SparseCodes& f,
                              absl::Span<const RowNorm> norms,
                              absl::Span<const FeatureEdit> edits) const;
  std::unique_ptr<Impl> impl_;
  std::shared_ptr<const Dictionary> dictionary_;
  std::string content_sha256_;
};

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_ENCODER_H_
