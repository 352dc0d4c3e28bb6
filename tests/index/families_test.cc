// index::BuildFamilies on a dictionary with planted families: the forest is
// recovered exactly, and the two decoys (close but never co-firing; always
// co-firing but orthogonal) are not linked.
#include "index/families.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/neighbours.h"
#include "tests/index/index_test_util.h"
#include "tests/index/planted_families.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::index {
namespace {

using ::saedict::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class PlantedFamiliesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plant_ = testing::MakePlantedFamilies(20000);
    auto dict = testing::DirectionsDictionary(plant_.rows, plant_.kN, plant_.kD);
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto index, FeatureIndex::Build(dict, DirectionKind::kDecoder, {}));
    neighbours_.resize(plant_.kN);
    ASSERT_THAT(PrecomputeNeighbours(*index, {.top_n = 8},
                                     [&](int64_t first, std::vector<std::vector<Hit>> lists) {
                                       for (size_t k = 0; k < lists.size(); ++k) {
                                         neighbours_[first + k] = std::move(lists[k]);
                                       }
                                       return absl::OkStatus();
                                     }),
                IsOk());
    counts_ = std::make_unique<CooccurrenceCounter>(neighbours_, FamilyOptions().min_decoder_cosine);
    for (const auto& token : plant_.tokens) counts_->AddToken(token);
  }
  testing::PlantedFamilies plant_;
  std::vector<std::vector<Hit>> neighbours_;
  std::unique_ptr<CooccurrenceCounter> counts_;
};

TEST_F(PlantedFamiliesTest, RecoversThePlantedForestExactly) {
  const FamilyForest forest = BuildFamilies(*counts_, {});
  std::vector<int64_t> want(plant_.kN, -1);
  for (int p = 0; p < 4; ++p) want[4 + 2 * p] = want[5 + 2 * p] = p;
  want[12] = 4;
  EXPECT_EQ(forest.parent, want);
  ASSERT_EQ(forest.families.size(), 4u);
  EXPECT_EQ(forest.families[0].root, 0u);
  EXPECT_THAT(forest.families[0].members, ElementsAre(0, 4, 5, 12));
  EXPECT_EQ(forest.families[0].depth, 2);
  for (int p = 1; p < 4; ++p) {
    EXPECT_EQ(forest.families[p].root, static_cast<uint32_t>(p));
    EXPECT_THAT(forest.families[p].members, ElementsAre(p, 4 + 2 * p, 5 + 2 * p));
  }
  EXPECT_THAT(forest.children[0], ElementsAre(4, 5));
  const Relation& r = forest.link[12];
  EXPECT_EQ(r.parent, 4u);
  EXPECT_DOUBLE_EQ(r.coverage, 1.0);
  EXPECT_GT(r.decoder_cosine, 0.8);
  EXPECT_GT(r.phi, 0.3);
  EXPECT_THAT(ExplainRelation(r, {}), HasSubstr("12 is a child of 4"));
}

TEST_F(PlantedFamiliesTest, GeometryWithoutCooccurrenceIsNotAChild) {
  // 13 points almost along 0 but fires only where 0 does not.
  EXPECT_GT(counts_->pair_cosine(0, 13), 0.9);
  EXPECT_EQ(counts_->pair_count(0, 13), 0);
  EXPECT_EQ(BuildFamilies(*counts_, {}).parent[13], -1);
}

TEST_F(PlantedFamiliesTest, CooccurrenceWithoutGeometryIsNotAChild) {
  // 14 fires only with 1 (coverage 1) but is orthogonal to it: not even a candidate.
  EXPECT_TRUE(std::isnan(counts_->pair_cosine(1, 14)));
  EXPECT_EQ(BuildFamilies(*counts_, {}).parent[14], -1);
  // With every pair a candidate (all neighbours, geometry threshold off),
  // coverage alone links it: the reason both signals are required.
  auto dict = testing::DirectionsDictionary(plant_.rows, plant_.kN, plant_.kD);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto index, FeatureIndex::Build(dict, DirectionKind::kDecoder, {}));
  std::vector<std::vector<Hit>> everyone(plant_.kN);
  ASSERT_THAT(PrecomputeNeighbours(*index, {.top_n = static_cast<int>(plant_.kN - 1)},
                                   [&](int64_t first, std::vector<std::vector<Hit>> lists) {
                                     for (size_t k = 0; k < lists.size(); ++k) {
                                       everyone[first + k] = std::move(lists[k]);
                                     }
                                     return absl::OkStatus();
                                   }),
              IsOk());
  CooccurrenceCounter loose(everyone, -1.0);
  for (const auto& token : plant_.tokens) loose.AddToken(token);
  FamilyOptions options;
  options.min_decoder_cosine = -1.0;
  EXPECT_NEAR(loose.pair_cosine(1, 14), 0.0, 1e-6);
  EXPECT_EQ(BuildFamilies(loose, options).parent[14], 1);
}

TEST_F(PlantedFamiliesTest, ThresholdsAreHonoured) {
  FamilyOptions strict;
  strict.min_child_count = 1000000;  // no feature fires that often
  EXPECT_TRUE(BuildFamilies(*counts_, strict).families.empty());
  strict = {};
  strict.min_decoder_cosine = 0.99;  // closer than any planted child
  CooccurrenceCounter counts(neighbours_, strict.min_decoder_cosine);
  for (const auto& token : plant_.tokens) counts.AddToken(token);
  EXPECT_TRUE(BuildFamilies(counts, strict).families.empty());
}

}  // namespace
}  // namespace saedict::index
