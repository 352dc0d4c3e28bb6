// Per-row activation and threshold-based top-k selection (see activation.h).
//
// SelectTopK keeps a candidate buffer and a running threshold t: only values
// above t are buffered, and when the buffer fills it is cut to its k best
// (nth_element) and t rises to the k-th best value. t starts at a lower
// bound of the k-th largest value (the k-th largest of the maxima of 16-entry
// strided blocks, one vectorized pass), so only about k to 2k entries are
// buffered. A
// 16-wide SIMD compare skips most of the row, so for k << d_sae the cost is
// about two streaming reads of the row.
#include "engine/activation.h"

#include <algorithm>
#include <cmath>
#include <functional>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace saedict::engine {
namespace {

constexpr int64_t kBlock = 16;

struct Candidate {
  float value;
  uint32_t index;
};

// Strict weak order "a ranks before b": larger value, then lower index.
inline bool Better(const Candidate& a, const Candidate& b) {
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

// Bit i set iff v[i] > t, for i in [0, 16). Uses the widest SIMD compiled in.
inline uint32_t AboveMask(const float* v, float t) {
#if defined(__AVX512F__)
  return _mm512_cmp_ps_mask(_mm512_loadu_ps(v), _mm512_set1_ps(t), _CMP_GT_OQ);
#elif defined(__AVX__)
  const __m256 tv = _mm256_set1_ps(t);
  const uint32_t lo = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v), tv, _CMP_GT_OQ));
  const uint32_t hi = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v + 8), tv, _CMP_GT_OQ));
  return lo | (hi << 8);
#elif defined(__SSE2__)
  const __m128 tv = _mm_set1_ps(t);
  uint32_t mask = 0;
  for (int q = 0; q < 4; ++q) {
    mask |= static_cast<uint32_t>(_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(v + 4 * q), tv)))
            << (4 * q);
  }
  return mask;
#else
  uint32_t mask = 0;
  for (int i = 0; i < kBlock; ++i) mask |= static_cast<uint32_t>(v[i] > t) << i;
  return mask;
#endif
}

// A lower bound of the k-th largest value of v[0, d) (needs d >= 16 k): the
// k-th largest of the maxima of d / 16 blocks of 16 entries, since k blocks
// hold an entry >= it. Any partition into blocks gives a bound; strided
// blocks (block j = {v[j], v[j + nb], ..., v[j + 15 nb]}, nb = d / 16) make
// the maxima one vertical, vectorized max over 16 runs of the row, where
// contiguous blocks needed a horizontal max each (measured ~30 cycles a
// block). For k << d only about k to 2k entries of the row lie above it.
inline float KthLowerBound(const float* v, int64_t d, int32_t k) {
  thread_local std::vector<float> maxima;
  const int64_t nb = d / kBlock;
  maxima.assign(v, v + nb);
  float* __restrict m = maxima.data();
  for (int64_t i = 1; i < kBlock; ++i) {
    const float* __restrict run = v + i * nb;
    for (int64_t j = 0; j < nb; ++j) m[j] = m[j] < run[j] ? run[j] : m[j];
  }
  std::nth_element(maxima.begin(), maxima.begin() + (k - 1), maxima.end(), std::greater<float>());
  return maxima[k - 1];
}

int64_t CollectPositive(const float* v, int64_t d, std::vector<uint32_t>* indices,
                        std::vector<float>* values) {
  const size_t before = indices->size();
  int64_t j = 0;
  for (; j + kBlock <= d; j += kBlock) {
    for (uint32_t mask = AboveMask(v + j, 0.0f); mask != 0; mask &= mask - 1) {
      const int64_t i = j + __builtin_ctz(mask);
      indices->push_back(static_cast<uint32_t>(i));
      values->push_back(v[i]);
    }
  }
  for (; j < d; ++j) {
    if (v[j] > 0.0f) {
      indices->push_back(static_cast<uint32_t>(j));
      values->push_back(v[j]);
    }
  }
  return static_cast<int64_t>(indices->size() - before);
}

// Cuts `buf` to its `keep` best and returns the new threshold (the k-th best
// value). Later candidates have higher indices, so they must beat it strictly.
__attribute__((noinline)) float Cut(std::vector<Candidate>& buf, size_t keep) {
  std::nth_element(buf.begin(), buf.begin() + (keep - 1), buf.end(), Better);
  buf.resize(keep);
  return buf[keep - 1].value;
}

// Cuts `buf` to its `keep` best (when it holds more) and appends them in
// ascending index order. Returns how many.
int64_t AppendBest(std::vector<Candidate>& buf, size_t keep, std::vector<uint32_t>* indices,
                   std::vector<float>* values) {
  if (buf.size() > keep) Cut(buf, keep);
  std::sort(buf.begin(), buf.end(),
            [](const Candidate& a, const Candidate& b) { return a.index < b.index; });
  for (const Candidate& c : buf) {
    indices->push_back(c.index);
    values->push_back(c.value);
  }
  return static_cast<int64_t>(buf.size());
}

}  // namespace

int64_t SelectTopK(const float* v, int64_t d, int32_t k, std::vector<uint32_t>* indices,
                   std::vector<float>* values) {
  if (k <= 0 || k >= d) return CollectPositive(v, d, indices, values);
  thread_local std::vector<Candidate> scratch;
  std::vector<Candidate>& buf = scratch;
  const size_t keep = static_cast<size_t>(k);
  const size_t capacity = std::max<size_t>(4 * keep, 256);
  buf.clear();
  buf.reserve(capacity + kBlock);
  // Only strictly positive values can be kept. When the row is long enough,
  // start from a cheap lower bound of the k-th largest value instead of 0:
  // entries equal to the bound may still be selected, hence the nextafter.
  float t = 0.0f;
  if (d >= kBlock * static_cast<int64_t>(k)) {
    const float bound = KthLowerBound(v, d, k);
    if (bound > 0.0f) t = std::nextafter(bound, 0.0f);
  }
  int64_t j = 0;
  for (; j + kBlock <= d; j += kBlock) {
    uint32_t mask = AboveMask(v + j, t);
    if (mask == 0) continue;
    for (; mask != 0; mask &= mask - 1) {
      const int64_t i = j + __builtin_ctz(mask);
      buf.push_back({v[i], static_cast<uint32_t>(i)});
    }
    // A whole block is buffered before cutting: its entries were all > the
    // old threshold, and the cut keeps exactly the k best of everything.
    if (buf.size() >= capacity) t = Cut(buf, keep);
  }
  for (; j < d; ++j) {
    if (v[j] > t) buf.push_back({v[j], static_cast<uint32_t>(j)});
  }
  return AppendBest(buf, keep, indices, values);
}

int64_t ActivateRow(const ActivationParams& p, float* row, std::vector<uint32_t>* indices,
                    std::vector<float>* values) {
  const int64_t d = p.d_sae;
  switch (p.architecture) {
    case Architecture::kStandard:
      for (int64_t j = 0; j < d; ++j) row[j] += p.b_enc[j];
      break;
    case Architecture::kTopK:
      if (p.scale != nullptr) {
        for (int64_t j = 0; j < d; ++j) row[j] = (row[j] + p.b_enc[j]) * p.scale[j];
      } else {
        for (int64_t j = 0; j < d; ++j) row[j] += p.b_enc[j];
      }
      break;
    case Architecture::kJumpReLU:
      for (int64_t j = 0; j < d; ++j) {
        const float h = row[j] + p.b_enc[j];
        row[j] = h > p.threshold[j] ? h : 0.0f;
      }
      break;
    case Architecture::kGated:
      // x'(W_enc ⊙ exp(r_mag)) == (x' W_enc) ⊙ exp(r_mag): one GEMM serves both paths.
      for (int64_t j = 0; j < d; ++j) {
        const float pre = row[j];
        const float magnitude = pre * p.scale[j] + p.b_mag[j];
        row[j] = pre + p.b_gate[j] > 0.0f ? magnitude : 0.0f;
      }
      break;
    case Architecture::kMatchingPursuit:
      return 0;  // handled by matching_pursuit.cc
  }
  return SelectTopK(row, d, p.k, indices, values);
}

int64_t ActivateListed(const ActivationParams& p, const uint32_t* features, const float* c,
                       int64_t count, std::vector<uint32_t>* indices, std::vector<float>* values) {
  thread_local std::vector<Candidate> scratch;
  std::vector<Candidate>& buf = scratch;
  buf.clear();
  for (int64_t e = 0; e < count; ++e) {
    const float v = ActivatedValue(p, features[e], c[e]);
    if (v > 0.0f) buf.push_back({v, features[e]});
  }
  return AppendBest(buf, p.k > 0 ? static_cast<size_t>(p.k) : buf.size(), indices, values);
}

}  // namespace saedict::engine
