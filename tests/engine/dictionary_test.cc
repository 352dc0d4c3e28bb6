// Dictionary::Validate / WeightBytes, the enum names, and
// SparseCodes::Validate.
#include "engine/dictionary.h"

#include <cmath>
#include <vector>

#include "engine/sparse_codes.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/reference_sae.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::engine {
namespace {

using ::saedict::engine::testing::MakeDictionary;
using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

TEST(DictionaryTest, Names) {
  EXPECT_STREQ(ArchitectureName(Architecture::kStandard), "standard");
  EXPECT_STREQ(ArchitectureName(Architecture::kTopK), "topk");
  EXPECT_STREQ(ArchitectureName(Architecture::kJumpReLU), "jumprelu");
  EXPECT_STREQ(ArchitectureName(Architecture::kGated), "gated");
  EXPECT_STREQ(ArchitectureName(Architecture::kMatchingPursuit), "matching_pursuit");
  EXPECT_STREQ(NormalizationName(Normalization::kNone), "none");
  EXPECT_STREQ(NormalizationName(Normalization::kConstantNormRescale), "constant_norm_rescale");
  EXPECT_STREQ(NormalizationName(Normalization::kLayerNorm), "layer_norm");
}

TEST(DictionaryTest, GeneratedDictionariesValidate) {
  for (Architecture a : {Architecture::kStandard, Architecture::kTopK, Architecture::kJumpReLU,
                         Architecture::kGated, Architecture::kMatchingPursuit}) {
    const int32_t k = a == Architecture::kTopK || a == Architecture::kMatchingPursuit ? 4 : 0;
    EXPECT_THAT(MakeDictionary({.architecture = a, .k = k})->Validate(), IsOk())
        << ArchitectureName(a);
  }
  EXPECT_THAT(MakeDictionary(
                  {.architecture = Architecture::kMatchingPursuit, .mp_store_w_enc = false, .k = 4})
                  ->Validate(),
              IsOk());
}

TEST(DictionaryTest, WeightBytes) {
  auto d = MakeDictionary({.architecture = Architecture::kJumpReLU, .d_in = 8, .d_sae = 16});
  EXPECT_EQ(d->WeightBytes(), 4 * (8 * 16 * 2 + 16 + 8 + 16));
}

TEST(DictionaryTest, RejectsBadShapesAndConfig) {
  auto d = MakeDictionary({.architecture = Architecture::kTopK, .k = 4});
  Dictionary bad = *d;
  bad.config.d_in = 0;
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, HasSubstr("d_in")));
  bad = *d;
  bad.w_enc.resize(10);
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, AllOf(HasSubstr("W_enc"), HasSubstr("10"))));
  bad = *d;
  bad.w_dec[17] = std::nanf("");
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, AllOf(HasSubstr("W_dec"), HasSubstr("17"))));
  bad = *d;
  bad.threshold.assign(d->config.d_sae, 0.0f);
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, HasSubstr("threshold")));
  bad = *d;
  bad.config.k = 0;
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, AllOf(HasSubstr("k must"), HasSubstr("0"))));
  bad.config.k = static_cast<int32_t>(d->config.d_sae) + 1;
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, HasSubstr("k must")));
}

TEST(DictionaryTest, RejectsArchitectureMismatches) {
  auto gated = MakeDictionary({.architecture = Architecture::kGated});
  Dictionary bad = *gated;
  bad.b_enc.assign(gated->config.d_sae, 0.0f);
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, AllOf(HasSubstr("b_enc"), HasSubstr("empty"))));
  bad = *gated;
  bad.r_mag[3] = 1000.0f;
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, HasSubstr("r_mag")));
  auto standard = MakeDictionary({.architecture = Architecture::kStandard});
  bad = *standard;
  bad.config.rescale_acts_by_decoder_norm = true;
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, HasSubstr("rescale_acts_by_decoder_norm")));
  auto mp = MakeDictionary({.architecture = Architecture::kMatchingPursuit, .k = 3});
  bad = *mp;
  bad.w_enc[5] += 1.0f;
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, HasSubstr("W_dec^T")));
  bad = *mp;
  bad.config.mp_residual_threshold = -1.0f;
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, HasSubstr("mp_residual_threshold")));
}

TEST(SparseCodesTest, Validate) {
  SparseCodes ok{.num_rows = 2,
                 .num_features = 10,
                 .row_offsets = {0, 2, 3},
                 .indices = {1, 9, 0},
                 .values = {1.0f, -2.0f, 0.5f}};
  EXPECT_THAT(ok.Validate(), IsOk());
  EXPECT_EQ(ok.nnz(), 3);
  EXPECT_THAT(SparseCodes{}.Validate(), IsOk());  // zero rows: row_offsets {0}
  SparseCodes no_offsets;
  no_offsets.row_offsets.clear();
  EXPECT_THAT(no_offsets.Validate(), StatusIs(kInvalid, HasSubstr("row_offsets")));

  SparseCodes bad = ok;
  bad.row_offsets = {0, 2};
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, HasSubstr("num_rows + 1")));
  bad = ok;
  bad.row_offsets = {1, 2, 3};
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, HasSubstr("row_offsets[0]")));
  bad = ok;
  bad.row_offsets = {0, 3, 2};
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, HasSubstr("row_offsets[2] is 2 but nnz is 3")));
  bad.row_offsets = {0, 3, 3};
  bad.indices = {1, 9, 0};
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, AllOf(HasSubstr("row 0"), HasSubstr("ascend"))));
  bad = ok;
  bad.indices[1] = 10;
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, AllOf(HasSubstr("row 0"), HasSubstr("10"))));
  bad = ok;
  bad.values[2] = std::nanf("");
  EXPECT_THAT(bad.Validate(),
              StatusIs(kInvalid, AllOf(HasSubstr("row 1"), HasSubstr("non-finite"))));
  bad = ok;
  bad.values.pop_back();
  EXPECT_THAT(bad.Validate(), StatusIs(kInvalid, HasSubstr("3 indices but 2 values")));
}

}  // namespace
}  // namespace saedict::engine
