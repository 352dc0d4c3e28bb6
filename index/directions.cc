// Directions (see directions.h).
#include "index/directions.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace saedict::index {
namespace {

// Component j of feature i's direction of `kind` in the raw weights.
float RawComponent(const engine::Dictionary& d, DirectionKind kind, int64_t i, int64_t j) {
  return kind == DirectionKind::kDecoder ? d.w_dec[i * d.config.decoder_dim() + j]
                                         : d.w_enc[j * d.config.d_sae + i];
}

}  // namespace

const char* DirectionKindName(DirectionKind kind) {
  return kind == DirectionKind::kDecoder ? "decoder" : "encoder";
}

int64_t DirectionDim(const engine::DictionaryConfig& config, DirectionKind kind) {
  return kind == DirectionKind::kDecoder ? config.decoder_dim() : config.d_in;
}

Directions::Directions(std::shared_ptr<const engine::Dictionary> dictionary, DirectionKind kind)
    : dictionary_(std::move(dictionary)),
      kind_(kind),
      n_(dictionary_->config.d_sae),
      d_(DirectionDim(dictionary_->config, kind)),
      norms_(n_, 0.0) {
  for (int64_t i = 0; i < n_; ++i) {
    double sum = 0;
    for (int64_t j = 0; j < d_; ++j) {
      const double v = Raw(i, j);
      sum += v * v;
    }
    norms_[i] = std::sqrt(sum);
  }
}

float Directions::Raw(int64_t i, int64_t j) const {
  return RawComponent(*dictionary_, kind_, i, j);
}

std::vector<float> Directions::UnitRows() const {
  std::vector<float> out(static_cast<size_t>(n_ * d_), 0.0f);
  for (int64_t i = 0; i < n_; ++i) {
    if (norms_[i] == 0) continue;
    for (int64_t j = 0; j < d_; ++j) {
      out[i * d_ + j] = static_cast<float>(Raw(i, j) / norms_[i]);
    }
  }
  return out;
}

std::vector<double> Directions::UnitDirection(int64_t i) const {
  std::vector<double> out(d_, 0.0);
  if (norms_[i] == 0) return out;
  for (int64_t j = 0; j < d_; ++j) out[j] = Raw(i, j) / norms_[i];
  return out;
}

double Directions::ExactCosine(const double* unit_query, int64_t i) const {
  if (norms_[i] == 0) return 0;
  // Four partial sums (vectorizable); float64 keeps the result within ~1e-15
  // of the exact cosine either way.
  double dot[4] = {0, 0, 0, 0};
  int64_t j = 0;
  if (kind_ == DirectionKind::kDecoder) {
    const float* row = dictionary_->w_dec.data() + i * d_;
    for (; j + 4 <= d_; j += 4) {
      for (int l = 0; l < 4; ++l) dot[l] += unit_query[j + l] * static_cast<double>(row[j + l]);
    }
    for (; j < d_; ++j) dot[0] += unit_query[j] * static_cast<double>(row[j]);
  } else {
    for (; j < d_; ++j) dot[j & 3] += unit_query[j] * static_cast<double>(Raw(i, j));
  }
  return ((dot[0] + dot[1]) + (dot[2] + dot[3])) / norms_[i];
}

absl::StatusOr<std::vector<double>> UnitFeatureDirection(const engine::Dictionary& dictionary,
                                                         DirectionKind kind, int64_t feature) {
  const int64_t n = dictionary.config.d_sae, d = DirectionDim(dictionary.config, kind);
  if (feature < 0 || feature >= n) {
    return absl::NotFoundError(
        absl::StrCat("feature: ", feature, " is not below d_sae = ", n));
  }
  std::vector<float> raw(d);
  for (int64_t j = 0; j < d; ++j) raw[j] = RawComponent(dictionary, kind, feature, j);
  absl::StatusOr<std::vector<double>> unit =
      UnitQuery(raw, d, absl::StrCat(DirectionKindName(kind), " direction of feature ", feature));
  if (!unit.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("feature: ", feature, ": its ",
                                                   DirectionKindName(kind),
                                                   " direction is zero, it has no neighbours"));
  }
  return unit;
}

absl::StatusOr<std::vector<double>> UnitQuery(absl::Span<const float> vector, int64_t d,
                                              const std::string& field) {
  if (static_cast<int64_t>(vector.size()) != d) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", vector.size(),
                                                   " components; expected ", d,
                                                   " (the directions' length)"));
  }
  double sum = 0;
  for (size_t j = 0; j < vector.size(); ++j) {
    if (!std::isfinite(vector[j])) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", j, "] is ", vector[j], "; expected a finite value"));
    }
    sum += static_cast<double>(vector[j]) * vector[j];
  }
  if (sum == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": the zero vector has no direction; expected a non-zero vector"));
  }
  const double norm = std::sqrt(sum);
  std::vector<double> out(d);
  for (int64_t j = 0; j < d; ++j) out[j] = vector[j] / norm;
  return out;
}

}  // namespace saedict::index
