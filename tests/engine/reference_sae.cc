// Float64 reference SAE math and random generators (see reference_sae.h).
#include "tests/engine/reference_sae.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace saedict::engine::testing {
namespace {

std::vector<float> Normal(size_t count, std::mt19937& rng, double stddev, double mean = 0.0) {
  std::normal_distribution<double> dist(mean, stddev);
  std::vector<float> v(count);
  for (float& x : v) x = static_cast<float>(dist(rng));
  return v;
}

double DecoderNorm(const Dictionary& d, int64_t i) {
  double sq = 0.0;
  const int64_t dim = d.config.decoder_dim();
  for (int64_t j = 0; j < dim; ++j) {
    const double w = d.w_dec[i * dim + j];
    sq += w * w;
  }
  return std::sqrt(sq);
}

// Indices of the k best values (larger value, then lower index first).
std::vector<int64_t> Ranked(const std::vector<double>& v) {
  std::vector<int64_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
  return order;
}

// Keeps the k largest positive entries of f; records the cut in margin.
void CapTopK(std::vector<double>& f, std::vector<double>& margin, int32_t k) {
  const int64_t d = static_cast<int64_t>(f.size());
  if (k <= 0 || k >= d) return;
  std::vector<int64_t> order = Ranked(f);
  const double boundary = 0.5 * (f[order[k - 1]] + f[order[k]]);
  if (!(f[order[k]] > 0.0)) return;  // fewer than k+1 positives: no cut
  for (int64_t i = 0; i < d; ++i) {
    margin[i] = std::min(margin[i], std::abs(f[i] - boundary));
  }
  for (int64_t r = k; r < d; ++r) f[order[r]] = 0.0;
}

}  // namespace

std::shared_ptr<Dictionary> MakeDictionary(const DictSpec& spec) {
  std::mt19937 rng(spec.seed);
  auto d = std::make_shared<Dictionary>();
  DictionaryConfig& c = d->config;
  c.model_name = "test-model";
  c.hook_name = "blocks.0.hook_resid_post";
  c.d_in = spec.d_in;
  c.d_sae = spec.d_sae;
  c.architecture = spec.architecture;
  c.normalization = spec.normalization;
  c.apply_b_dec_to_input = spec.apply_b_dec_to_input;
  c.rescale_acts_by_decoder_norm = spec.rescale_acts_by_decoder_norm;
  c.k = spec.k;
  c.mp_residual_threshold = spec.mp_residual_threshold;
  const size_t matrix = static_cast<size_t>(spec.d_in * spec.d_sae);
  d->w_dec = Normal(matrix, rng, 1.0);
  std::uniform_real_distribution<double> norm_dist(0.5, 1.5);
  for (int64_t i = 0; i < spec.d_sae; ++i) {
    const double want = norm_dist(rng) / DecoderNorm(*d, i);
    for (int64_t j = 0; j < spec.d_in; ++j) {
      float& w = d->w_dec[i * spec.d_in + j];
      w = static_cast<float>(w * want);
    }
  }
  d->b_dec = Normal(spec.d_in, rng, 0.2);
  if (spec.architecture == Architecture::kMatchingPursuit) {
    if (spec.mp_store_w_enc) {
      d->w_enc.resize(matrix);
      for (int64_t i = 0; i < spec.d_sae; ++i) {
        for (int64_t j = 0; j < spec.d_in; ++j) {
          d->w_enc[j * spec.d_sae + i] = d->w_dec[i * spec.d_in + j];
        }
      }
    }
    return d;
  }
  d->w_enc = Normal(matrix, rng, 1.0 / std::sqrt(static_cast<double>(spec.d_in)));
  if (spec.architecture == Architecture::kGated) {
    d->b_gate = Normal(spec.d_sae, rng, 0.3);
    d->b_mag = Normal(spec.d_sae, rng, 0.3);
    d->r_mag = Normal(spec.d_sae, rng, 0.3);
    return d;
  }
  d->b_enc = Normal(spec.d_sae, rng, 0.3);
  if (spec.architecture == Architecture::kJumpReLU) {
    std::uniform_real_distribution<double> t(0.0, 0.8);
    d->threshold.resize(spec.d_sae);
    for (float& v : d->threshold) v = static_cast<float>(t(rng));
  }
  return d;
}

std::vector<float> RandomInput(int64_t n, int64_t d_in, uint32_t seed, float scale, float offset) {
  std::mt19937 rng(seed);
  return Normal(static_cast<size_t>(n * d_in), rng, scale, offset);
}

RefNorm ReferenceRowNorm(Normalization normalization, const float* x, int64_t d_in) {
  RefNorm norm;
  if (normalization == Normalization::kConstantNormRescale) {
    double sq = 0.0;
    for (int64_t j = 0; j < d_in; ++j) sq += static_cast<double>(x[j]) * x[j];
    norm.in_scale = std::sqrt(static_cast<double>(d_in)) / std::sqrt(sq);
    norm.out_scale = 1.0 / norm.in_scale;
  } else if (normalization == Normalization::kLayerNorm) {
    double mu = 0.0;
    for (int64_t j = 0; j < d_in; ++j) mu += x[j];
    mu /= static_cast<double>(d_in);
    double sq = 0.0;
    for (int64_t j = 0; j < d_in; ++j) sq += (x[j] - mu) * (x[j] - mu);
    const double sigma = std::sqrt(sq / static_cast<double>(d_in - 1));  // torch.std: unbiased
    norm.in_shift = mu;
    norm.in_scale = 1.0 / (sigma + 1e-5);
    norm.out_scale = sigma;
    norm.out_shift = mu;
  }
  return norm;
}

RefRow ReferenceEncodeRow(const Dictionary& d, const float* x, int32_t top_k) {
  const DictionaryConfig& c = d.config;
  const int64_t d_in = c.d_in;
  const int64_t d_sae = c.d_sae;
  RefRow out;
  out.norm = ReferenceRowNorm(c.normalization, x, d_in);
  std::vector<double> xp(d_in);
  for (int64_t j = 0; j < d_in; ++j) {
    xp[j] = (x[j] - out.norm.in_shift) * out.norm.in_scale -
            (c.apply_b_dec_to_input ? static_cast<double>(d.b_dec[j]) : 0.0);
  }
  out.f.assign(d_sae, 0.0);
  out.margin.assign(d_sae, 1e300);
  const int32_t k = top_k > 0 ? top_k : c.k;

  if (c.architecture == Architecture::kMatchingPursuit) {
    std::vector<double> r = xp;
    std::vector<double> s(d_sae);
    for (int32_t step = 0; step < k; ++step) {
      for (int64_t i = 0; i < d_sae; ++i) {
        double dot = 0.0;
        for (int64_t j = 0; j < d_in; ++j) dot += r[j] * d.w_dec[i * d_in + j];
        s[i] = dot;
      }
      std::vector<int64_t> order = Ranked(s);
      const int64_t best = order[0];
      out.mp_min_gap = std::min({out.mp_min_gap, s[best] - s[order[1]], std::abs(s[best])});
      if (s[best] <= 0.0) break;
      const double norm = DecoderNorm(d, best);
      const double coef = s[best] / (norm * norm);
      out.f[best] += coef;
      double sq = 0.0;
      for (int64_t j = 0; j < d_in; ++j) {
        r[j] -= coef * d.w_dec[best * d_in + j];
        sq += r[j] * r[j];
      }
      const double thr = c.mp_residual_threshold;
      if (thr > 0.0) {
        out.mp_min_gap = std::min(out.mp_min_gap, std::abs(std::sqrt(sq) - thr));
        if (std::sqrt(sq) < thr) break;
      }
    }
    return out;
  }

  std::vector<double> pre(d_sae, 0.0);
  for (int64_t i = 0; i < d_sae; ++i) {
    double dot = 0.0;
    for (int64_t j = 0; j < d_in; ++j) dot += xp[j] * d.w_enc[j * d_sae + i];
    pre[i] = dot;
  }
  switch (c.architecture) {
    case Architecture::kStandard:
      for (int64_t i = 0; i < d_sae; ++i) {
        const double h = pre[i] + d.b_enc[i];
        out.f[i] = std::max(h, 0.0);
        out.margin[i] = std::abs(h);
      }
      CapTopK(out.f, out.margin, top_k);
      break;
    case Architecture::kTopK: {
      std::vector<double> h(d_sae);
      for (int64_t i = 0; i < d_sae; ++i) {
        h[i] = pre[i] + d.b_enc[i];
        if (c.rescale_acts_by_decoder_norm) h[i] *= DecoderNorm(d, i);
      }
      std::vector<int64_t> order = Ranked(h);
      const double boundary = k < d_sae ? 0.5 * (h[order[k - 1]] + h[order[k]]) : -1e300;
      for (int64_t r = 0; r < d_sae; ++r) {
        const int64_t i = order[r];
        if (r < k) out.f[i] = std::max(h[i], 0.0);
        out.margin[i] = std::min(std::abs(h[i]), std::abs(h[i] - boundary));
      }
      break;
    }
    case Architecture::kJumpReLU:
      for (int64_t i = 0; i < d_sae; ++i) {
        const double h = pre[i] + d.b_enc[i];
        out.f[i] = (h > d.threshold[i] && h > 0.0) ? h : 0.0;
        out.margin[i] = std::min(std::abs(h), std::abs(h - d.threshold[i]));
      }
      CapTopK(out.f, out.margin, top_k);
      break;
    case Architecture::kGated:
      for (int64_t i = 0; i < d_sae; ++i) {
        // Literally x' (W_enc ⊙ exp(r_mag)) + b_mag, a second product.
        double mag = 0.0;
        const double e = std::exp(static_cast<double>(d.r_mag[i]));
        for (int64_t j = 0; j < d_in; ++j) mag += xp[j] * (d.w_enc[j * d_sae + i] * e);
        mag += d.b_mag[i];
        const double gate = pre[i] + d.b_gate[i];
        out.f[i] = gate > 0.0 ? std::max(mag, 0.0) : 0.0;
        out.margin[i] = std::min(std::abs(gate), std::abs(mag));
      }
      CapTopK(out.f, out.margin, top_k);
      break;
    case Architecture::kMatchingPursuit:
      break;
  }
  return out;
}

std::vector<double> ReferenceDecodeRow(const Dictionary& d, const std::vector<double>& f,
                                       const RefNorm& norm) {
  const DictionaryConfig& c = d.config;
  std::vector<double> y(c.d_in, 0.0);
  const bool add_b_dec = c.architecture != Architecture::kMatchingPursuit || c.apply_b_dec_to_input;
  for (int64_t j = 0; j < c.d_in; ++j) y[j] = add_b_dec ? d.b_dec[j] : 0.0;
  for (int64_t i = 0; i < c.d_sae; ++i) {
    if (f[i] == 0.0) continue;
    double coef = f[i];
    if (c.rescale_acts_by_decoder_norm) coef /= DecoderNorm(d, i);
    for (int64_t j = 0; j < c.d_in; ++j) y[j] += coef * d.w_dec[i * c.d_in + j];
  }
  for (double& v : y) v = v * norm.out_scale;
  for (double& v : y) v += norm.out_shift;
  return y;
}

std::vector<double> DenseRow(const SparseCodes& codes, int64_t row) {
  std::vector<double> dense(codes.num_features, 0.0);
  for (uint64_t e = codes.row_offsets[row]; e < codes.row_offsets[row + 1]; ++e) {
    dense[codes.indices[e]] = codes.values[e];
  }
  return dense;
}

::testing::AssertionResult CodesNear(const SparseCodes& a, const SparseCodes& b, double tol) {
  if (a.num_rows != b.num_rows || a.num_features != b.num_features) {
    return ::testing::AssertionFailure() << "shapes differ: " << a.num_rows << "x" << a.num_features
                                         << " vs " << b.num_rows << "x" << b.num_features;
  }
  for (int64_t r = 0; r < a.num_rows; ++r) {
    const std::vector<double> da = DenseRow(a, r);
    const std::vector<double> db = DenseRow(b, r);
    auto smallest = [](const std::vector<double>& v) {
      double m = 1e300;
      for (double x : v) {
        if (x != 0.0) m = std::min(m, std::abs(x));
      }
      return m;
    };
    const double min_a = smallest(da);
    const double min_b = smallest(db);
    for (int64_t i = 0; i < a.num_features; ++i) {
      const double x = da[i];
      const double y = db[i];
      if (x != 0.0 && y != 0.0) {
        if (std::abs(x - y) > tol * (1.0 + std::abs(x))) {
          return ::testing::AssertionFailure()
                 << "row " << r << " feature " << i << ": " << x << " vs " << y;
        }
      } else if (x != 0.0 || y != 0.0) {
        const double v = x != 0.0 ? std::abs(x) : std::abs(y);
        const double other_min = x != 0.0 ? min_b : min_a;
        if (v >= tol && std::abs(v - other_min) > tol * (1.0 + v)) {
          return ::testing::AssertionFailure()
                 << "row " << r << " feature " << i << " only on one side: " << x << " vs " << y;
        }
      }
    }
  }
  return ::testing::AssertionSuccess();
}

std::string SpecName(const DictSpec& spec) {
  std::string name = ArchitectureName(spec.architecture);
  if (spec.rescale_acts_by_decoder_norm) name += "_rescale";
  name += std::string("_") + NormalizationName(spec.normalization);
  name += spec.apply_b_dec_to_input ? "_bdecin" : "_nobdecin";
  if (spec.architecture == Architecture::kMatchingPursuit && !spec.mp_store_w_enc) {
    name += "_nowenc";
  }
  return name;
}

std::shared_ptr<Dictionary> MakeTranscoder(const TranscoderSpec& spec, uint32_t seed) {
  constexpr int64_t kDIn = kTranscoderDIn, kDOut = kTranscoderDOut, kDSae = kTranscoderDSae;
  std::mt19937 rng(seed);
  auto d = std::make_shared<Dictionary>();
  DictionaryConfig& c = d->config;
  c.model_name = "test-model";
  c.hook_name = "blocks.3.ln2.hook_normalized";
  c.hook_name_out = "blocks.3.hook_mlp_out";
  c.d_in = kDIn;
  c.d_sae = kDSae;
  c.d_out = kDOut;
  c.architecture = spec.architecture;
  c.apply_b_dec_to_input = false;
  c.k = spec.k;
  d->w_enc = Normal(kDIn * kDSae, rng, 1.0 / std::sqrt(static_cast<double>(kDIn)));
  d->b_enc = Normal(kDSae, rng, 0.1, -0.05);
  d->w_dec = Normal(kDSae * kDOut, rng, 0.3);
  d->b_dec = Normal(kDOut, rng, 0.2);
  if (spec.architecture == Architecture::kJumpReLU) {
    std::uniform_real_distribution<float> t(0.05f, 0.3f);
    d->threshold.resize(kDSae);
    for (float& v : d->threshold) v = t(rng);
  }
  if (spec.skip) d->w_skip = Normal(kDOut * kDIn, rng, 0.2);
  return d;
}

}  // namespace saedict::engine::testing
