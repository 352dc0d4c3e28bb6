// HistogramBin / HistogramBinRange (declared in corpus_store.h): quarter-
// octave log bins over |value|, negated for negative values. With
// kBinOffset = 600 every finite non-zero float lands in 5..1112 (or its
// negation): the smallest subnormal 2^-149 in bin 5, values near FLT_MAX in
// bin 1112. Pure functions, thread-safe.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "storage/corpus_store.h"

namespace saedict::storage {
namespace {

// 2^(1/4), 2^(2/4), 2^(3/4): no float equals one, so comparing a float's
// mantissa against these doubles gives the exact quarter.
constexpr double kQuarterSteps[3] = {1.189207115002721, 1.4142135623730951, 1.681792830507429};

// The smallest 23-bit mantissa field M with 1 + M / 2^23 >= kQuarterSteps[q]:
// comparing a normal float's mantissa bits against these equals comparing
// its [1, 2) mantissa against the doubles.
constexpr uint32_t MantissaStep(double step) {
  const double scaled = (step - 1.0) * 8388608.0;  // exact: a power-of-two scaling
  const auto floor = static_cast<uint32_t>(scaled);
  return static_cast<double>(floor) == scaled ? floor : floor + 1;
}
constexpr uint32_t kMantissaSteps[3] = {MantissaStep(kQuarterSteps[0]),
                                        MantissaStep(kQuarterSteps[1]),
                                        MantissaStep(kQuarterSteps[2])};

// frexp-based definition; used for subnormals (and by the tests as reference).
int32_t HistogramBinByFrexp(float value) {
  int exp = 0;
  const double mant = 2.0 * std::frexp(std::fabs(static_cast<double>(value)), &exp);  // [1, 2)
  int quarter = 0;
  while (quarter < 3 && mant >= kQuarterSteps[quarter]) ++quarter;
  // floor(4 * log2|v|) = 4 * (exp - 1) + quarter; bin b covers floor == b - 1 - kBinOffset.
  int32_t bin = 4 * (exp - 1) + quarter + kBinOffset + 1;
  if (bin < 1) bin = 1;  // cannot happen for floats; keeps the sign meaningful
  return value < 0 ? -bin : bin;
}

}  // namespace

int32_t HistogramBin(float value) {
  if (value == 0 || std::isnan(value)) return 0;
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  const uint32_t biased = (bits >> 23) & 0xFFu;
  if (biased == 0 || biased == 0xFFu) return HistogramBinByFrexp(value);  // subnormal, inf
  // Normal (or infinite): |v| = 1.M * 2^(biased - 127), frexp's exp = biased - 126.
  const uint32_t mantissa = bits & 0x7FFFFFu;
  const int32_t quarter = static_cast<int32_t>(mantissa >= kMantissaSteps[0]) +
                          static_cast<int32_t>(mantissa >= kMantissaSteps[1]) +
                          static_cast<int32_t>(mantissa >= kMantissaSteps[2]);
  const int32_t bin = 4 * (static_cast<int32_t>(biased) - 127) + quarter + kBinOffset + 1;
  return value < 0 ? -bin : bin;
}

int32_t HistogramBinReferenceForTest(float value) {
  if (value == 0 || std::isnan(value)) return 0;
  return HistogramBinByFrexp(value);
}

std::pair<float, float> HistogramBinRange(int32_t bin) {
  if (bin == 0) return {0.0f, 0.0f};
  const int32_t b = bin < 0 ? -bin : bin;
  const auto lower = static_cast<float>(std::exp2((b - 1 - kBinOffset) / 4.0));
  const auto upper = static_cast<float>(std::exp2((b - kBinOffset) / 4.0));
  if (bin > 0) return {lower, upper};
  return {-upper, -lower};  // negative bins: (-upper, -lower] mirrored
}

}  // namespace saedict::storage
