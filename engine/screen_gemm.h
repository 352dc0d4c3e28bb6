// ScreenGemm: the low-precision GEMM of the FAST_EXACT screen
// (engine/fast_exact.h): c~[m, n] ≈ A[m, k] · B[k, n], computed from the
// screen's own low-precision stand-ins A~ and B~ for A and B (bf16
// roundings, or int16 with a float scale per row of A and per column of B).
//
// Contract every implementation keeps, and the only things the screen's
// error bound assumes (x a row of A, W_j a column of B, ~ the stand-ins):
//  - EncodeRows returns upper bounds of ||x||, ||x~|| and ||x - x~||;
//    column_norms() holds upper bounds of ||W_j||, ||W~_j||, ||W_j - W~_j||.
//  - every output keeps |x~·W~_j - c~_j| <= relative_error()·||x~||·||W~_j||
//    + absolute_error() (its arithmetic: float32 summation in any order, an
//    integer sum converted to float32, flushed denormals, ...).
//  - a row of A with a value that is not finite gives outputs that are not
//    finite (NaN), so the screen sends that row to the dense path.
// Results need not match any other GEMM, nor another implementation, nor
// another CPU.
//
// Implementations, picked by CreateScreenGemm in this order:
//   AmxBf16Gemm     Intel AMX (TDPBF16PS tiles)           engine/amx_gemm.h
//   Avx512Bf16Gemm  AVX512-BF16 (VDPBF16PS), e.g. Zen 4   engine/avx512_bf16_gemm.h
//   Avx2Int16Gemm   AVX2 (VPMADDWD), e.g. Zen 3, Haswell  engine/avx2_int16_gemm.h
// Each has its own Available() and an environment switch to disable it
// (SAEDICT_NO_AMX, SAEDICT_NO_AVX512_BF16, SAEDICT_NO_AVX2_INT16), so one
// machine can test the next one down the list and the path without any.
//
// Thread safety: implementations are immutable after creation; EncodeRows
// and Multiply are const and may be called concurrently.
#ifndef SAEDICT_ENGINE_SCREEN_GEMM_H_
#define SAEDICT_ENGINE_SCREEN_GEMM_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace saedict::engine {

// Upper bounds of a row's ||x||, ||x~|| and ||x - x~||.
struct RowNorms {
  double input = 0.0, screen = 0.0, residual = 0.0;
};

double NormUpperBound(double sum_sq);  // below

// Sums of squares, in double, of a vector v, its stand-in v~ and v - v~
// (exact: v - v~ is a float difference), one value at a time; UpperBounds()
// gives what RowNorms holds. EncodeRows and SetColumnNorms share it.
struct ResidualSquares {
  double input = 0.0, screen = 0.0, residual = 0.0;
  void Add(double v, double v_stand_in) {
    input += v * v;
    screen += v_stand_in * v_stand_in;
    residual += (v - v_stand_in) * (v - v_stand_in);
  }
  RowNorms UpperBounds() const {
    return {NormUpperBound(input), NormUpperBound(screen), NormUpperBound(residual)};
  }
};

// Upper bounds, per column j of B, of ||W_j||, ||W~_j|| and ||W_j - W~_j||.
struct ColumnNorms {
  std::vector<float> input, screen, residual;
};

class ScreenGemm {
 public:
  virtual ~ScreenGemm() = default;

  // Bytes of one row in the screen's own encoding (EncodeRows' output).
  virtual int64_t encoded_row_bytes() const = 0;
  // a: [m, k] row-major float32. Writes m encoded rows, encoded_row_bytes()
  // apart, to `encoded` (aligned to 8 bytes), and norms[i] for each row.
  virtual void EncodeRows(const float* a, int64_t m, void* encoded, RowNorms* norms) const = 0;
  // encoded: m rows from EncodeRows; c: rows of ldc >= n floats, columns
  // [0, n) of the first m rows overwritten.
  virtual void Multiply(const void* encoded, int64_t m, float* c, int64_t ldc) const = 0;

  // The error of the arithmetic (see the contract above).
  virtual double relative_error() const = 0;
  virtual double absolute_error() const = 0;
  // Bytes of the packed low-precision copy of B (column norms not included).
  virtual int64_t packed_bytes() const = 0;
  // "amx-bf16", "avx512-bf16" or "avx2-int16", for logs and benchmarks.
  virtual std::string_view name() const = 0;
  // Whether FAST_EXACT with this screen measured clearly faster than the F32
  // path, so that the default mode (Encoder::fastest_exact_mode) is
  // FAST_EXACT; otherwise it runs only when asked for.
  virtual bool faster_than_f32() const = 0;

  const ColumnNorms& column_norms() const { return column_norms_; }

 protected:
  // Fills column_norms() from b ([k, n] row-major) and its stand-in:
  // stand_in(p, row, out) writes row p of B~ (n values, exactly) to `out`.
  void SetColumnNorms(const float* b, int64_t k, int64_t n,
                      const std::function<void(int64_t, const float*, double*)>& stand_in);

 private:
  ColumnNorms column_norms_;
};

// A ScreenGemm whose stand-ins are bf16 roundings (Bf16Matmul::RoundToBf16)
// of A and B, multiplied with float32 accumulation: each output is the sum
// of its k exact bf16 products (exact in float32) in some order, with one
// float32 rounding per addition (nearest or directed) and denormal inputs
// and results possibly flushed to zero. An encoded row is k bf16 values.
class Bf16ScreenGemm : public ScreenGemm {
 public:
  int64_t encoded_row_bytes() const override { return 2 * k_; }
  void EncodeRows(const float* a, int64_t m, void* encoded, RowNorms* norms) const override;
  // Gamma(k) for unit roundoff 2^-23 (allowing for directed rounding).
  double relative_error() const override;
  // 3·k·2^-126: products and partial sums flushed to zero.
  double absolute_error() const override;
  // Measured 1.3-2.0x the F32 encode (AMX on Sapphire Rapids, AVX512-BF16
  // on Zen 4; README, bench/run_encode_bench.sh).
  bool faster_than_f32() const override { return true; }

 protected:
  explicit Bf16ScreenGemm(int64_t k) : k_(k) {}
  // SetColumnNorms for B's bf16 rounding.
  void SetBf16ColumnNorms(const float* b, int64_t k, int64_t n);

 private:
  int64_t k_;
};

// True when some implementation runs on this CPU (and is not switched off).
bool ScreenGemmAvailable();
// True when the implementation CreateScreenGemm picks here is faster_than_f32().
bool ScreenGemmFasterThanF32();

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

// The recursive-summation constant gamma_n = n·u / (1 - n·u) (infinity when
// n·u >= 1/2).
double SummationGamma(int64_t n, double u);

// The smallest float >= v (v finite, >= 0), and the same for sqrt(sum_sq)
// where sum_sq is a double sum of n squares (its rounding covered).
float RoundUpToFloat(double v);
double NormUpperBound(double sum_sq);

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_SCREEN_GEMM_H_
