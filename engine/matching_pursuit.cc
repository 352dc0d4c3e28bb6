// Matching pursuit encode (MP-SAE, DESIGN.md §2) over one tile of rows.
//
// Per row: r = x'; for up to k steps: i = argmax_j r·W_dec_j, using the
// signed inner product (as SAELens, which takes the max of relu(r·W_dec^T));
// stop when that maximum is <= 0, i.e. no atom correlates positively, so
// every coefficient is positive. c = (r·W_dec_i) / ||W_dec_i||^2 (the
// projection; equal to SAELens's r·W_dec_i for unit-norm decoders), f_i += c
// (an atom picked again accumulates), r -= c·W_dec_i, and stop when
// ||r|| < mp_residual_threshold (checked after each step, as SAELens; a
// threshold of 0 never stops early). SAELens's optional
// stop_on_duplicate_support has no counterpart in DictionaryConfig.
//
// Each step scores all still-running rows of the tile with one GEMM
// (r · W_dec^T); the selected inner product is then recomputed exactly in
// float64 from r and W_dec_i, so the BF16 mode only affects the choice of i.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "engine/encoder_impl.h"
#include "engine/parallel.h"
#include "util/status_macros.h"

namespace saedict::engine {

absl::Status Encoder::Impl::MatchingPursuitTile(float* residual, int64_t m, int32_t k,
                                                ComputeMode mode, float* scores,
                                                SparseCodes* codes) const {
  const DictionaryConfig& c = config();
  const int64_t d_in = c.d_in;
  const int64_t d_sae = c.d_sae;
  const float* w_dec = dict().w_dec.data();
  const double threshold = c.mp_residual_threshold;

  std::vector<std::vector<std::pair<uint32_t, float>>> acts(m);
  std::vector<int64_t> active(m);
  std::iota(active.begin(), active.end(), 0);
  std::vector<int64_t> still_active;
  std::vector<char> keep;     // per running row: continue after this step
  std::vector<float> packed;  // residual rows of the running subset, when not all run
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / (d_sae + d_in));

  // One greedy step for `row` given its scores r·W_dec^T; false when it stops.
  auto greedy_step = [&](const float* s, int64_t row) -> bool {
    const int64_t best = std::max_element(s, s + d_sae) - s;  // first maximum
    if (!(s[best] > 0.0f)) return false;
    float* r = residual + row * d_in;
    const float* w = w_dec + best * d_in;
    double dot = 0.0;
    for (int64_t j = 0; j < d_in; ++j) dot += static_cast<double>(r[j]) * w[j];
    if (!(dot > 0.0)) return false;
    const float coef = static_cast<float>(dot / decoder_norm_sq_[best]);
    auto& row_acts = acts[row];
    auto it = std::find_if(row_acts.begin(), row_acts.end(),
                           [&](const auto& e) { return e.first == best; });
    if (it == row_acts.end()) {
      row_acts.emplace_back(static_cast<uint32_t>(best), coef);
    } else {
      it->second += coef;
    }
    double norm_sq = 0.0;
    for (int64_t j = 0; j < d_in; ++j) {
      r[j] -= coef * w[j];
      norm_sq += static_cast<double>(r[j]) * r[j];
    }
    return !(threshold > 0.0 && std::sqrt(norm_sq) < threshold);
  };

  for (int32_t iteration = 0; iteration < k && !active.empty(); ++iteration) {
    const int64_t rows = static_cast<int64_t>(active.size());
    const float* a = residual;
    if (rows != m) {
      packed.resize(static_cast<size_t>(rows * d_in));
      for (int64_t t = 0; t < rows; ++t) {
        std::copy_n(residual + active[t] * d_in, d_in, packed.data() + t * d_in);
      }
      a = packed.data();
    }
    SAEDICT_RETURN_IF_ERROR(EncoderGemm(a, rows, mode, scores));
    keep.assign(rows, 0);
    ParallelFor(rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) keep[t] = greedy_step(scores + t * d_sae, active[t]);
    });
    still_active.clear();
    for (int64_t t = 0; t < rows; ++t) {
      if (keep[t]) still_active.push_back(active[t]);
    }
    active.swap(still_active);
  }

  for (auto& row_acts : acts) {
    std::sort(row_acts.begin(), row_acts.end());
    for (const auto& [index, value] : row_acts) {
      if (value == 0.0f) continue;
      codes->indices.push_back(index);
      codes->values.push_back(value);
    }
    codes->row_offsets.push_back(codes->indices.size());
  }
  return absl::OkStatus();
}

}  // namespace saedict::engine
