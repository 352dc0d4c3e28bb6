// Small SAEs on disk for tests: a random dictionary of any architecture and
// writers for the SAELens, sparsify and Gemma Scope layouts that
// formats::LoadDictionary reads. Used by tests across the tree (target
// saedict_sae_fixtures).
//
//   engine::Dictionary d = RandomDictionary(engine::Architecture::kTopK, 16, 64, 4, 7);
//   ASSERT_THAT(WriteSaeLensFolder(dir.path() / "sae", d), IsOk());
//
// Thread safety: free functions with no shared state; deterministic per seed.
#ifndef SAEDICT_TESTS_FORMATS_SAE_FIXTURES_H_
#define SAEDICT_TESTS_FORMATS_SAE_FIXTURES_H_

#include <cstdint>
#include <filesystem>
#include <vector>

#include "absl/status/status.h"
#include "engine/dictionary.h"
#include "formats/dictionary_loader.h"

namespace saedict::testing {

// A valid dictionary: unit-norm random decoder rows, W_enc = W_decᵀ plus a
// little noise (exactly W_decᵀ for matching pursuit), small b_dec, slightly
// negative b_enc, thresholds in [0.05, 0.3] (jumprelu), gate/magnitude
// parameters (gated). On inputs with N(0, 1) entries (RandomActivations)
// every architecture leaves a good share of features active. `k` is used by
// topk and matching pursuit (0 means min(8, d_sae)). model_name is
// "fixture-model", hook_name "blocks.0.hook_resid_pre". Deterministic per seed.
engine::Dictionary RandomDictionary(engine::Architecture arch, int64_t d_in, int64_t d_sae,
                                    int32_t k = 0, uint64_t seed = 1);

// A transcoder (standard or jumprelu; topk works too but SAELens has no
// such file): RandomDictionary's encoder, a random decoder [d_sae, d_out]
// and b_dec [d_out], W_skip [d_out, d_in] when `skip`, hooks
// "blocks.0.ln2.hook_normalized" -> "blocks.0.hook_mlp_out". The SAELens
// writer names it transcoder / skip_transcoder / jumprelu_(skip_)transcoder,
// the Gemma Scope 2 writer adds affine_skip_connection = W_skipᵀ.
engine::Dictionary RandomTranscoder(engine::Architecture arch, int64_t d_in, int64_t d_out,
                                    int64_t d_sae, bool skip, uint64_t seed = 1);

// `n` × `d_in` values drawn from N(0, 1), row-major. Deterministic per seed.
std::vector<float> RandomActivations(int64_t n, int64_t d_in, uint64_t seed = 2);

// `d` with every weight rounded through `dtype` (F16/BF16) and back: what a
// loader returns for a folder written with that dtype.
engine::Dictionary RoundWeights(const engine::Dictionary& d, formats::DType dtype);

// Writes `dir`/cfg.json + `dir`/sae_weights.safetensors (creating `dir`) for
// any architecture; matching pursuit writes only W_dec and b_dec, with
// architecture "matching_pursuit", "k" and "residual_threshold". With
// `pre_6_0_cfg` the cfg uses the older spelling: model_name and hook_point at
// top level, no architecture key for standard, architecture "standard" +
// activation_fn "topk" + activation_fn_kwargs {k} for topk.
absl::Status WriteSaeLensFolder(const std::filesystem::path& dir, const engine::Dictionary& d,
                                formats::DType dtype = formats::DType::kF32,
                                bool pre_6_0_cfg = false);

// Writes `dir`/cfg.json + `dir`/sae.safetensors (encoder.weight = W_encᵀ).
// REQUIRES a topk dictionary with apply_b_dec_to_input, no normalization and
// no decoder-norm rescaling (INVALID_ARGUMENT otherwise).
absl::Status WriteSparsifyFolder(const std::filesystem::path& dir, const engine::Dictionary& d,
                                 formats::DType dtype = formats::DType::kF32);

// Writes a Gemma Scope style params.npz (float32, stored) at `file`.
// REQUIRES a jumprelu dictionary without normalization. When `d` subtracts
// b_dec from the input, the written b_enc is b_enc - b_dec·W_enc, so the
// loaded dictionary (apply_b_dec_to_input false) encodes the same codes.
absl::Status WriteGemmaScopeNpz(const std::filesystem::path& file, const engine::Dictionary& d);

// Writes a Gemma Scope 2 folder: params.safetensors with lowercase w_enc,
// w_dec, b_enc, b_dec, threshold (float32), b_dec folded as for the npz.
absl::Status WriteGemmaScope2Folder(const std::filesystem::path& dir, const engine::Dictionary& d);

// OK when `a` and `b` have equal configs (mp_residual_threshold within
// `tol`) and every tensor has the same size with values within `tol`
// (absolute); otherwise INVALID_ARGUMENT naming the first difference.
//   EXPECT_THAT(CompareDictionaries(loaded, expected), IsOk());
absl::Status CompareDictionaries(const engine::Dictionary& a, const engine::Dictionary& b,
                                 float tol = 0.0f);

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_FORMATS_SAE_FIXTURES_H_
