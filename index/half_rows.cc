// HalfRows (see half_rows.h).
#include "index/half_rows.h"

#include <cmath>

#include "engine/parallel.h"
#include "util/half.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace saedict::index {
namespace {

constexpr int64_t kLanes = 32;  // halves per step: four 8-wide FMA chains
constexpr int64_t kRowsPerChunk = 512;

void ScorePortable(const uint16_t* rows, int64_t n, int64_t stride, const float* q, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t* h = rows + i * stride;
    float acc[kLanes] = {};
    for (int64_t j = 0; j < stride; j += kLanes) {
      for (int64_t l = 0; l < kLanes; ++l) acc[l] = std::fma(q[j + l], F16ToFloat(h[j + l]), acc[l]);
    }
    float sum = 0;
    for (float a : acc) sum += a;
    out[i] = sum;
  }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma,f16c"))) void ScoreAvx2(const uint16_t* rows, int64_t n,
                                                        int64_t stride, const float* q,
                                                        float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t* h = rows + i * stride;
    // Four independent chains hide the FMA latency; the prefetch runs 2 KiB
    // ahead so the scan streams at memory speed.
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int64_t j = 0; j < stride; j += kLanes) {
      _mm_prefetch(reinterpret_cast<const char*>(h + j) + 2048, _MM_HINT_T0);
      const __m128i h0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + j));
      const __m128i h1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + j + 8));
      const __m128i h2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + j + 16));
      const __m128i h3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + j + 24));
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), _mm256_cvtph_ps(h0), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j + 8), _mm256_cvtph_ps(h1), a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j + 16), _mm256_cvtph_ps(h2), a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j + 24), _mm256_cvtph_ps(h3), a3);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    float sum = 0;
    for (float l : lanes) sum += l;
    out[i] = sum;
  }
}

bool HasAvx2F16c() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("f16c");
  return has;
}
#endif

}  // namespace

HalfRows::HalfRows(const std::vector<float>& unit_rows, int64_t n, int64_t d)
    : n_(n), d_(d), stride_((d + kLanes - 1) / kLanes * kLanes) {
  halves_.assign(static_cast<size_t>(n_ * stride_), 0);
  for (int64_t i = 0; i < n_; ++i) {
    for (int64_t j = 0; j < d_; ++j) halves_[i * stride_ + j] = FloatToF16(unit_rows[i * d_ + j]);
  }
}

void HalfRows::Score(const float* query, float* scores) const {
  std::vector<float> q(stride_, 0.0f);
  for (int64_t j = 0; j < d_; ++j) q[j] = query[j];
  engine::ParallelFor(n_, kRowsPerChunk, [&](int64_t begin, int64_t end) {
    const uint16_t* rows = halves_.data() + begin * stride_;
#if defined(__x86_64__)
    if (HasAvx2F16c()) {
      ScoreAvx2(rows, end - begin, stride_, q.data(), scores + begin);
      return;
    }
#endif
    ScorePortable(rows, end - begin, stride_, q.data(), scores + begin);
  });
}

double HalfRows::ErrorBound() const {
  const double d = static_cast<double>(d_);
  const double u32 = std::ldexp(1.0, -24);  // float32 unit roundoff
  const double half_rounding = std::ldexp(1.0, -11) + d * std::ldexp(1.0, -25);
  const double accumulation = 1.01 * d * u32 * (1 + std::ldexp(1.0, -11));
  const double unit_rounding = 4 * u32;  // query and row rounded to float32
  return half_rounding + accumulation + unit_rounding;
}

const char* HalfRows::KernelName() {
#if defined(__x86_64__)
  if (HasAvx2F16c()) return "avx2+f16c";
#endif
  return "portable";
}

}  // namespace saedict::index
