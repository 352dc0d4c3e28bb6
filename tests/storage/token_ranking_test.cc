// Unit tests of the sampling rule shared by the corpus stores
// (storage/token_ranking.h): which documents CollectRangeCandidates reads,
// in which order, and that every range with matching values gets candidates.
#include "storage/token_ranking.h"

#include <map>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/keys.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Documents given as their feature values per row, kept in inverted-index
// order; counts the documents whose values are read.
class VectorDocuments : public PeakOrderedDocuments {
 public:
  explicit VectorDocuments(std::vector<std::vector<float>> docs) : docs_(std::move(docs)) {
    for (uint64_t d = 0; d < docs_.size(); ++d) {
      float peak = 0;
      for (float v : docs_[d]) peak = std::max(peak, v);
      order_.push_back({peak, 0, d});
    }
    std::stable_sort(order_.begin(), order_.end(),
                     [](const Entry& a, const Entry& b) { return a.peak > b.peak; });
  }
  void Seek(std::optional<float> at_or_below) override {
    next_ = 0;
    while (at_or_below && next_ < order_.size() && order_[next_].peak > *at_or_below) ++next_;
  }
  absl::StatusOr<std::optional<Entry>> Next() override {
    if (next_ >= order_.size()) return std::nullopt;
    return order_[next_++];
  }
  absl::StatusOr<const std::vector<float>*> FeatureValues(const Entry& e) override {
    ++reads_[e.doc];
    return &docs_[e.doc];
  }
  const std::map<uint64_t, int>& reads() const { return reads_; }

 private:
  std::vector<std::vector<float>> docs_;
  std::vector<Entry> order_;
  size_t next_ = 0;
  std::map<uint64_t, int> reads_;
};

std::vector<float> Values(const std::vector<RankedToken>& tokens) {
  std::vector<float> out;
  for (const RankedToken& t : tokens) out.push_back(t.value);
  return out;
}

// Many documents with high peaks and no low values, then a few whose peak is
// low: the low range is filled from its own documents without reading the
// high ones in between.
TEST(CollectRangeCandidatesTest, ReadsEachRangesOwnDocumentsFirst) {
  std::vector<std::vector<float>> docs;
  for (int d = 0; d < 100; ++d) docs.push_back({5.0f + d * 0.01f, 0, 6.0f});
  docs.push_back({0.5f, 0.25f});  // doc 100
  docs.push_back({0, 0.75f});     // doc 101
  VectorDocuments source(docs);
  const std::vector<CorpusStore::ValueRange> ranges = {{0, 1, false}, {1, 10, true}};
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto found, CollectRangeCandidates(source, ranges, 3));
  EXPECT_THAT(Values(found[0]), ElementsAre(0.75f, 0.5f, 0.25f));
  EXPECT_EQ(found[1].size(), 3u);
  // The high range's first two documents (peak 6) and the two low ones.
  EXPECT_EQ(source.reads().size(), 4u);
  for (const auto& [doc, n] : source.reads()) EXPECT_EQ(n, 1) << "doc " << doc;
}

// A range whose values sit only in documents with a higher peak is filled
// by the second, top-down pass; a range nothing falls in stays empty, and
// the scan stops once no short range can gain.
TEST(CollectRangeCandidatesTest, FallsBackToTheTopDownScan) {
  VectorDocuments source({{9, 1.5f}, {8, 1.25f}, {7}, {3}, {0.5f}});
  const std::vector<CorpusStore::ValueRange> ranges = {
      {1, 2, false}, {2, 2, false}, {6, 10, true}};
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto found, CollectRangeCandidates(source, ranges, 2));
  EXPECT_THAT(Values(found[0]), ElementsAre(1.5f, 1.25f));
  EXPECT_THAT(found[1], IsEmpty());
  EXPECT_THAT(Values(found[2]), ElementsAre(9, 8));
  // Range [2, 2] is still short after the 3-peak document, so the scan
  // reads it; the 0.5-peak one cannot hold 2 and is never read.
  EXPECT_EQ(source.reads().count(3), 1u);
  EXPECT_EQ(source.reads().count(4), 0u);
}

// Values equal to an exclusive upper bound belong to the next range, peaks
// included; a degenerate range [v, v] takes exactly v.
TEST(CollectRangeCandidatesTest, BoundsFollowInValueRange) {
  VectorDocuments source({{2}, {1, 2}, {1}});
  const std::vector<CorpusStore::ValueRange> ranges = {{1, 2, false}, {2, 2, false}};
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto found, CollectRangeCandidates(source, ranges, 5));
  EXPECT_THAT(Values(found[0]), ElementsAre(1, 1));
  EXPECT_THAT(Values(found[1]), ElementsAre(2, 2));
}

}  // namespace
}  // namespace saedict::storage
