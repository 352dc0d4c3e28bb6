// Test-only float64 reference of the SAE math in DESIGN.md §2, written as
// plain loops, plus generators of random dictionaries and inputs. The engine
// tests compare the optimized float32 encoder against it.
#ifndef SAEDICT_TESTS_ENGINE_REFERENCE_SAE_H_
#define SAEDICT_TESTS_ENGINE_REFERENCE_SAE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/dictionary.h"
#include "engine/sparse_codes.h"
#include "gtest/gtest.h"

namespace saedict::engine::testing {

struct DictSpec {
  Architecture architecture = Architecture::kStandard;
  Normalization normalization = Normalization::kNone;
  bool apply_b_dec_to_input = true;
  bool rescale_acts_by_decoder_norm = false;
  bool mp_store_w_enc = true;  // matching pursuit: fill W_enc = W_dec^T or leave it empty
  int64_t d_in = 48;
  int64_t d_sae = 300;
  int32_t k = 0;
  float mp_residual_threshold = 0.0f;
  uint32_t seed = 1;
};

// A valid random dictionary; decoder rows have norms in [0.5, 1.5].
std::shared_ptr<Dictionary> MakeDictionary(const DictSpec& spec);

// A random transcoder: d_in 24 -> d_out 40, d_sae 96, hooks
// blocks.3.ln2.hook_normalized -> blocks.3.hook_mlp_out, no b_dec on the
// input, W_skip [d_out, d_in] when skip. Deterministic in seed.
struct TranscoderSpec {
  Architecture architecture = Architecture::kStandard;
  bool skip = true;
  int32_t k = 0;  // topk
};
inline constexpr int64_t kTranscoderDIn = 24, kTranscoderDOut = 40, kTranscoderDSae = 96;
std::shared_ptr<Dictionary> MakeTranscoder(const TranscoderSpec& spec, uint32_t seed = 5);

// [n, d_in] values ~ scale * N(0, 1) + offset.
std::vector<float> RandomInput(int64_t n, int64_t d_in, uint32_t seed, float scale = 1.0f,
                               float offset = 0.0f);

struct RefNorm {
  double in_shift = 0.0, in_scale = 1.0, out_scale = 1.0, out_shift = 0.0;
};
RefNorm ReferenceRowNorm(Normalization normalization, const float* x, int64_t d_in);

struct RefRow {
  std::vector<double> f;       // [d_sae] activations
  std::vector<double> margin;  // [d_sae] distance of each feature to a decision boundary
  double mp_min_gap = 1e300;   // matching pursuit: smallest argmax / stop-rule gap
  RefNorm norm;
};

// Encodes one row; top_k as EncodeOptions::top_k (0 = default).
RefRow ReferenceEncodeRow(const Dictionary& d, const float* x, int32_t top_k);

// f W_dec (+ b_dec) followed by y * norm.out_scale + norm.out_shift.
std::vector<double> ReferenceDecodeRow(const Dictionary& d, const std::vector<double>& f,
                                       const RefNorm& norm);

// Dense copy of one CSR row.
std::vector<double> DenseRow(const SparseCodes& codes, int64_t row);

std::string SpecName(const DictSpec& spec);

// Two encodings of the same rows that may differ by float rounding (e.g. a
// row's position in a BLAS GEMM): shared features agree within
// tol * (1 + |v|), and a feature present on one side only sits at a
// selection boundary (its value < tol, or within tol of the smallest value
// the other side kept in that row).
::testing::AssertionResult CodesNear(const SparseCodes& a, const SparseCodes& b, double tol);

}  // namespace saedict::engine::testing

#endif  // SAEDICT_TESTS_ENGINE_REFERENCE_SAE_H_
