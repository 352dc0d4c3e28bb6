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
  std::vector<float> packed;  // residual rows of the running subset, when not all run

  for (int32_t step = 0; step < k && !active.empty(); ++step) {
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
    still_active.clear();
    for (int64_t t = 0; t < rows; ++t) {
      const float* s = scores + t * d_sae;
      const int64_t best = std::max_element(s, s + d_sae) - s;  // first maximum
      if (!(s[best] > 0.0f)) continue;
      float* r = residual + active[t] * d_in;
      const float* w = w_dec + best * d_in;
      double dot = 0.0;
      for (int64_t j = 0; j < d_in; ++j) dot += static_cast<double>(r[j]) * w[j];
      if (!(dot > 0.0)) continue;
      const float coef = static_cast<float>(dot / decoder_norm_sq_[best]);
      auto& row_acts = acts[active[t]];
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
      if (threshold > 0.0 && std::sqrt(norm_sq) < threshold) continue;
      still_active.push_back(active[t]);
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
