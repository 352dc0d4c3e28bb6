// Loads the real stories260k SAEs (SAELens, sparsify and Gemma Scope copies)
// and checks them against the facts in ../shared/data/stories260k/README.md.
// Skips visibly when the data folder is absent.
#include "formats/codecs/npy.h"
#include "formats/dictionary_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::formats {
namespace {

using engine::Architecture;
using ::saedict::testing::CompareDictionaries;
using ::saedict::testing::IsOk;
using ::testing::ElementsAre;

void ExpectStories(const engine::Dictionary& d, Architecture arch) {
  EXPECT_EQ(d.config.d_in, 64);
  EXPECT_EQ(d.config.d_sae, 512);
  EXPECT_EQ(d.config.architecture, arch);
}

TEST(FormatsRealDataTest, LoadsSaeLensFolders) {
  SAEDICT_REQUIRE_STORIES260K(data);
  struct Case {
    const char* name;
    Architecture arch;
    int k;
    const char* hook;
  };
  for (const Case& c :
       {Case{"topk_l2_a", Architecture::kTopK, 16, "blocks.2.hook_resid_pre"},
        Case{"topk_l2_b", Architecture::kTopK, 16, "blocks.2.hook_resid_pre"},
        Case{"relu_l4", Architecture::kStandard, 0, "blocks.4.hook_resid_pre"},
        Case{"jumprelu_l2", Architecture::kJumpReLU, 0, "blocks.2.hook_resid_pre"}}) {
    SAEDICT_ASSERT_OK_AND_ASSIGN(LoadedDictionary loaded, LoadDictionary(data / c.name));
    EXPECT_EQ(loaded.format, SourceFormat::kSaeLens) << c.name;
    EXPECT_EQ(loaded.source_dtype, DType::kF32);
    const engine::Dictionary& d = loaded.dictionary;
    ExpectStories(d, c.arch);
    EXPECT_EQ(d.config.k, c.k) << c.name;
    EXPECT_TRUE(d.config.apply_b_dec_to_input);
    EXPECT_EQ(d.config.normalization, engine::Normalization::kNone);
    EXPECT_EQ(d.config.model_name, "stories260K");
    EXPECT_EQ(d.config.hook_name, c.hook);
    // "Every decoder row has unit norm."
    for (int i = 0; i < 512; ++i) {
      double sq = 0;
      for (int j = 0; j < 64; ++j) sq += double{d.w_dec[i * 64 + j]} * d.w_dec[i * 64 + j];
      ASSERT_NEAR(sq, 1.0, 1e-4) << c.name << " row " << i;
    }
  }
}

TEST(FormatsRealDataTest, SparsifyCopyMatchesSaeLens) {
  SAEDICT_REQUIRE_STORIES260K(data);
  SAEDICT_ASSERT_OK_AND_ASSIGN(LoadedDictionary saelens, LoadDictionary(data / "topk_l2_a"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(LoadedDictionary sparsify,
                               LoadDictionary(data / "topk_l2_a.sparsify"));
  EXPECT_EQ(sparsify.format, SourceFormat::kSparsify);
  ExpectStories(sparsify.dictionary, Architecture::kTopK);
  EXPECT_EQ(sparsify.dictionary.config.k, 16);
  // The transposition is right: W_enc [d_in, d_sae] equals SAELens's bit for bit.
  EXPECT_EQ(sparsify.dictionary.w_enc, saelens.dictionary.w_enc);
  engine::Dictionary want = saelens.dictionary;
  want.config.model_name.clear();
  want.config.hook_name.clear();
  EXPECT_THAT(CompareDictionaries(sparsify.dictionary, want), IsOk());
}

TEST(FormatsRealDataTest, GemmaScopeNpzMatchesJumpReluFolder) {
  SAEDICT_REQUIRE_STORIES260K(data);
  SAEDICT_ASSERT_OK_AND_ASSIGN(LoadedDictionary folder, LoadDictionary(data / "jumprelu_l2"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(LoadedDictionary npz, LoadDictionary(data / "jumprelu_l2.npz"));
  EXPECT_EQ(npz.format, SourceFormat::kGemmaScope);
  const engine::Dictionary& g = npz.dictionary;
  const engine::Dictionary& s = folder.dictionary;
  ExpectStories(g, Architecture::kJumpReLU);
  EXPECT_FALSE(g.config.apply_b_dec_to_input);
  EXPECT_EQ(g.w_enc, s.w_enc);
  EXPECT_EQ(g.w_dec, s.w_dec);
  EXPECT_EQ(g.b_dec, s.b_dec);
  EXPECT_EQ(g.threshold, s.threshold);
  // README: b_enc_npz = b_enc - b_dec @ W_enc.
  for (int i = 0; i < 512; ++i) {
    double fold = 0;
    for (int j = 0; j < 64; ++j) fold += double{s.b_dec[j]} * s.w_enc[j * 512 + i];
    EXPECT_NEAR(g.b_enc[i], s.b_enc[i] - fold, 1e-5) << i;
  }
}

TEST(FormatsRealDataTest, ReadsActivationAndTokenArrays) {
  SAEDICT_REQUIRE_STORIES260K(data);
  SAEDICT_ASSERT_OK_AND_ASSIGN(NpyArray tokens, ReadNpyFile(data / "tokens.npy"));
  EXPECT_EQ(tokens.dtype, NpyDType::kI32);
  EXPECT_THAT(tokens.shape, ElementsAre(75317));
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<int64_t> ids, NpyToInt64(tokens, "tokens"));
  EXPECT_EQ(ids[0], 1);  // every story starts with BOS
  SAEDICT_ASSERT_OK_AND_ASSIGN(NpyArray acts, ReadNpyFile(data / "acts_layer2.npy"));
  EXPECT_EQ(acts.dtype, NpyDType::kF16);
  EXPECT_THAT(acts.shape, ElementsAre(75317, 64));
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<float> x, NpyToFloat32(acts, "acts"));
  float max_abs = 0;
  for (float v : x) max_abs = std::max(max_abs, std::abs(v));
  EXPECT_NEAR(max_abs, 4.2f, 0.1f);  // README: largest absolute value 4.2 at layer 2
}

}  // namespace
}  // namespace saedict::formats
