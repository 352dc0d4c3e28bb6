// Encoder vs the float64 reference: every architecture × normalization ×
// b_dec placement, top_k overrides, reconstruction, row error, decode,
// tiling, ties and the BF16 mode.
#include "engine/encoder.h"

#include <cmath>
#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/reference_sae.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::engine {
namespace {

using ::saedict::engine::testing::CodesNear;
using ::saedict::engine::testing::DenseRow;
using ::saedict::engine::testing::DictSpec;
using ::saedict::engine::testing::MakeDictionary;
using ::saedict::engine::testing::RandomInput;
using ::saedict::engine::testing::ReferenceDecodeRow;
using ::saedict::engine::testing::ReferenceEncodeRow;
using ::saedict::engine::testing::RefNorm;
using ::saedict::engine::testing::SpecName;
using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;

constexpr double kTol = 1e-4;

std::vector<float> InputFor(const DictSpec& spec, int64_t n, uint32_t seed) {
  // Unnormalized inputs stay near unit scale; normalized ones are shifted and
  // scaled so that the normalization matters.
  if (spec.normalization == Normalization::kNone) return RandomInput(n, spec.d_in, seed);
  return RandomInput(n, spec.d_in, seed, 3.0f, 0.5f);
}

// Checks codes and (when present) reconstruction and row error against the
// reference. Near-ties (reference margin < kTol) may select differently.
void ExpectMatchesReference(const Dictionary& d, const std::vector<float>& x, int64_t n,
                            int32_t top_k, const EncodeResult& result) {
  const int64_t d_in = d.config.d_in;
  ASSERT_THAT(result.codes.Validate(), IsOk());
  ASSERT_EQ(result.codes.num_rows, n);
  ASSERT_EQ(result.codes.num_features, d.config.d_sae);
  int64_t compared = 0;
  for (int64_t r = 0; r < n; ++r) {
    const auto ref = ReferenceEncodeRow(d, x.data() + r * d_in, top_k);
    const std::vector<double> ours = DenseRow(result.codes, r);
    if (ref.mp_min_gap < kTol) continue;  // MP path ambiguous at float precision
    ++compared;
    for (int64_t i = 0; i < d.config.d_sae; ++i) {
      if ((ours[i] != 0.0) != (ref.f[i] != 0.0)) {
        EXPECT_LT(ref.margin[i], kTol)
            << "row " << r << " feature " << i << " ours " << ours[i] << " ref " << ref.f[i];
      } else {
        EXPECT_NEAR(ours[i], ref.f[i], kTol * (1.0 + std::abs(ref.f[i])))
            << "row " << r << " feature " << i;
      }
    }
    // Reconstruction of our own codes, so selection near-ties do not matter.
    const std::vector<double> x_hat = ReferenceDecodeRow(d, ours, ref.norm);
    double sq = 0.0;
    for (int64_t j = 0; j < d_in; ++j) {
      const double diff = x[r * d_in + j] - x_hat[j];
      sq += diff * diff;
      if (!result.reconstruction.empty()) {
        EXPECT_NEAR(result.reconstruction[r * d_in + j], x_hat[j],
                    kTol * (1.0 + std::abs(x_hat[j])))
            << "row " << r << " column " << j;
      }
    }
    if (!result.row_squared_error.empty()) {
      EXPECT_NEAR(result.row_squared_error[r], sq, kTol * (1.0 + sq)) << "row " << r;
    }
  }
  EXPECT_GE(compared, n / 2) << "too many ambiguous rows";
}

class EncoderReferenceTest : public ::testing::TestWithParam<DictSpec> {};

TEST_P(EncoderReferenceTest, MatchesFloat64Reference) {
  const DictSpec spec = GetParam();
  auto dict = MakeDictionary(spec);
  // Small tiles so several tiles and a partial one are exercised.
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto encoder, Encoder::Create(dict, EncoderOptions{.tile_rows = 8}));
  const int64_t n = 37;
  const std::vector<float> x = InputFor(spec, n, spec.seed + 100);
  EncodeOptions options;
  options.return_reconstruction = true;
  options.return_row_error = true;
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult result, encoder->Encode(x, n, options));
  ExpectMatchesReference(*dict, x, n, 0, result);
  if (spec.k > 0) {
    for (int64_t r = 0; r < n; ++r) {
      EXPECT_LE(result.codes.row_offsets[r + 1] - result.codes.row_offsets[r],
                static_cast<uint64_t>(spec.k));
    }
  }
}

TEST_P(EncoderReferenceTest, TopKOverride) {
  const DictSpec spec = GetParam();
  auto dict = MakeDictionary(spec);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto encoder, Encoder::Create(dict));
  const int64_t n = 19;
  const std::vector<float> x = InputFor(spec, n, spec.seed + 200);
  for (int32_t top_k : {1, 5}) {
    EncodeOptions options;
    options.top_k = top_k;
    options.return_row_error = true;  // row error alone, without reconstruction
    SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult result, encoder->Encode(x, n, options));
    EXPECT_TRUE(result.reconstruction.empty());
    ExpectMatchesReference(*dict, x, n, top_k, result);
    for (int64_t r = 0; r < n; ++r) {
      EXPECT_LE(result.codes.row_offsets[r + 1] - result.codes.row_offsets[r],
                static_cast<uint64_t>(top_k));
    }
  }
}

std::vector<DictSpec> AllSpecs() {
  std::vector<DictSpec> base;
  base.push_back({.architecture = Architecture::kStandard});
  base.push_back({.architecture = Architecture::kTopK, .k = 16});
  base.push_back(
      {.architecture = Architecture::kTopK, .rescale_acts_by_decoder_norm = true, .k = 16});
  base.push_back({.architecture = Architecture::kJumpReLU});
  base.push_back({.architecture = Architecture::kGated});
  base.push_back({.architecture = Architecture::kMatchingPursuit, .k = 8});
  base.push_back({.architecture = Architecture::kMatchingPursuit,
                  .mp_store_w_enc = false,
                  .k = 12,
                  .mp_residual_threshold = 5.5f});
  std::vector<DictSpec> all;
  uint32_t seed = 1;
  for (const DictSpec& b : base) {
    for (Normalization norm :
         {Normalization::kNone, Normalization::kConstantNormRescale, Normalization::kLayerNorm}) {
      for (bool apply_b_dec : {true, false}) {
        DictSpec s = b;
        s.normalization = norm;
        s.apply_b_dec_to_input = apply_b_dec;
        s.seed = seed++;
        all.push_back(s);
      }
    }
  }
  return all;
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, EncoderReferenceTest, ::testing::ValuesIn(AllSpecs()),
                         [](const auto& info) { return SpecName(info.param); });

TEST(EncoderTest, WideDictionariesSplitRowsAcrossThreads) {
  // d_sae large enough that the per-row passes run in parallel chunks.
  for (DictSpec spec : {DictSpec{.architecture = Architecture::kTopK, .k = 40},
                        DictSpec{.architecture = Architecture::kJumpReLU},
                        DictSpec{.architecture = Architecture::kMatchingPursuit, .k = 5}}) {
    spec.d_in = 32;
    spec.d_sae = 4096;
    spec.normalization = Normalization::kLayerNorm;
    auto dict = MakeDictionary(spec);
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto encoder,
                                 Encoder::Create(dict, EncoderOptions{.tile_rows = 64}));
    const int64_t n = 90;
    const std::vector<float> x = InputFor(spec, n, 77);
    SAEDICT_ASSERT_OK_AND_ASSIGN(
        EncodeResult result,
        encoder->Encode(x, n,
                        EncodeOptions{.return_reconstruction = true, .return_row_error = true}));
    ExpectMatchesReference(*dict, x, n, 0, result);
  }
}

TEST(EncoderTest, MatchingPursuitStopsOnResidualThreshold) {
  DictSpec spec{.architecture = Architecture::kMatchingPursuit,
                .normalization = Normalization::kConstantNormRescale,
                .k = 200,
                .mp_residual_threshold = 3.0f};
  auto dict = MakeDictionary(spec);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto encoder, Encoder::Create(dict));
  const int64_t n = 6;
  const std::vector<float> x = InputFor(spec, n, 7);
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult result, encoder->Encode(x, n));
  ExpectMatchesReference(*dict, x, n, 0, result);
  for (int64_t r = 0; r < n; ++r) {
    EXPECT_LT(result.codes.row_offsets[r + 1] - result.codes.row_offsets[r], 200u);
  }
}

TEST(EncoderTest, TilingChangesResultsOnlyByRounding) {
  // BLAS rounding depends on a row's place in the GEMM, so tiles may differ
  // in the last bits (and flip exact near-ties), never more.
  auto dict = MakeDictionary({.architecture = Architecture::kTopK, .k = 10, .seed = 5});
  const int64_t n = 50;
  const std::vector<float> x = RandomInput(n, dict->config.d_in, 9);
  std::vector<EncodeResult> results;
  for (int64_t tile : {1, 7, 64}) {
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto encoder,
                                 Encoder::Create(dict, EncoderOptions{.tile_rows = tile}));
    SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult r, encoder->Encode(x, n));
    results.push_back(std::move(r));
  }
  for (size_t i = 1; i < results.size(); ++i) {
    EXPECT_TRUE(CodesNear(results[i].codes, results[0].codes, 1e-5));
  }
}

TEST(EncoderTest, TopKTiesGoToTheLowerIndex) {
  auto dict = MakeDictionary({.architecture = Architecture::kTopK, .k = 3});
  std::fill(dict->w_enc.begin(), dict->w_enc.end(), 0.0f);
  std::fill(dict->b_enc.begin(), dict->b_enc.end(), 1.0f);
  dict->b_enc[200] = 2.0f;
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto encoder, Encoder::Create(dict));
  const std::vector<float> x = RandomInput(2, dict->config.d_in, 3);
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult result, encoder->Encode(x, 2));
  EXPECT_EQ(result.codes.indices, (std::vector<uint32_t>{0, 1, 200, 0, 1, 200}));
  EXPECT_EQ(result.codes.values, (std::vector<float>{1, 1, 2, 1, 1, 2}));
}

TEST(EncoderTest, TopKWithFewerPositivesKeepsOnlyPositives) {
  auto dict = MakeDictionary({.architecture = Architecture::kTopK, .k = 5});
  std::fill(dict->w_enc.begin(), dict->w_enc.end(), 0.0f);
  std::fill(dict->b_enc.begin(), dict->b_enc.end(), -1.0f);
  dict->b_enc[7] = 0.5f;
  dict->b_enc[3] = 0.25f;
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto encoder, Encoder::Create(dict));
  const std::vector<float> x = RandomInput(1, dict->config.d_in, 3);
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult result, encoder->Encode(x, 1));
  EXPECT_EQ(result.codes.indices, (std::vector<uint32_t>{3, 7}));
}

TEST(EncoderTest, EmptyBatch) {
  auto dict = MakeDictionary({.architecture = Architecture::kStandard});
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto encoder, Encoder::Create(dict));
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      EncodeResult result,
      encoder->Encode({}, 0,
                      EncodeOptions{.return_reconstruction = true, .return_row_error = true}));
  EXPECT_EQ(result.codes.num_rows, 0);
  EXPECT_EQ(result.codes.row_offsets, (std::vector<uint64_t>{0}));
  EXPECT_THAT(result.codes.Validate(), IsOk());
  EXPECT_TRUE(result.reconstruction.empty());
}

TEST(EncoderTest, ZeroRowUnderConstantNormStaysFinite) {
  auto dict = MakeDictionary({.architecture = Architecture::kStandard,
                              .normalization = Normalization::kConstantNormRescale});
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto encoder, Encoder::Create(dict));
  const std::vector<float> x(dict->config.d_in, 0.0f);
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult result,
                               encoder->Encode(x, 1, EncodeOptions{.return_reconstruction = true}));
  EXPECT_THAT(result.codes.Validate(), IsOk());
  for (float v : result.reconstruction) EXPECT_TRUE(std::isfinite(v));
}

TEST(EncoderTest, DecodeIsFWdecPlusBdecWithoutNormalization) {
  for (Normalization norm : {Normalization::kNone, Normalization::kLayerNorm}) {
    for (bool rescale : {false, true}) {
      auto dict = MakeDictionary({.architecture = Architecture::kTopK,
                                  .normalization = norm,
                                  .rescale_acts_by_decoder_norm = rescale,
                                  .k = 12});
      SAEDICT_ASSERT_OK_AND_ASSIGN(auto encoder, Encoder::Create(dict));
      const int64_t n = 9;
      const std::vector<float> x = RandomInput(n, dict->config.d_in, 4, 2.0f, 1.0f);
      SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult encoded, encoder->Encode(x, n));
      SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<float> decoded, encoder->Decode(encoded.codes));
      ASSERT_EQ(decoded.size(), x.size());
      for (int64_t r = 0; r < n; ++r) {
        const std::vector<double> want =
            ReferenceDecodeRow(*dict, DenseRow(encoded.codes, r), RefNorm{});
        for (int64_t j = 0; j < dict->config.d_in; ++j) {
          EXPECT_NEAR(decoded[r * dict->config.d_in + j], want[j], kTol * (1 + std::abs(want[j])));
        }
      }
    }
  }
}

TEST(EncoderTest, MatchingPursuitDecodeAddsBdecOnlyWhenSubtracted) {
  auto dict = MakeDictionary(
      {.architecture = Architecture::kMatchingPursuit, .apply_b_dec_to_input = false, .k = 4});
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto encoder, Encoder::Create(dict));
  SparseCodes empty{.num_rows = 1,
                    .num_features = dict->config.d_sae,
                    .row_offsets = {0, 0},
                    .indices = {},
                    .values = {}};
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<float> decoded, encoder->Decode(empty));
  for (float v : decoded) EXPECT_EQ(v, 0.0f);
}

TEST(EncoderTest, Bf16ModeIsApproximateOrUnimplemented) {
  auto dict =
      MakeDictionary({.architecture = Architecture::kTopK, .d_in = 64, .d_sae = 512, .k = 16});
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto encoder, Encoder::Create(dict));
  const int64_t n = 32;
  const std::vector<float> x = RandomInput(n, 64, 11);
  EncodeOptions bf16{.compute_mode = ComputeMode::kBF16};
  auto result = encoder->Encode(x, n, bf16);
  if (!Encoder::Bf16Available()) {
    EXPECT_THAT(result, StatusIs(absl::StatusCode::kUnimplemented, ::testing::HasSubstr("BF16")));
    GTEST_SKIP() << "BF16 not available on this build/CPU; checked UNIMPLEMENTED only";
  }
  ASSERT_THAT(result, IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult exact, encoder->Encode(x, n));
  int64_t common = 0;
  for (int64_t r = 0; r < n; ++r) {
    const auto a = DenseRow(exact.codes, r);
    const auto b = DenseRow(result->codes, r);
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i] != 0 && b[i] != 0) {
        ++common;
        EXPECT_NEAR(a[i], b[i], 0.05 * (1 + std::abs(a[i])));
      }
    }
  }
  EXPECT_GE(common, static_cast<int64_t>(0.85 * n * 16));
}

}  // namespace
}  // namespace saedict::engine
