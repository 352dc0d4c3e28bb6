// CreateScreenGemm: the first ScreenGemm implementation this CPU runs (see
// screen_gemm.h for the order).
#include "engine/screen_gemm.h"

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/amx_gemm.h"
#include "engine/avx512_bf16_gemm.h"

namespace saedict::engine {

bool EnvironmentSwitchSet(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
}

bool ScreenGemmAvailable() { return AmxBf16Gemm::Available() || Avx512Bf16Gemm::Available(); }

absl::StatusOr<std::unique_ptr<ScreenGemm>> CreateScreenGemm(const float* b, int64_t k, int64_t n) {
  if (b == nullptr || k <= 0 || n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("screen GEMM: bad weights (", k, "x", n, ", null: ", b == nullptr, ")"));
  }
  if (AmxBf16Gemm::Available()) return CreateScreenGemmAs<AmxBf16Gemm>(b, k, n);
  if (Avx512Bf16Gemm::Available()) return CreateScreenGemmAs<Avx512Bf16Gemm>(b, k, n);
  return absl::UnimplementedError(
      "screen GEMM: this CPU has neither AMX-BF16 nor AVX512-BF16 (or SAEDICT_NO_AMX / "
      "SAEDICT_NO_AVX512_BF16 switched them off)");
}

}  // namespace saedict::engine
