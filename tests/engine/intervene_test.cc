// Encoder::Intervene: x + (f' - f) W_dec with the SAE error preserved, for
// set / add / scale / ablate edits on all rows or a subset, under each
// normalization and with decoder-norm rescaling.
#include <cmath>
#include <map>
#include <vector>

#include "engine/encoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/reference_sae.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::engine {
namespace {

using ::saedict::engine::testing::DenseRow;
using ::saedict::engine::testing::DictSpec;
using ::saedict::engine::testing::MakeDictionary;
using ::saedict::engine::testing::RandomInput;
using ::saedict::engine::testing::ReferenceRowNorm;
using ::saedict::testing::StatusIs;
using ::testing::HasSubstr;

// x + sum_i (f'_i - f_i) * decode_factor_i * out_scale * W_dec_i, in float64.
std::vector<double> ExpectedActivations(const Dictionary& d, const std::vector<float>& x, int64_t n,
                                        const SparseCodes& f, const SparseCodes& edited) {
  const int64_t d_in = d.config.d_in;
  std::vector<double> out(x.begin(), x.end());
  for (int64_t r = 0; r < n; ++r) {
    const double scale =
        ReferenceRowNorm(d.config.normalization, x.data() + r * d_in, d_in).out_scale;
    const std::vector<double> before = DenseRow(f, r);
    const std::vector<double> after = DenseRow(edited, r);
    for (int64_t i = 0; i < d.config.d_sae; ++i) {
      double delta = after[i] - before[i];
      if (delta == 0.0) continue;
      if (d.config.rescale_acts_by_decoder_norm) {
        double sq = 0.0;
        for (int64_t j = 0; j < d_in; ++j) sq += std::pow(d.w_dec[i * d_in + j], 2);
        delta /= std::sqrt(sq);
      }
      for (int64_t j = 0; j < d_in; ++j) out[r * d_in + j] += delta * scale * d.w_dec[i * d_in + j];
    }
  }
  return out;
}

void ExpectNear(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-4 * (1.0 + std::abs(want[i]))) << "element " << i;
  }
}

class InterveneTest : public ::testing::TestWithParam<DictSpec> {
 protected:
  void SetUp() override {
    dict_ = MakeDictionary(GetParam());
    auto encoder = Encoder::Create(dict_);
    ASSERT_TRUE(encoder.ok()) << encoder.status();
    encoder_ = std::move(encoder).value();
    x_ = RandomInput(n_, dict_->config.d_in, 21, 2.0f, 0.3f);
    auto f = encoder_->Encode(x_, n_, EncodeOptions{.return_reconstruction = true});
    ASSERT_TRUE(f.ok()) << f.status();
    f_ = std::move(f).value();
  }

  // A feature active in `row` (the first one).
  uint32_t ActiveFeature(int64_t row) const {
    EXPECT_LT(f_.codes.row_offsets[row], f_.codes.row_offsets[row + 1]);
    return f_.codes.indices[f_.codes.row_offsets[row]];
  }

  const int64_t n_ = 5;
  std::shared_ptr<Dictionary> dict_;
  std::unique_ptr<Encoder> encoder_;
  std::vector<float> x_;
  EncodeResult f_;
};

TEST_P(InterveneTest, NoEditsReturnsXExactly) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(InterveneResult result, encoder_->Intervene(x_, n_, {}));
  EXPECT_EQ(result.activations, x_);
  EXPECT_EQ(result.edited_codes.indices, f_.codes.indices);
  EXPECT_EQ(result.edited_codes.values, f_.codes.values);
  EXPECT_EQ(result.edited_codes.row_offsets, f_.codes.row_offsets);
}

TEST_P(InterveneTest, AblateEveryFeatureRemovesTheDecodedSignal) {
  std::vector<FeatureEdit> edits;
  for (uint32_t i = 0; i < dict_->config.d_sae; ++i) {
    edits.push_back({.feature = i, .op = EditOp::kAblate, .value = 0, .rows = {}});
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(InterveneResult result, encoder_->Intervene(x_, n_, edits));
  EXPECT_EQ(result.edited_codes.nnz(), 0);
  EXPECT_THAT(result.edited_codes.Validate(), ::saedict::testing::IsOk());
  ExpectNear(result.activations,
             ExpectedActivations(*dict_, x_, n_, f_.codes, result.edited_codes));
  if (dict_->config.normalization == Normalization::kNone &&
      dict_->config.architecture != Architecture::kMatchingPursuit) {
    // x - f W_dec == x - (x_hat - b_dec).
    const int64_t d_in = dict_->config.d_in;
    for (int64_t e = 0; e < n_ * d_in; ++e) {
      const double want = x_[e] - (f_.reconstruction[e] - dict_->b_dec[e % d_in]);
      EXPECT_NEAR(result.activations[e], want, 1e-4 * (1 + std::abs(want)));
    }
  }
}

TEST_P(InterveneTest, SetAddScaleOnRowSubsets) {
  const uint32_t a = ActiveFeature(0);
  const uint32_t b = ActiveFeature(2);
  const uint32_t unused = 123;
  std::vector<FeatureEdit> edits = {
      {.feature = a, .op = EditOp::kScale, .value = 3.0f, .rows = {}},  // every row
      {.feature = unused, .op = EditOp::kSet, .value = 4.5f, .rows = {3, 1}},
      {.feature = b, .op = EditOp::kAdd, .value = -0.25f, .rows = {2}},
      {.feature = unused, .op = EditOp::kAdd, .value = 0.5f, .rows = {1}},  // after the set
  };
  SAEDICT_ASSERT_OK_AND_ASSIGN(InterveneResult result, encoder_->Intervene(x_, n_, edits));
  ASSERT_THAT(result.edited_codes.Validate(), ::saedict::testing::IsOk());
  for (int64_t r = 0; r < n_; ++r) {
    std::vector<double> want = DenseRow(f_.codes, r);
    want[a] = static_cast<float>(want[a] * 3.0f);
    if (r == 1) want[unused] = 5.0;
    if (r == 3) want[unused] = 4.5;
    if (r == 2) want[b] = static_cast<float>(static_cast<float>(want[b]) - 0.25f);
    const std::vector<double> got = DenseRow(result.edited_codes, r);
    for (int64_t i = 0; i < dict_->config.d_sae; ++i) {
      EXPECT_FLOAT_EQ(got[i], want[i]) << "row " << r << " feature " << i;
    }
  }
  ExpectNear(result.activations,
             ExpectedActivations(*dict_, x_, n_, f_.codes, result.edited_codes));
  // Row 4 is only touched if feature a is active there; otherwise x exactly.
  const std::vector<double> row4 = DenseRow(f_.codes, 4);
  if (row4[a] == 0.0) {
    const int64_t d_in = dict_->config.d_in;
    EXPECT_EQ(std::vector<float>(result.activations.begin() + 4 * d_in,
                                 result.activations.begin() + 5 * d_in),
              std::vector<float>(x_.begin() + 4 * d_in, x_.begin() + 5 * d_in));
  }
}

TEST_P(InterveneTest, TopKOverrideAppliesBeforeEditing) {
  EncodeOptions options{.top_k = 2};
  SAEDICT_ASSERT_OK_AND_ASSIGN(InterveneResult result, encoder_->Intervene(x_, n_, {}, options));
  for (int64_t r = 0; r < n_; ++r) {
    EXPECT_LE(result.edited_codes.row_offsets[r + 1] - result.edited_codes.row_offsets[r], 2u);
  }
  EXPECT_EQ(result.activations, x_);
}

// ApplyEdits on Encode's codes (the batcher's or a worker's) equals
// Intervene bit for bit, under every normalization and architecture.
TEST_P(InterveneTest, ApplyEditsOnEncodedCodesEqualsIntervene) {
  std::vector<FeatureEdit> edits = {
      {.feature = ActiveFeature(0), .op = EditOp::kScale, .value = 3.0f, .rows = {}},
      {.feature = 1, .op = EditOp::kSet, .value = 2.5f, .rows = {1, 3}},
      {.feature = ActiveFeature(4), .op = EditOp::kAblate, .rows = {4}}};
  SAEDICT_ASSERT_OK_AND_ASSIGN(InterveneResult direct, encoder_->Intervene(x_, n_, edits));
  SAEDICT_ASSERT_OK_AND_ASSIGN(InterveneResult split,
                               encoder_->ApplyEdits(x_, n_, f_.codes, edits));
  EXPECT_EQ(split.activations, direct.activations);
  EXPECT_EQ(split.edited_codes.row_offsets, direct.edited_codes.row_offsets);
  EXPECT_EQ(split.edited_codes.indices, direct.edited_codes.indices);
  EXPECT_EQ(split.edited_codes.values, direct.edited_codes.values);
}

TEST_P(InterveneTest, ApplyEditsRefusesCodesOfOtherRowsAndBadEdits) {
  const std::vector<FeatureEdit> none;
  EXPECT_THAT(encoder_->ApplyEdits(x_, n_ - 1, f_.codes, none),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("activations")));
  std::vector<float> fewer(x_.begin(), x_.end() - dict_->config.d_in);
  EXPECT_THAT(encoder_->ApplyEdits(fewer, n_ - 1, f_.codes, none),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("codes: [5, ")));
  const std::vector<FeatureEdit> bad_row = {{.feature = 0, .op = EditOp::kAblate, .rows = {5}}};
  EXPECT_THAT(encoder_->ApplyEdits(x_, n_, f_.codes, bad_row),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("row 5 out of range")));
  EXPECT_THAT(encoder_->ValidateEdits(n_, bad_row),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("edit 0: row 5")));
  SparseCodes broken = f_.codes;
  if (!broken.indices.empty()) {
    broken.indices[0] = static_cast<uint32_t>(dict_->config.d_sae);
    EXPECT_THAT(encoder_->ApplyEdits(x_, n_, broken, none),
                StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Specs, InterveneTest,
    ::testing::Values(DictSpec{.architecture = Architecture::kStandard},
                      DictSpec{.architecture = Architecture::kTopK, .k = 8},
                      DictSpec{.architecture = Architecture::kTopK,
                               .normalization = Normalization::kLayerNorm,
                               .rescale_acts_by_decoder_norm = true,
                               .k = 8},
                      DictSpec{.architecture = Architecture::kJumpReLU,
                               .normalization = Normalization::kConstantNormRescale},
                      DictSpec{.architecture = Architecture::kGated, .apply_b_dec_to_input = false},
                      DictSpec{.architecture = Architecture::kMatchingPursuit,
                               .normalization = Normalization::kLayerNorm,
                               .k = 6}),
    [](const auto& info) { return ::saedict::engine::testing::SpecName(info.param); });

}  // namespace
}  // namespace saedict::engine
