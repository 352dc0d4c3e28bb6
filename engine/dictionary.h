// Dictionary: one SAE's (or transcoder's) configuration and its weights in
// canonical form (float32, row-major, any load-time folding already applied).
// Loaders in formats/ produce it; the encoder reads it. Immutable once built:
// share it as std::shared_ptr<const Dictionary> across threads.
//
// A transcoder (d_out > 0) encodes activations read at hook_name and decodes
// to another hook, hook_name_out, of width d_out: x_hat = f W_dec + b_dec
// (+ x W_skip^T for a skip transcoder). It never subtracts b_dec from its
// input, has no normalization and is not tied (no matching pursuit).
#ifndef SAEDICT_ENGINE_DICTIONARY_H_
#define SAEDICT_ENGINE_DICTIONARY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace saedict::engine {

enum class Architecture { kStandard, kTopK, kJumpReLU, kGated, kMatchingPursuit };
// expected_average_only_in is folded into the weights at load and becomes kNone.
enum class Normalization { kNone, kConstantNormRescale, kLayerNorm };

const char* ArchitectureName(Architecture a);    // "standard", "topk", ...
const char* NormalizationName(Normalization n);  // "none", "constant_norm_rescale", ...

struct DictionaryConfig {
  std::string model_name;
  std::string hook_name;
  int64_t d_in = 0;
  int64_t d_sae = 0;
  Architecture architecture = Architecture::kStandard;
  bool apply_b_dec_to_input = true;
  Normalization normalization = Normalization::kNone;
  int32_t k = 0;                              // topk: features kept; matching pursuit: max steps
  bool rescale_acts_by_decoder_norm = false;  // topk: h_i *= ||W_dec_i||
  float mp_residual_threshold = 0.0f;         // matching pursuit: stop when ||r|| < this
  // Matryoshka SAEs: the nested prefix widths (features [0, w) form a
  // dictionary of their own), strictly ascending, the last == d_sae; empty
  // when the dictionary declares none. Display only: encode ignores it.
  std::vector<int64_t> matryoshka_widths;
  // Transcoders: the width of the output hook (0 for an SAE, which decodes
  // back to its input: d_in) and that hook's name (may be empty).
  int64_t d_out = 0;
  std::string hook_name_out;

  bool is_transcoder() const { return d_out > 0; }
  // Width of a decoded row: d_out for a transcoder, d_in for an SAE.
  int64_t decoder_dim() const { return d_out > 0 ? d_out : d_in; }
};

struct Dictionary {
  DictionaryConfig config;
  std::vector<float> w_enc;      // [d_in, d_sae]; matching pursuit: W_dec^T
  std::vector<float> b_enc;      // [d_sae]; empty for gated and matching pursuit
  std::vector<float> w_dec;      // [d_sae, decoder_dim()]
  std::vector<float> b_dec;      // [decoder_dim()]
  std::vector<float> threshold;  // [d_sae], jumprelu only
  std::vector<float> b_gate;     // [d_sae], gated only
  std::vector<float> b_mag;      // [d_sae], gated only
  std::vector<float> r_mag;      // [d_sae], gated only
  std::vector<float> w_skip;     // [d_out, d_in], skip transcoders only (else empty)

  bool has_skip() const { return !w_skip.empty(); }

  // OK when every tensor the architecture needs has its exact size, the
  // others are empty, all values are finite and k is in range. Otherwise
  // INVALID_ARGUMENT naming the tensor or field and the value found.
  absl::Status Validate() const;

  int64_t WeightBytes() const;  // total float bytes held

  // ||W_dec_i||^2 of feature i, summed in float64 in storage order: the
  // decoder-norm scale every backend derives the same way.
  double DecoderRowSquaredNorm(int64_t feature) const;
};

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_DICTIONARY_H_
