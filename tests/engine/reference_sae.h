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
