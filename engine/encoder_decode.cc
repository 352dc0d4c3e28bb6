// Encoder: decode, reconstruction and intervention (see encoder.h).
//
// Decoding is a sparse accumulation over the active rows of W_dec, never a
// dense GEMM. Per the reference (SAELens): a topk dictionary with
// rescale_acts_by_decoder_norm decodes f_i / ||W_dec_i||, and a matching
// pursuit dictionary adds b_dec only when it was subtracted from the input.
//
// Normalization is per input row, so Decode(codes), which sees no input,
// cannot undo it: it returns f W_dec + b_dec in the normalized space (as if
// scale 1, shift 0). Encode's reconstruction and Intervene undo it with the
// input row's own statistics. Likewise a skip transcoder's x W_skip^T needs
// the input: Encode's reconstruction and Intervene add it, Decode cannot.
//
// Transcoders decode to another hook (width d_out): Intervene returns the
// edited output f' W_dec + b_dec (+ x W_skip^T), not x + (f' - f) W_dec,
// since the input lives at a different hook than the decoder writes.
#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/encoder.h"
#include "engine/encoder_impl.h"
#include "util/status_macros.h"

namespace saedict::engine {
namespace {

using RowEntries = std::vector<std::pair<uint32_t, float>>;

absl::Status ValidateEditList(absl::Span<const FeatureEdit> edits, int64_t n, int64_t d_sae) {
  std::vector<int64_t> rows;
  for (size_t e = 0; e < edits.size(); ++e) {
    const FeatureEdit& edit = edits[e];
    if (edit.feature >= d_sae) {
      return absl::InvalidArgumentError(absl::StrCat("edit ", e, ": feature ", edit.feature,
                                                     " out of range [0, d_sae=", d_sae, ")"));
    }
    switch (edit.op) {
      case EditOp::kSet:
      case EditOp::kAdd:
      case EditOp::kScale:
      case EditOp::kAblate:
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("edit ", e, ": unknown op ", static_cast<int>(edit.op)));
    }
    if (!std::isfinite(edit.value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("edit ", e, ": value ", edit.value, " is not finite"));
    }
    for (int64_t row : edit.rows) {
      if (row < 0 || row >= n) {
        return absl::InvalidArgumentError(
            absl::StrCat("edit ", e, ": row ", row, " out of range [0, n=", n, ")"));
      }
    }
    rows = edit.rows;
    std::sort(rows.begin(), rows.end());
    auto dup = std::adjacent_find(rows.begin(), rows.end());
    if (dup != rows.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("edit ", e, ": row ", *dup, " is listed more than once"));
    }
  }
  return absl::OkStatus();
}

void ApplyEdit(const FeatureEdit& edit, RowEntries* entries) {
  auto it = std::lower_bound(entries->begin(), entries->end(), edit.feature,
                             [](const auto& e, uint32_t f) { return e.first < f; });
  const bool present = it != entries->end() && it->first == edit.feature;
  float value = present ? it->second : 0.0f;
  switch (edit.op) {
    case EditOp::kSet:
      value = edit.value;
      break;
    case EditOp::kAdd:
      value += edit.value;
      break;
    case EditOp::kScale:
      value *= edit.value;
      break;
    case EditOp::kAblate:
      value = 0.0f;
      break;
  }
  if (present) {
    it->second = value;
  } else if (value != 0.0f) {
    entries->insert(it, {edit.feature, value});
  }
}

}  // namespace

void Encoder::Impl::AccumulateDecode(const uint32_t* indices, const float* values, int64_t nnz,
                                     float scale, float* out) const {
  const int64_t d_out = config().decoder_dim();
  const float* w_dec = dict().w_dec.data();
  for (int64_t e = 0; e < nnz; ++e) {
    float coef = values[e] * scale;
    if (!decode_factor_.empty()) coef *= decode_factor_[indices[e]];
    const float* w = w_dec + static_cast<int64_t>(indices[e]) * d_out;
    for (int64_t j = 0; j < d_out; ++j) out[j] += coef * w[j];
  }
}

void Encoder::Impl::ReconstructRow(const uint32_t* indices, const float* values, int64_t nnz,
                                   const RowNorm& norm, const float* x_row, float* out) const {
  const DictionaryConfig& c = config();
  const int64_t d_out = c.decoder_dim();
  if (add_b_dec_on_decode_) {
    std::copy_n(dict().b_dec.data(), d_out, out);
  } else {
    std::fill_n(out, d_out, 0.0f);
  }
  AccumulateDecode(indices, values, nnz, 1.0f, out);
  if (x_row != nullptr && dict().has_skip()) {
    // out[o] += sum_j W_skip[o, j] x[j], one fixed order per element.
    const float* w_skip = dict().w_skip.data();
    for (int64_t o = 0; o < d_out; ++o) {
      const float* w = w_skip + o * c.d_in;
      float sum = 0.0f;
      for (int64_t j = 0; j < c.d_in; ++j) sum += w[j] * x_row[j];
      out[o] += sum;
    }
  }
  if (norm.out_scale != 1.0f || norm.out_shift != 0.0f) {
    for (int64_t j = 0; j < d_out; ++j) out[j] = out[j] * norm.out_scale + norm.out_shift;
  }
}

absl::StatusOr<std::vector<float>> Encoder::Decode(const SparseCodes& codes) const {
  const DictionaryConfig& c = dictionary_->config;
  if (codes.num_features != c.d_sae) {
    return absl::InvalidArgumentError(
        absl::StrCat("codes.num_features is ", codes.num_features, ", expected d_sae ", c.d_sae));
  }
  SAEDICT_RETURN_IF_ERROR(codes.Validate());
  const int64_t d_out = c.decoder_dim();
  std::vector<float> out(static_cast<size_t>(codes.num_rows * d_out));
  const RowNorm identity;
  for (int64_t r = 0; r < codes.num_rows; ++r) {
    const uint64_t begin = codes.row_offsets[r];
    impl_->ReconstructRow(codes.indices.data() + begin, codes.values.data() + begin,
                          static_cast<int64_t>(codes.row_offsets[r + 1] - begin), identity,
                          /*x_row=*/nullptr, out.data() + r * d_out);
  }
  return out;
}

absl::Status Encoder::ValidateEdits(int64_t n, absl::Span<const FeatureEdit> edits) const {
  return ValidateEditList(edits, n, dictionary_->config.d_sae);
}

absl::StatusOr<InterveneResult> Encoder::Intervene(absl::Span<const float> x, int64_t n,
                                                   absl::Span<const FeatureEdit> edits,
                                                   const EncodeOptions& options) const {
  SAEDICT_RETURN_IF_ERROR(impl_->ValidateInput(x, n, options));
  SAEDICT_RETURN_IF_ERROR(ValidateEdits(n, edits));
  SparseCodes f;
  std::vector<RowNorm> norms;
  SAEDICT_RETURN_IF_ERROR(impl_->EncodeCodes(x, n, options, &f, &norms));
  InterveneResult result = EditEncoded(x, n, f, norms, edits);
  result.compute_mode = impl_->EffectiveMode(options.compute_mode);
  return result;
}

absl::StatusOr<InterveneResult> Encoder::ApplyEdits(absl::Span<const float> x, int64_t n,
                                                    const SparseCodes& codes,
                                                    absl::Span<const FeatureEdit> edits) const {
  SAEDICT_RETURN_IF_ERROR(impl_->CheckEncodedShape(x, n, codes));
  SAEDICT_RETURN_IF_ERROR(codes.Validate());
  SAEDICT_RETURN_IF_ERROR(ValidateEdits(n, edits));
  return EditEncoded(x, n, codes, impl_->RowNorms(x, n), edits);
}

InterveneResult Encoder::EditEncoded(absl::Span<const float> x, int64_t n, const SparseCodes& f,
                                     absl::Span<const RowNorm> norms,
                                     absl::Span<const FeatureEdit> edits) const {
  const DictionaryConfig& c = dictionary_->config;
  // Per edit, its rows sorted for membership tests (empty: every row).
  std::vector<std::vector<int64_t>> edit_rows(edits.size());
  for (size_t e = 0; e < edits.size(); ++e) {
    edit_rows[e] = edits[e].rows;
    std::sort(edit_rows[e].begin(), edit_rows[e].end());
  }

  InterveneResult result;
  const bool transcoder = c.is_transcoder();
  if (transcoder) {
    result.activations.resize(static_cast<size_t>(n * c.d_out));
  } else {
    result.activations.assign(x.begin(), x.end());
  }
  SparseCodes& g = result.edited_codes;
  g.num_rows = n;
  g.num_features = c.d_sae;
  g.row_offsets.assign(1, 0);
  g.row_offsets.reserve(n + 1);
  RowEntries entries;
  std::vector<uint32_t> delta_index;
  std::vector<float> delta_value;
  for (int64_t r = 0; r < n; ++r) {
    const uint64_t begin = f.row_offsets[r];
    const uint64_t end = f.row_offsets[r + 1];
    entries.clear();
    for (uint64_t e = begin; e < end; ++e) entries.emplace_back(f.indices[e], f.values[e]);
    for (size_t e = 0; e < edits.size(); ++e) {
      if (!edit_rows[e].empty() &&
          !std::binary_search(edit_rows[e].begin(), edit_rows[e].end(), r)) {
        continue;
      }
      ApplyEdit(edits[e], &entries);
    }
    for (const auto& [feature, value] : entries) {
      if (value == 0.0f) continue;
      g.indices.push_back(feature);
      g.values.push_back(value);
    }
    g.row_offsets.push_back(g.indices.size());
    if (transcoder) {  // the edited output at the output hook (no f' - f needed)
      const uint64_t row_begin = g.row_offsets[r];
      impl_->ReconstructRow(g.indices.data() + row_begin, g.values.data() + row_begin,
                            static_cast<int64_t>(g.row_offsets[r + 1] - row_begin), norms[r],
                            x.data() + r * c.d_in, result.activations.data() + r * c.d_out);
      continue;
    }
    // Merge f and f' (both ascending) into the nonzero differences f' - f.
    delta_index.clear();
    delta_value.clear();
    uint64_t a = begin;
    size_t b = 0;
    while (a < end || b < entries.size()) {
      uint32_t feature;
      float before = 0.0f;
      float after = 0.0f;
      if (b == entries.size() || (a < end && f.indices[a] < entries[b].first)) {
        feature = f.indices[a];
        before = f.values[a++];
      } else if (a == end || entries[b].first < f.indices[a]) {
        feature = entries[b].first;
        after = entries[b++].second;
      } else {
        feature = f.indices[a];
        before = f.values[a++];
        after = entries[b++].second;
      }
      if (after != before) {
        delta_index.push_back(feature);
        delta_value.push_back(after - before);
      }
    }
    if (delta_index.empty()) continue;  // row unchanged: x is returned exactly
    // x + (f' - f) W_dec, mapped back through the row's normalization scale.
    impl_->AccumulateDecode(delta_index.data(), delta_value.data(),
                            static_cast<int64_t>(delta_index.size()), norms[r].out_scale,
                            result.activations.data() + r * c.d_in);
  }
  return result;
}

}  // namespace saedict::engine
