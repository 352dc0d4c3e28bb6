// CreateScreenGemm: the first ScreenGemm implementation this CPU runs (see
// screen_gemm.h for the order), and the parts all implementations share:
// the column norms and the bf16 stand-in.
#include "engine/screen_gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/amx_gemm.h"
#include "engine/avx2_int16_gemm.h"
#include "engine/avx512_bf16_gemm.h"
#include "engine/bf16_matmul.h"
#include "engine/parallel.h"
#include "util/half.h"

namespace saedict::engine {

bool EnvironmentSwitchSet(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
}

double SummationGamma(int64_t n, double u) {
  const double nu = static_cast<double>(n) * u;
  return nu < 0.5 ? nu / (1.0 - nu) : std::numeric_limits<double>::infinity();
}

float RoundUpToFloat(double v) {
  float f = static_cast<float>(v);
  if (static_cast<double>(f) < v) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}

double NormUpperBound(double sum_sq) {
  // A double sum of n squares is within n·2^-53 relative (n < 2^23 here);
  // 2^-30 before and after the square root covers it and the sqrt's rounding.
  constexpr double kSlack = 1.0 + 0x1p-30;
  return std::sqrt(sum_sq * kSlack) * kSlack;
}

void ScreenGemm::SetColumnNorms(
    const float* b, int64_t k, int64_t n,
    const std::function<void(int64_t, const float*, double*)>& stand_in) {
  std::vector<ResidualSquares> sums(n);
  std::vector<double> row(n);
  for (int64_t p = 0; p < k; ++p) {  // B's storage order: one pass over memory
    const float* b_row = b + p * n;
    stand_in(p, b_row, row.data());
    for (int64_t j = 0; j < n; ++j) sums[j].Add(b_row[j], row[j]);
  }
  column_norms_.input.resize(n);
  column_norms_.screen.resize(n);
  column_norms_.residual.resize(n);
  for (int64_t j = 0; j < n; ++j) {
    const RowNorms bounds = sums[j].UpperBounds();
    column_norms_.input[j] = RoundUpToFloat(bounds.input);
    column_norms_.screen[j] = RoundUpToFloat(bounds.screen);
    column_norms_.residual[j] = RoundUpToFloat(bounds.residual);
  }
}

void Bf16ScreenGemm::EncodeRows(const float* a, int64_t m, void* encoded, RowNorms* norms) const {
  uint16_t* out = static_cast<uint16_t*>(encoded);
  ParallelFor(m, std::max<int64_t>(1, (int64_t{1} << 15) / k_), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* x = a + i * k_;
      uint16_t* xt = out + i * k_;
      Bf16Matmul::RoundToBf16(x, k_, xt);
      ResidualSquares sums;
      for (int64_t p = 0; p < k_; ++p) sums.Add(x[p], Bf16ToFloat(xt[p]));
      norms[i] = sums.UpperBounds();
    }
  });
}

double Bf16ScreenGemm::relative_error() const { return SummationGamma(k_, 0x1p-23); }

double Bf16ScreenGemm::absolute_error() const { return 3.0 * static_cast<double>(k_) * 0x1p-126; }

void Bf16ScreenGemm::SetBf16ColumnNorms(const float* b, int64_t k, int64_t n) {
  std::vector<uint16_t> rounded(n);
  SetColumnNorms(b, k, n, [&](int64_t, const float* row, double* out) {
    Bf16Matmul::RoundToBf16(row, n, rounded.data());
    for (int64_t j = 0; j < n; ++j) out[j] = Bf16ToFloat(rounded[j]);
  });
}

bool ScreenGemmAvailable() {
  return AmxBf16Gemm::Available() || Avx512Bf16Gemm::Available() || Avx2Int16Gemm::Available();
}

bool ScreenGemmFasterThanF32() {
  return AmxBf16Gemm::Available() || Avx512Bf16Gemm::Available();  // the bf16 ones
}

absl::StatusOr<std::unique_ptr<ScreenGemm>> CreateScreenGemm(const float* b, int64_t k, int64_t n) {
  if (b == nullptr || k <= 0 || n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("screen GEMM: bad weights (", k, "x", n, ", null: ", b == nullptr, ")"));
  }
  if (AmxBf16Gemm::Available()) return CreateScreenGemmAs<AmxBf16Gemm>(b, k, n);
  if (Avx512Bf16Gemm::Available()) return CreateScreenGemmAs<Avx512Bf16Gemm>(b, k, n);
  if (Avx2Int16Gemm::Available()) return CreateScreenGemmAs<Avx2Int16Gemm>(b, k, n);
  return absl::UnimplementedError(
      "screen GEMM: this CPU has none of AMX-BF16, AVX512-BF16 and AVX2 (or SAEDICT_NO_AMX / "
      "SAEDICT_NO_AVX512_BF16 / SAEDICT_NO_AVX2_INT16 switched them off)");
}

}  // namespace saedict::engine
