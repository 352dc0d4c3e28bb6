// index::FeatureIndex against brute-force float64 cosine: the exact index
// on both of its paths (half-precision scan for single queries, sgemm for
// batches), recall of the approximate factory strings, persistence
// (missing, stale, damaged files) and the query checks.
#include "index/feature_index.h"

#include <algorithm>
#include <fstream>
#include <numeric>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/directions.h"
#include "index/file_sha256.h"
#include "index/half_rows.h"
#include "index/neighbours.h"
#include "tests/index/index_test_util.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::index {
namespace {

using ::saedict::testing::Cosine64;
using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;
using ::testing::HasSubstr;

// The exact top-n of `query` over rows: float64 cosine descending, then id.
std::vector<Hit> BruteForce(const std::vector<float>& rows, int64_t n, int64_t d,
                            const std::vector<float>& query, int top_n, int64_t exclude = -1,
                            double min_cosine = -2) {
  std::vector<Hit> all;
  for (int64_t i = 0; i < n; ++i) {
    if (i == exclude) continue;
    const double c = Cosine64(rows.data() + i * d, query.data(), d);
    if (c >= min_cosine) all.push_back({static_cast<uint32_t>(i), c});
  }
  std::sort(all.begin(), all.end(), [](const Hit& a, const Hit& b) {
    return a.cosine > b.cosine || (a.cosine == b.cosine && a.feature < b.feature);
  });
  if (static_cast<int>(all.size()) > top_n) all.resize(top_n);
  return all;
}

std::vector<double> Unit(const std::vector<float>& v) {
  absl::StatusOr<std::vector<double>> u = UnitQuery(v, static_cast<int64_t>(v.size()), "q");
  EXPECT_THAT(u, IsOk());
  return u.ok() ? *u : std::vector<double>();
}

void ExpectSameHits(const std::vector<Hit>& got, const std::vector<Hit>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    EXPECT_EQ(got[k].feature, want[k].feature) << "rank " << k;
    EXPECT_NEAR(got[k].cosine, want[k].cosine, 1e-12) << "rank " << k;
  }
}

class ExactIndexTest : public ::testing::Test {
 protected:
  static constexpr int64_t kN = 700, kD = 24;
  void SetUp() override {
    rows_ = testing::RandomRows(kN, kD, 11);
    // Ties: rows 5, 6 and 600 point the same way (600 scaled), row 7 is zero.
    for (int64_t j = 0; j < kD; ++j) {
      rows_[6 * kD + j] = rows_[5 * kD + j];
      rows_[600 * kD + j] = 3 * rows_[5 * kD + j];
      rows_[7 * kD + j] = 0;
    }
    dict_ = testing::DirectionsDictionary(rows_, kN, kD);
    SAEDICT_ASSERT_OK_AND_ASSIGN(index_, FeatureIndex::Build(dict_, DirectionKind::kDecoder, {}));
  }
  std::vector<float> rows_;
  std::shared_ptr<engine::Dictionary> dict_;
  std::unique_ptr<FeatureIndex> index_;
};

TEST_F(ExactIndexTest, SingleQueriesEqualBruteForce) {
  EXPECT_TRUE(index_->exact());
  EXPECT_EQ(index_->factory(), "Flat");
  const std::vector<float> queries = testing::RandomRows(20, kD, 12);
  for (int q = 0; q < 20; ++q) {
    const std::vector<float> v(queries.begin() + q * kD, queries.begin() + (q + 1) * kD);
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto hits, index_->Search({Unit(v)}, {.top_n = 15}));
    ExpectSameHits(hits[0], BruteForce(rows_, kN, kD, v, 15));
  }
}

TEST_F(ExactIndexTest, BatchedQueriesEqualBruteForceWithExcludeAndMinimum) {
  const Directions directions(dict_, DirectionKind::kDecoder);
  std::vector<std::vector<double>> queries;
  std::vector<int64_t> exclude;
  for (int64_t i = 0; i < 40; ++i) {
    queries.push_back(directions.UnitDirection(i));
    exclude.push_back(i);
  }
  ASSERT_GE(queries.size(), static_cast<size_t>(FeatureIndex::kGemmMinQueries));
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      auto hits, index_->Search(queries, {.top_n = 10, .min_cosine = 0.2}, exclude));
  for (int64_t i = 0; i < 40; ++i) {
    if (i == 7) {
      EXPECT_TRUE(hits[i].empty()) << "the zero direction has cosine 0 with everything";
      continue;
    }
    const std::vector<float> v(rows_.begin() + i * kD, rows_.begin() + (i + 1) * kD);
    ExpectSameHits(hits[i], BruteForce(rows_, kN, kD, v, 10, i, 0.2));
  }
  // The tie of 5 with 6 and 600 (cosine 1) comes back in id order.
  ASSERT_GE(hits[5].size(), 2u);
  EXPECT_EQ(hits[5][0].feature, 6u);
  EXPECT_EQ(hits[5][1].feature, 600u);
  EXPECT_NEAR(hits[5][0].cosine, 1.0, 1e-12);
}

TEST_F(ExactIndexTest, PrecomputedNeighboursEqualBruteForce) {
  std::vector<std::vector<Hit>> all(kN);
  std::vector<int64_t> firsts;
  ASSERT_THAT(PrecomputeNeighbours(*index_, {.top_n = 8, .block = 64},
                                   [&](int64_t first, std::vector<std::vector<Hit>> lists) {
                                     firsts.push_back(first);
                                     for (size_t k = 0; k < lists.size(); ++k) {
                                       all[first + k] = std::move(lists[k]);
                                     }
                                     return absl::OkStatus();
                                   }),
              IsOk());
  EXPECT_EQ(firsts.size(), static_cast<size_t>((kN + 63) / 64));
  for (int64_t i = 0; i < kN; ++i) {
    if (i == 7) {
      EXPECT_TRUE(all[i].empty());
      continue;
    }
    const std::vector<float> v(rows_.begin() + i * kD, rows_.begin() + (i + 1) * kD);
    ExpectSameHits(all[i], BruteForce(rows_, kN, kD, v, 8, i));
  }
}

TEST_F(ExactIndexTest, HalfScanStaysWithinItsBound) {
  const Directions directions(dict_, DirectionKind::kDecoder);
  const std::vector<float> unit = directions.UnitRows();
  HalfRows half(unit, kN, kD);
  const std::vector<float> queries = testing::RandomRows(10, kD, 13);
  std::vector<float> scores(kN);
  for (int q = 0; q < 10; ++q) {
    const std::vector<float> v(queries.begin() + q * kD, queries.begin() + (q + 1) * kD);
    const std::vector<double> u = Unit(v);
    std::vector<float> uf(u.begin(), u.end());
    half.Score(uf.data(), scores.data());
    for (int64_t i = 0; i < kN; ++i) {
      EXPECT_LE(std::abs(scores[i] - directions.ExactCosine(u.data(), i)), half.ErrorBound());
    }
  }
}

TEST_F(ExactIndexTest, QueriesAreChecked) {
  std::vector<float> v(kD, 1.0f);
  EXPECT_THAT(UnitQuery(std::vector<float>(kD - 1, 1.0f), kD, "vector"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("23 components; expected 24")));
  v[3] = std::nanf("");
  EXPECT_THAT(UnitQuery(v, kD, "vector"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vector[3] is nan")));
  EXPECT_THAT(UnitQuery(std::vector<float>(kD, 0.0f), kD, "vector"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("zero vector")));
  EXPECT_THAT(UnitFeatureDirection(*dict_, DirectionKind::kDecoder, kN),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("700 is not below d_sae = 700")));
  EXPECT_THAT(UnitFeatureDirection(*dict_, DirectionKind::kDecoder, 7),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("direction is zero")));
  EXPECT_THAT(index_->Search({std::vector<double>(5, 0.1)}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("5 components; expected 24")));
  EXPECT_THAT(index_->Search({Unit(std::vector<float>(kD, 1.0f))}, {.top_n = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_n")));
}

TEST_F(ExactIndexTest, EncoderDirectionsAreTheColumnsOfWEnc) {
  // Make W_enc differ from W_dec^T: scale columns, which keeps their directions.
  auto dict = std::make_shared<engine::Dictionary>(*dict_);
  for (int64_t j = 0; j < kD; ++j) {
    for (int64_t i = 0; i < kN; ++i) dict->w_enc[j * kN + i] *= static_cast<float>(1 << (i % 3));
    dict->w_dec[j] = -dict->w_dec[j];  // and change the decoder row 0
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto encoder, FeatureIndex::Build(dict, DirectionKind::kEncoder, {}));
  const std::vector<float> v(rows_.begin(), rows_.begin() + kD);  // row 0's original direction
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto hits, encoder->Search({Unit(v)}, {.top_n = 5}));
  ExpectSameHits(hits[0], BruteForce(rows_, kN, kD, v, 5));
}

TEST(ApproximateIndexTest, RecallAtTenOfEachOfferedFactory) {
  constexpr int64_t kN = 4096, kD = 32;
  const std::vector<float> rows = testing::ClusteredRows(kN, kD, 64, 0.4f, 21);
  auto dict = testing::DirectionsDictionary(rows, kN, kD);
  const std::vector<float> queries = testing::ClusteredRows(200, kD, 64, 0.4f, 21);
  for (const std::string factory : {"IVF64,Flat", "HNSW32"}) {
    SCOPED_TRACE(factory);
    IndexConfig config;
    config.factory = factory;
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto index, FeatureIndex::Build(dict, DirectionKind::kDecoder, config));
    EXPECT_FALSE(index->exact());
    std::vector<std::vector<double>> unit;
    for (int q = 0; q < 200; ++q) {
      unit.push_back(Unit(std::vector<float>(queries.begin() + q * kD, queries.begin() + (q + 1) * kD)));
    }
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto hits, index->Search(unit, {.top_n = 10}));
    int64_t found = 0;
    for (int q = 0; q < 200; ++q) {
      const std::vector<float> v(queries.begin() + q * kD, queries.begin() + (q + 1) * kD);
      std::set<uint32_t> truth;
      for (const Hit& h : BruteForce(rows, kN, kD, v, 10)) truth.insert(h.feature);
      for (const Hit& h : hits[q]) {
        found += truth.count(h.feature);
        EXPECT_NEAR(h.cosine, Cosine64(rows.data() + h.feature * kD, v.data(), kD), 1e-12)
            << "scores are exact even when the set is approximate";
      }
    }
    const double recall = static_cast<double>(found) / (200 * 10);
    std::cout << factory << " recall@10 = " << recall << "\n";
    EXPECT_GE(recall, 0.95);
  }
}

TEST(FactoryTest, AutoIsFlatUpToTheLimitThenIvf) {
  IndexConfig config;
  EXPECT_EQ(ResolveFactory(config, 16384, 2304), "Flat");
  EXPECT_EQ(ResolveFactory(config, 262144, 768), "IVF1024,Flat");
  config.factory = "HNSW16";
  EXPECT_EQ(ResolveFactory(config, 10, 10), "HNSW16");
  config.factory = "NoSuchIndex12";
  auto dict = testing::DirectionsDictionary(testing::RandomRows(64, 8, 1), 64, 8);
  EXPECT_THAT(FeatureIndex::Build(dict, DirectionKind::kDecoder, config),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NoSuchIndex12")));
}

class PersistenceTest : public ExactIndexTest {
 protected:
  std::filesystem::path Prefix() { return scratch_.path() / "idx" / "d.decoder"; }
  testing::ScratchDir scratch_;
};

TEST_F(PersistenceTest, SavedIndexLoadsAndAnswersTheSame) {
  ASSERT_THAT(index_->Save(Prefix(), "sha-1"), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto loaded,
                               FeatureIndex::Load(Prefix(), dict_, DirectionKind::kDecoder, {}, "sha-1"));
  const std::vector<double> q = Unit(std::vector<float>(rows_.begin() + 3 * kD, rows_.begin() + 4 * kD));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto a, index_->Search({q}, {.top_n = 12}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto b, loaded->Search({q}, {.top_n = 12}));
  ExpectSameHits(b[0], a[0]);
}

TEST_F(PersistenceTest, MissingStaleAndDamagedFilesAreRefused) {
  EXPECT_THAT(FeatureIndex::Load(Prefix(), dict_, DirectionKind::kDecoder, {}, "sha-1"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
  ASSERT_THAT(index_->Save(Prefix(), "sha-1"), IsOk());
  EXPECT_THAT(FeatureIndex::Load(Prefix(), dict_, DirectionKind::kDecoder, {}, "sha-2"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("weights_sha256 is 'sha-1'")));
  EXPECT_THAT(FeatureIndex::Load(Prefix(), dict_, DirectionKind::kEncoder, {}, "sha-1"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("kind")));
  IndexConfig hnsw;
  hnsw.factory = "HNSW32";
  EXPECT_THAT(FeatureIndex::Load(Prefix(), dict_, DirectionKind::kDecoder, hnsw, "sha-1"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("factory")));
  // One flipped byte in the vectors: FAISS would read it; the checksum does not.
  const std::filesystem::path file = Prefix().string() + ".faiss";
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(file) - 10));
    f.put('\x7f');
  }
  EXPECT_THAT(FeatureIndex::Load(Prefix(), dict_, DirectionKind::kDecoder, {}, "sha-1"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("SHA-256")));
  // A truncated file whose manifest was rewritten to match: FAISS cannot read it.
  std::filesystem::resize_file(file, 40);
  ASSERT_THAT(index_->Save(scratch_.path() / "idx" / "other", "sha-1"), IsOk());
  std::ifstream manifest(scratch_.path() / "idx" / "other.manifest");
  std::string text((std::istreambuf_iterator<char>(manifest)), std::istreambuf_iterator<char>());
  const std::string sha = *FileSha256(file);
  text = text.substr(0, text.find("faiss_sha256 ")) + "faiss_sha256 " + sha + "\n";
  std::ofstream(Prefix().string() + ".manifest") << text;
  EXPECT_THAT(FeatureIndex::Load(Prefix(), dict_, DirectionKind::kDecoder, {}, "sha-1"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("FAISS")));
}

}  // namespace
}  // namespace saedict::index
