// Transcoders in the engine: encode reads d_in, decode writes d_out
// (x_hat = f W_dec + b_dec + x W_skip^T for a skip transcoder), checked
// against a float64 reference written here as plain loops; Decode (no
// skip term, it has no input), Intervene (the edited output), the refused
// row error, the batcher's slicing of [n, d_out] reconstructions, the
// content hash, and Dictionary::Validate's transcoder rules.
#include <atomic>
#include <cmath>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "engine/batcher.h"
#include "engine/content_hash.h"
#include "engine/encoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/reference_sae.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::engine {
namespace {

using ::saedict::engine::testing::DenseRow;
using ::saedict::engine::testing::RandomInput;
using ::saedict::engine::testing::ReferenceEncodeRow;
using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;
using ::testing::HasSubstr;

using ::saedict::engine::testing::MakeTranscoder;
using ::saedict::engine::testing::TranscoderSpec;

constexpr int64_t kDIn = testing::kTranscoderDIn, kDOut = testing::kTranscoderDOut,
                  kDSae = testing::kTranscoderDSae;

// b_dec + f W_dec (+ W_skip x when x is given), float64, [d_out].
std::vector<double> ReferenceOutput(const Dictionary& d, const std::vector<double>& f,
                                    const float* x) {
  const int64_t d_out = d.config.d_out, d_in = d.config.d_in;
  std::vector<double> y(d.b_dec.begin(), d.b_dec.end());
  for (int64_t i = 0; i < d.config.d_sae; ++i) {
    if (f[i] == 0.0) continue;
    for (int64_t o = 0; o < d_out; ++o) y[o] += f[i] * d.w_dec[i * d_out + o];
  }
  if (x != nullptr && d.has_skip()) {
    for (int64_t o = 0; o < d_out; ++o) {
      for (int64_t j = 0; j < d_in; ++j) y[o] += double{d.w_skip[o * d_in + j]} * x[j];
    }
  }
  return y;
}

void ExpectRowNear(const float* got, const std::vector<double>& want, const char* what,
                   int64_t row) {
  for (size_t o = 0; o < want.size(); ++o) {
    ASSERT_NEAR(got[o], want[o], 1e-4 * (1.0 + std::abs(want[o])))
        << what << " row " << row << " column " << o;
  }
}

class TranscoderTest : public ::testing::TestWithParam<TranscoderSpec> {};

TEST_P(TranscoderTest, EncodeDecodeAndInterveneMatchTheFloat64Reference) {
  std::shared_ptr<Dictionary> dict = MakeTranscoder(GetParam());
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Encoder> encoder, Encoder::Create(dict));
  constexpr int64_t n = 37;
  const std::vector<float> x = RandomInput(n, kDIn, 11);
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult result,
                               encoder->Encode(x, n, {.return_reconstruction = true}));
  ASSERT_EQ(result.reconstruction.size(), static_cast<size_t>(n * kDOut));
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<float> decoded, encoder->Decode(result.codes));
  ASSERT_EQ(decoded.size(), static_cast<size_t>(n * kDOut));
  int64_t active = 0;
  for (int64_t r = 0; r < n; ++r) {
    const testing::RefRow ref = ReferenceEncodeRow(*dict, x.data() + r * kDIn, 0);
    const std::vector<double> got = DenseRow(result.codes, r);
    for (int64_t i = 0; i < kDSae; ++i) {
      if (ref.margin[i] < 1e-3) continue;  // near a decision boundary
      ASSERT_NEAR(got[i], ref.f[i], 1e-4 * (1.0 + std::abs(ref.f[i]))) << "row " << r << " f" << i;
      active += ref.f[i] != 0.0;
    }
    // The engine's own codes through the reference decoder: with and without the skip term.
    ExpectRowNear(result.reconstruction.data() + r * kDOut,
                  ReferenceOutput(*dict, got, x.data() + r * kDIn), "reconstruction", r);
    ExpectRowNear(decoded.data() + r * kDOut, ReferenceOutput(*dict, got, nullptr), "decode", r);
  }
  EXPECT_GT(active, n);  // the test exercises the decoder

  // Ablate row 0's largest feature and add 2 to feature 5 everywhere.
  const std::vector<double> f0 = DenseRow(result.codes, 0);
  int64_t top = 0;
  for (int64_t i = 1; i < kDSae; ++i) top = f0[i] > f0[top] ? i : top;
  ASSERT_GT(f0[top], 0.0);
  const std::vector<FeatureEdit> edits = {
      {.feature = static_cast<uint32_t>(top), .op = EditOp::kAblate, .rows = {0}},
      {.feature = 5, .op = EditOp::kAdd, .value = 2.0f, .rows = {}}};
  SAEDICT_ASSERT_OK_AND_ASSIGN(InterveneResult edited, encoder->Intervene(x, n, edits));
  ASSERT_EQ(edited.activations.size(), static_cast<size_t>(n * kDOut));
  for (int64_t r = 0; r < n; ++r) {
    std::vector<double> f = DenseRow(result.codes, r);
    if (r == 0) f[top] = 0.0;
    f[5] += 2.0;
    const std::vector<double> codes_row = DenseRow(edited.edited_codes, r);
    for (int64_t i = 0; i < kDSae; ++i) ASSERT_FLOAT_EQ(codes_row[i], f[i]) << "row " << r;
    ExpectRowNear(edited.activations.data() + r * kDOut,
                  ReferenceOutput(*dict, f, x.data() + r * kDIn), "intervene", r);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Architectures, TranscoderTest,
    ::testing::Values(TranscoderSpec{Architecture::kStandard, true},
                      TranscoderSpec{Architecture::kStandard, false},
                      TranscoderSpec{Architecture::kJumpReLU, true},
                      TranscoderSpec{Architecture::kJumpReLU, false},
                      TranscoderSpec{Architecture::kTopK, true, 8}),
    [](const auto& info) {
      return std::string(ArchitectureName(info.param.architecture)) +
             (info.param.skip ? "_skip" : "_noskip");
    });

TEST(TranscoderEngineTest, RowErrorIsRefusedWithTheReason) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Encoder> encoder,
                               Encoder::Create(MakeTranscoder({})));
  const std::vector<float> x = RandomInput(2, kDIn, 3);
  EXPECT_THAT(encoder->Encode(x, 2, {.return_row_error = true}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("return_row_error: this dictionary is a transcoder")));
  EXPECT_THAT(encoder->Encode(x, 2, {.return_row_error = true}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("blocks.3.hook_mlp_out")));
  // Input of the output hook's width is named as the wrong size.
  const std::vector<float> wrong = RandomInput(2, kDOut, 3);
  EXPECT_THAT(encoder->Encode(wrong, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected n * d_in = 2 * 24")));
}

TEST(TranscoderEngineTest, BatchedReconstructionsAreSlicedByDOut) {
  std::shared_ptr<const Encoder> encoder;
  {
    SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Encoder> e, Encoder::Create(MakeTranscoder({})));
    encoder = std::move(e);
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<EncodeBatcher> batcher,
      EncodeBatcher::Create({.max_batch_tokens = 64, .max_queue_delay = absl::Milliseconds(5)}));
  std::atomic<int> mismatches{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        const int64_t n = 1 + (t * 5 + i) % 9;
        const std::vector<float> x = RandomInput(n, kDIn, 100 * t + i);
        const EncodeOptions options{.return_reconstruction = true};
        auto batched = batcher->Encode(encoder, x, n, options);
        auto direct = encoder->Encode(x, n, options);
        if (!batched.ok() || !direct.ok()) {
          ++failures;
          continue;
        }
        if (batched->reconstruction != direct->reconstruction ||
            batched->codes.indices != direct->codes.indices) {
          ++mismatches;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(TranscoderEngineTest, ContentHashCoversDOutAndWSkip) {
  const std::shared_ptr<Dictionary> skip = MakeTranscoder({});
  Dictionary no_skip = *skip;
  no_skip.w_skip.clear();
  Dictionary other_skip = *skip;
  other_skip.w_skip[7] += 0.5f;
  const std::string h = DictionaryContentSha256(*skip);
  EXPECT_NE(h, DictionaryContentSha256(no_skip));
  EXPECT_NE(h, DictionaryContentSha256(other_skip));
  Dictionary renamed = *skip;
  renamed.config.hook_name_out = "elsewhere";
  EXPECT_EQ(h, DictionaryContentSha256(renamed));  // names are not content
}

TEST(TranscoderEngineTest, ValidateNamesEachTranscoderRule) {
  auto invalid = [](auto mutate, const std::string& message) {
    Dictionary d = *MakeTranscoder({});
    mutate(d);
    EXPECT_THAT(d.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << message;
  };
  invalid([](Dictionary& d) { d.config.apply_b_dec_to_input = true; },
          "apply_b_dec_to_input must be false for a transcoder");
  invalid([](Dictionary& d) { d.config.normalization = Normalization::kLayerNorm; },
          "normalization must be none for a transcoder, got layer_norm");
  invalid([](Dictionary& d) { d.config.d_out = -1; }, "d_out must be 0 (an SAE) or in [1,");
  invalid([](Dictionary& d) { d.w_skip.pop_back(); }, "tensor W_skip has 959 values, expected 960");
  invalid([](Dictionary& d) { d.b_dec.resize(kDIn); }, "tensor b_dec has 24 values, expected 40");
  invalid([](Dictionary& d) { d.w_skip[3] = NAN; }, "tensor W_skip has non-finite value");
  invalid(
      [](Dictionary& d) {
        d.config.architecture = Architecture::kMatchingPursuit;
        d.config.k = 4;
      },
      "a transcoder cannot be matching_pursuit");
  // An SAE (d_out 0) has no W_skip and no output hook.
  invalid(
      [](Dictionary& d) {
        d.config.d_out = 0;
        d.config.hook_name_out.clear();
        d.w_dec.resize(kDSae * kDIn);
        d.b_dec.resize(kDIn);
      },
      "tensor W_skip has 960 values but d_out is 0");
  invalid(
      [](Dictionary& d) {
        d.config.d_out = 0;
        d.w_skip.clear();
        d.w_dec.resize(kDSae * kDIn);
        d.b_dec.resize(kDIn);
      },
      "hook_name_out \"blocks.3.hook_mlp_out\" is set but d_out is 0");
  EXPECT_THAT(MakeTranscoder({})->Validate(), IsOk());
}

}  // namespace
}  // namespace saedict::engine
