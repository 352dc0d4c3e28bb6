// Per-row activation and threshold-based top-k selection (see activation.h).
//
// SelectTopK keeps a candidate buffer and a running threshold t: only values
// above t are buffered, and when the buffer fills it is cut to its k best
// (nth_element) and t rises to the k-th best value. A 16-wide block test
// skips most of the row without branching per element, so for k << d_sae
// the pass costs about one streaming read of the row.
#include "engine/activation.h"

#include <algorithm>

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

inline bool AnyAbove(const float* v, float t) {
  int any = 0;
  for (int64_t i = 0; i < kBlock; ++i) any |= v[i] > t;
  return any != 0;
}

int64_t CollectPositive(const float* v, int64_t d, std::vector<uint32_t>* indices,
                        std::vector<float>* values) {
  const size_t before = indices->size();
  int64_t j = 0;
  for (; j + kBlock <= d; j += kBlock) {
    if (!AnyAbove(v + j, 0.0f)) continue;
    for (int64_t i = j; i < j + kBlock; ++i) {
      if (v[i] > 0.0f) {
        indices->push_back(static_cast<uint32_t>(i));
        values->push_back(v[i]);
      }
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

}  // namespace

int64_t SelectTopK(const float* v, int64_t d, int32_t k, std::vector<uint32_t>* indices,
                   std::vector<float>* values) {
  if (k <= 0 || k >= d) return CollectPositive(v, d, indices, values);
  thread_local std::vector<Candidate> buf;
  const size_t keep = static_cast<size_t>(k);
  const size_t capacity = std::max<size_t>(4 * keep, 256);
  buf.clear();
  buf.reserve(capacity);
  float t = 0.0f;  // only strictly positive values can be kept
  auto cut = [&] {
    std::nth_element(buf.begin(), buf.begin() + (keep - 1), buf.end(), Better);
    buf.resize(keep);
    // Later entries have higher indices, so they must beat the k-th strictly.
    t = buf[keep - 1].value;
  };
  auto consider = [&](int64_t i) {
    if (v[i] > t) {
      buf.push_back({v[i], static_cast<uint32_t>(i)});
      if (buf.size() >= capacity) cut();
    }
  };
  int64_t j = 0;
  for (; j + kBlock <= d; j += kBlock) {
    if (!AnyAbove(v + j, t)) continue;
    for (int64_t i = j; i < j + kBlock; ++i) consider(i);
  }
  for (; j < d; ++j) consider(j);
  if (buf.size() > keep) cut();
  std::sort(buf.begin(), buf.end(),
            [](const Candidate& a, const Candidate& b) { return a.index < b.index; });
  for (const Candidate& c : buf) {
    indices->push_back(c.index);
    values->push_back(c.value);
  }
  return static_cast<int64_t>(buf.size());
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

}  // namespace saedict::engine
