// compare::CompareDecoders: a dictionary against itself and against a
// permuted copy (the assignment recovers the permutation), extra features on
// either side, float64 rescoring of float32 near-ties, zero directions,
// block-size independence, progress / cancellation, the d_in check, and the
// stories260k cross-run reference (topk_l2_a vs topk_l2_b) when the shared
// data is present.
#include "compare/decoder_matching.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "formats/dictionary_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/index/index_test_util.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::compare {
namespace {

using ::saedict::testing::Cosine64;
using ::saedict::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

// A standard SAE with random W_dec (n x d), W_enc (d x n) and b_enc.
engine::Dictionary RandomDictionary(int64_t n, int64_t d, uint32_t seed) {
  engine::Dictionary dict;
  dict.config.d_in = d;
  dict.config.d_sae = n;
  dict.config.architecture = engine::Architecture::kStandard;
  dict.w_dec = testing::RandomRows(n, d, seed);
  dict.w_enc = testing::RandomRows(d, n, seed + 1);
  dict.b_enc = testing::RandomRows(1, n, seed + 2);
  dict.b_dec.assign(d, 0.0f);
  return dict;
}

// Feature perm[i] of the result is feature i of `dict` (W_dec rows, W_enc
// columns and b_enc moved together); `extra` fresh random features appended.
engine::Dictionary Permuted(const engine::Dictionary& dict, const std::vector<int64_t>& perm,
                            int64_t extra, uint32_t seed) {
  const int64_t n = dict.config.d_sae, d = dict.config.d_in, m = n + extra;
  engine::Dictionary out = RandomDictionary(m, d, seed);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = perm[i];
    std::copy_n(dict.w_dec.begin() + i * d, d, out.w_dec.begin() + p * d);
    for (int64_t j = 0; j < d; ++j) out.w_enc[j * m + p] = dict.w_enc[j * n + i];
    out.b_enc[p] = dict.b_enc[i];
  }
  EXPECT_TRUE(out.Validate().ok()) << out.Validate();
  return out;
}

std::vector<int64_t> RandomPermutation(int64_t n, int64_t range, uint32_t seed) {
  std::vector<int64_t> all(range);
  std::iota(all.begin(), all.end(), 0);
  std::mt19937 rng(seed);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(n);
  return all;
}

// The brute-force best partner of row i of `from` among the rows of `to`
// (float64 cosine, lower id on ties, zero rows never partners).
BestMatch BruteBest(const engine::Dictionary& from, int64_t i, const engine::Dictionary& to) {
  const int64_t d = from.config.d_in;
  BestMatch best;
  double best_cos = -2;
  for (int64_t j = 0; j < to.config.d_sae; ++j) {
    double norm = 0;
    for (int64_t k = 0; k < d; ++k) norm += double{to.w_dec[j * d + k]} * to.w_dec[j * d + k];
    if (norm == 0) continue;
    const double c = Cosine64(from.w_dec.data() + i * d, to.w_dec.data() + j * d, d);
    if (c > best_cos) {
      best_cos = c;
      best = {j, c};
    }
  }
  return best;
}

TEST(DecoderMatchingTest, ADictionaryMatchesItself) {
  const engine::Dictionary a = RandomDictionary(300, 32, 1);
  SAEDICT_ASSERT_OK_AND_ASSIGN(DecoderComparison c, CompareDecoders(a, a, {}));
  EXPECT_EQ(c.d_in, 32);
  EXPECT_EQ(c.size_a, 300);
  EXPECT_EQ(c.size_b, 300);
  EXPECT_NEAR(c.mmcs_a_to_b, 1.0, 1e-12);
  EXPECT_NEAR(c.mmcs_b_to_a, 1.0, 1e-12);
  EXPECT_EQ(c.frac_matched_a, 1.0);
  EXPECT_EQ(c.frac_matched_b, 1.0);
  ASSERT_TRUE(c.has_assignment);
  std::vector<int64_t> identity(300);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(c.assignment_a_to_b, identity);
  for (int64_t i = 0; i < 300; ++i) {
    EXPECT_EQ(c.a_to_b[i].partner, i);
    EXPECT_EQ(c.b_to_a[i].partner, i);
    EXPECT_NEAR(c.assignment_cosine[i], 1.0, 1e-12);
  }
  EXPECT_NEAR(c.assignment_mean, 1.0, 1e-12);
  EXPECT_TRUE(c.unmatched_a.empty());
  EXPECT_TRUE(c.unmatched_b.empty());
  EXPECT_GE(c.gemm_seconds, 0);
  EXPECT_GE(c.assignment_seconds, 0);
}

TEST(DecoderMatchingTest, AssignmentRecoversAPermutation) {
  constexpr int64_t kN = 700, kD = 48;
  const engine::Dictionary a = RandomDictionary(kN, kD, 3);
  const std::vector<int64_t> perm = RandomPermutation(kN, kN, 4);
  const engine::Dictionary b = Permuted(a, perm, 0, 5);
  SAEDICT_ASSERT_OK_AND_ASSIGN(DecoderComparison c, CompareDecoders(a, b, {}));
  EXPECT_EQ(c.assignment_a_to_b, perm);
  EXPECT_NEAR(c.assignment_mean, 1.0, 1e-12);
  EXPECT_NEAR(c.mmcs_a_to_b, 1.0, 1e-12);
  EXPECT_NEAR(c.mmcs_b_to_a, 1.0, 1e-12);
  for (int64_t i = 0; i < kN; ++i) {
    EXPECT_EQ(c.a_to_b[i].partner, perm[i]);
    EXPECT_EQ(c.b_to_a[perm[i]].partner, i);
  }
  EXPECT_TRUE(c.unmatched_a.empty());
  EXPECT_TRUE(c.unmatched_b.empty());
}

TEST(DecoderMatchingTest, ExtraFeaturesOnEitherSideAreUnmatched) {
  constexpr int64_t kN = 200, kExtra = 50, kD = 64;
  const engine::Dictionary a = RandomDictionary(kN, kD, 6);
  // B: A's features at perm (a subset of [0, 250)), fresh ones elsewhere.
  const std::vector<int64_t> perm = RandomPermutation(kN, kN + kExtra, 7);
  const engine::Dictionary b = Permuted(a, perm, kExtra, 8);
  std::vector<int64_t> fresh;
  for (int64_t j = 0; j < kN + kExtra; ++j) {
    if (std::find(perm.begin(), perm.end(), j) == perm.end()) fresh.push_back(j);
  }

  SAEDICT_ASSERT_OK_AND_ASSIGN(DecoderComparison ab, CompareDecoders(a, b, {}));
  EXPECT_EQ(ab.assignment_a_to_b, perm);
  EXPECT_TRUE(ab.unmatched_a.empty());
  EXPECT_EQ(ab.unmatched_b, fresh);  // random directions in 64-d: cosine far below 0.7
  EXPECT_NEAR(ab.mmcs_a_to_b, 1.0, 1e-12);
  EXPECT_EQ(ab.frac_matched_a, 1.0);
  EXPECT_NEAR(ab.frac_matched_b, double(kN) / (kN + kExtra), 1e-12);
  EXPECT_NEAR(ab.assignment_mean, 1.0, 1e-12);

  SAEDICT_ASSERT_OK_AND_ASSIGN(DecoderComparison ba, CompareDecoders(b, a, {}));
  ASSERT_EQ(ba.assignment_a_to_b.size(), static_cast<size_t>(kN + kExtra));
  for (int64_t i = 0; i < kN; ++i) EXPECT_EQ(ba.assignment_a_to_b[perm[i]], i);
  for (const int64_t j : fresh) {
    EXPECT_EQ(ba.assignment_a_to_b[j], -1);
    EXPECT_EQ(ba.assignment_cosine[j], 0.0);
  }
  EXPECT_EQ(ba.unmatched_a, fresh);
  EXPECT_TRUE(ba.unmatched_b.empty());
  EXPECT_NEAR(ba.assignment_mean, 1.0, 1e-12);  // over the kN assigned pairs only

  // Best partners equal brute force both ways, and the two directions agree.
  for (int64_t j = 0; j < kN + kExtra; ++j) {
    const BestMatch want = BruteBest(b, j, a);
    EXPECT_EQ(ab.b_to_a[j].partner, want.partner) << j;
    EXPECT_NEAR(ab.b_to_a[j].cosine, want.cosine, 1e-12) << j;
    EXPECT_EQ(ba.a_to_b[j].partner, want.partner) << j;
  }
}

TEST(DecoderMatchingTest, Float32NearTiesAreDecidedInFloat64) {
  constexpr int64_t kN = 40, kD = 256;
  engine::Dictionary a = RandomDictionary(kN, kD, 9);
  engine::Dictionary b = RandomDictionary(kN, kD, 10);
  // A's feature 0 = q. In B: feature 3 = q nudged (cosine 1 - ~1e-9, the
  // same as 1 in float32), feature 5 = 2q and feature 7 = q (cosine exactly
  // 1, a tie broken by the lower id).
  const float* q = a.w_dec.data();
  for (int64_t k = 0; k < kD; ++k) {
    b.w_dec[3 * kD + k] = q[k] + (k == 0 ? 1e-4f * std::abs(q[k]) + 1e-4f : 0.0f);
    b.w_dec[5 * kD + k] = 2 * q[k];
    b.w_dec[7 * kD + k] = q[k];
  }
  ASSERT_LT(Cosine64(q, b.w_dec.data() + 3 * kD, kD), 1.0);
  SAEDICT_ASSERT_OK_AND_ASSIGN(DecoderComparison c, CompareDecoders(a, b, {}));
  EXPECT_EQ(c.a_to_b[0].partner, 5);
  EXPECT_NEAR(c.a_to_b[0].cosine, 1.0, 1e-12);
  EXPECT_EQ(c.b_to_a[3].partner, 0);
  EXPECT_EQ(c.b_to_a[5].partner, 0);
  EXPECT_EQ(c.b_to_a[7].partner, 0);
  // Columns: A's feature 20 = r, 30 = 3r; B's feature 11 = r: the tie goes to 20.
  for (int64_t k = 0; k < kD; ++k) {
    a.w_dec[30 * kD + k] = 3 * a.w_dec[20 * kD + k];
    b.w_dec[11 * kD + k] = a.w_dec[20 * kD + k];
  }
  // A column whose float64 best is a later row that float32 cannot tell
  // from an earlier one: t = B's 13; A's 25 = t nudged, A's 35 = 2t.
  const float* t = b.w_dec.data() + 13 * kD;
  for (int64_t k = 0; k < kD; ++k) {
    a.w_dec[25 * kD + k] = t[k] + (k == 0 ? 1e-4f * std::abs(t[0]) + 1e-4f : 0.0f);
    a.w_dec[35 * kD + k] = 2 * t[k];
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(c, CompareDecoders(a, b, {}));
  EXPECT_EQ(c.b_to_a[11].partner, 20);
  EXPECT_EQ(c.a_to_b[20].partner, 11);
  EXPECT_EQ(c.a_to_b[30].partner, 11);
  EXPECT_EQ(c.b_to_a[13].partner, 35);
  EXPECT_NEAR(c.b_to_a[13].cosine, 1.0, 1e-12);
  EXPECT_EQ(c.a_to_b[25].partner, 13);
  EXPECT_EQ(c.a_to_b[35].partner, 13);
}

TEST(DecoderMatchingTest, ThresholdIsInclusive) {
  // cos((1, 0), (3, 4)) = 3 / 5: exactly the double 0.6.
  engine::Dictionary a = RandomDictionary(1, 2, 17), b = RandomDictionary(1, 2, 18);
  a.w_dec = {1, 0};
  b.w_dec = {3, 4};
  SAEDICT_ASSERT_OK_AND_ASSIGN(DecoderComparison c,
                               CompareDecoders(a, b, {.match_threshold = 0.6}));
  EXPECT_EQ(c.a_to_b[0].cosine, 0.6);
  EXPECT_EQ(c.frac_matched_a, 1.0);
  EXPECT_EQ(c.frac_matched_b, 1.0);
  EXPECT_TRUE(c.unmatched_a.empty());
  EXPECT_TRUE(c.unmatched_b.empty());
  SAEDICT_ASSERT_OK_AND_ASSIGN(c, CompareDecoders(a, b, {.match_threshold = 0.6000001}));
  EXPECT_EQ(c.frac_matched_a, 0.0);
  EXPECT_EQ(c.unmatched_a, (std::vector<int64_t>{0}));
  EXPECT_EQ(c.unmatched_b, (std::vector<int64_t>{0}));
}

TEST(DecoderMatchingTest, AZeroDirectionIsNoPartnerEvenWhenAllCosinesAreNegative) {
  // A = {v}; B = {zero, -v}: the best partner is -v at cosine -1, not the
  // zero direction's 0.
  engine::Dictionary a = RandomDictionary(1, 3, 19), b = RandomDictionary(2, 3, 20);
  a.w_dec = {1, 2, 2};
  b.w_dec = {0, 0, 0, -1, -2, -2};
  SAEDICT_ASSERT_OK_AND_ASSIGN(DecoderComparison c, CompareDecoders(a, b, {}));
  EXPECT_EQ(c.a_to_b[0].partner, 1);
  EXPECT_NEAR(c.a_to_b[0].cosine, -1.0, 1e-15);
  EXPECT_EQ(c.b_to_a[0].partner, -1);
  EXPECT_EQ(c.b_to_a[1].partner, 0);
  EXPECT_NEAR(c.mmcs_a_to_b, -1.0, 1e-15);
  EXPECT_NEAR(c.mmcs_b_to_a, -0.5, 1e-15);  // the zero direction counts as 0
  EXPECT_EQ(c.assignment_a_to_b, (std::vector<int64_t>{0}));  // 0 > -1: the zero pair
  EXPECT_EQ(c.assignment_cosine, (std::vector<double>{0.0}));
  // Even at a threshold below every cosine, nothing is matched to a zero
  // direction.
  SAEDICT_ASSERT_OK_AND_ASSIGN(c, CompareDecoders(a, b, {.match_threshold = -2}));
  EXPECT_EQ(c.frac_matched_a, 1.0);
  EXPECT_EQ(c.frac_matched_b, 0.5);
  EXPECT_EQ(c.unmatched_a, (std::vector<int64_t>{0}));
  EXPECT_EQ(c.unmatched_b, (std::vector<int64_t>{0, 1}));
}

TEST(DecoderMatchingTest, ZeroDirectionsHaveNoPartnerAndCountAsZero) {
  constexpr int64_t kN = 30, kD = 16;
  engine::Dictionary a = RandomDictionary(kN, kD, 11);
  engine::Dictionary b = a;
  // A's feature 4 is zero; B's feature 9 is zero, and A's feature 9 (its
  // copy's original) points away from every other B feature's direction is
  // irrelevant: a zero direction is never a partner.
  std::fill_n(a.w_dec.begin() + 4 * kD, kD, 0.0f);
  std::fill_n(b.w_dec.begin() + 9 * kD, kD, 0.0f);
  SAEDICT_ASSERT_OK_AND_ASSIGN(DecoderComparison c, CompareDecoders(a, b, {}));
  EXPECT_EQ(c.a_to_b[4].partner, -1);
  EXPECT_EQ(c.a_to_b[4].cosine, 0.0);
  EXPECT_EQ(c.b_to_a[9].partner, -1);
  EXPECT_EQ(c.b_to_a[9].cosine, 0.0);
  for (int64_t i = 0; i < kN; ++i) {
    EXPECT_NE(c.a_to_b[i].partner, 9) << i;
    EXPECT_NE(c.b_to_a[i].partner, 4) << i;
  }
  // 28 features of A match themselves (cosine 1); 4 and 9 do not.
  double sum_a = 0;
  for (const BestMatch& m : c.a_to_b) sum_a += m.cosine;
  EXPECT_NEAR(c.mmcs_a_to_b, sum_a / kN, 1e-15);
  EXPECT_LT(c.mmcs_a_to_b, (kN - 1.0) / kN);
  EXPECT_NEAR(c.frac_matched_a, (kN - 2.0) / kN, 1e-15);
  EXPECT_NEAR(c.frac_matched_b, (kN - 2.0) / kN, 1e-15);
  ASSERT_TRUE(c.has_assignment);
  EXPECT_EQ(c.assignment_a_to_b[0], 0);
  EXPECT_EQ(c.assignment_cosine[4], 0.0);
  EXPECT_THAT(c.unmatched_a, ::testing::Contains(4));
  EXPECT_THAT(c.unmatched_b, ::testing::Contains(9));
}

TEST(DecoderMatchingTest, ResultsDoNotDependOnTheBlockSize) {
  const engine::Dictionary a = RandomDictionary(130, 24, 12);
  const engine::Dictionary b = RandomDictionary(110, 24, 13);
  SAEDICT_ASSERT_OK_AND_ASSIGN(DecoderComparison big, CompareDecoders(a, b, {}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(DecoderComparison small,
                               CompareDecoders(a, b, {.block_rows = 7}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(DecoderComparison best_only,
                               CompareDecoders(a, b, {.one_to_one = false, .block_rows = 3}));
  for (const DecoderComparison* c : {&small, &best_only}) {
    for (int64_t i = 0; i < 130; ++i) {
      EXPECT_EQ(c->a_to_b[i].partner, big.a_to_b[i].partner);
      EXPECT_EQ(c->a_to_b[i].cosine, big.a_to_b[i].cosine);
      EXPECT_EQ(c->a_to_b[i].partner, BruteBest(a, i, b).partner);
    }
    for (int64_t j = 0; j < 110; ++j) {
      EXPECT_EQ(c->b_to_a[j].partner, big.b_to_a[j].partner);
      EXPECT_EQ(c->b_to_a[j].partner, BruteBest(b, j, a).partner);
    }
    EXPECT_EQ(c->mmcs_a_to_b, big.mmcs_a_to_b);
    EXPECT_EQ(c->mmcs_b_to_a, big.mmcs_b_to_a);
  }
  EXPECT_EQ(small.assignment_a_to_b, big.assignment_a_to_b);
  EXPECT_FALSE(best_only.has_assignment);
  EXPECT_TRUE(best_only.assignment_a_to_b.empty());
  EXPECT_EQ(best_only.assignment_seconds, 0);
  // 130 > 110: 20 features of A stay unassigned.
  EXPECT_EQ(std::count(big.assignment_a_to_b.begin(), big.assignment_a_to_b.end(), -1), 20);
}

TEST(DecoderMatchingTest, ReportsProgressAndCancels) {
  const engine::Dictionary a = RandomDictionary(100, 16, 14);
  std::vector<std::pair<std::string, double>> seen;
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      DecoderComparison c,
      CompareDecoders(a, a, {.block_rows = 40},
                      [&](const char* phase, double f) { seen.emplace_back(phase, f); }));
  EXPECT_THAT(seen, ::testing::ElementsAre(std::pair<std::string, double>{"gemm", 0.4},
                                           std::pair<std::string, double>{"gemm", 0.8},
                                           std::pair<std::string, double>{"gemm", 1.0},
                                           std::pair<std::string, double>{"assignment", 0.0},
                                           std::pair<std::string, double>{"assignment", 1.0}));
  EXPECT_THAT(CompareDecoders(a, a, {}, nullptr, [] { return true; }),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  // Cancelled after the GEMM: the assignment's own poll.
  int polls = 0;
  EXPECT_THAT(CompareDecoders(a, a, {.block_rows = 50}, nullptr, [&] { return ++polls > 2; }),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("assignment")));
}

TEST(DecoderMatchingTest, RejectsDifferentDInAndBadOptions) {
  const engine::Dictionary a = RandomDictionary(10, 64, 15);
  const engine::Dictionary b = RandomDictionary(10, 128, 16);
  EXPECT_THAT(CompareDecoders(a, b, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("decoder rows of the same width"),
                             HasSubstr("A has d_in 64"), HasSubstr("B has d_in 128"),
                             HasSubstr("activation method"))));
  // A transcoder's decoder rows are d_out wide: comparable with an SAE of d_in = d_out.
  engine::Dictionary tc = RandomDictionary(10, 32, 17);
  tc.config.d_out = 64;
  tc.config.apply_b_dec_to_input = false;
  tc.w_dec = a.w_dec;
  tc.b_dec = a.b_dec;
  ASSERT_THAT(tc.Validate(), testing::IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(DecoderComparison same, CompareDecoders(tc, a, {}));
  EXPECT_EQ(same.d_in, 64);
  for (const auto& m : same.a_to_b) EXPECT_NEAR(m.cosine, 1.0, 1e-6);
  EXPECT_THAT(CompareDecoders(tc, b, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("A has d_out 64")));
  EXPECT_THAT(CompareDecoders(a, a, {.block_rows = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("block_rows")));
  EXPECT_THAT(CompareDecoders(a, a, {.match_threshold = std::nan("")}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("match_threshold")));
  engine::Dictionary short_dec = a;
  short_dec.w_dec.pop_back();
  EXPECT_THAT(CompareDecoders(a, short_dec, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dictionary B: W_dec")));
}

TEST(DecoderMatchingTest, Stories260kCrossRunReference) {
  SAEDICT_REQUIRE_STORIES260K(data);
  SAEDICT_ASSERT_OK_AND_ASSIGN(formats::LoadedDictionary a,
                               formats::LoadDictionary(data / "topk_l2_a"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(formats::LoadedDictionary b,
                               formats::LoadDictionary(data / "topk_l2_b"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(DecoderComparison c,
                               CompareDecoders(a.dictionary, b.dictionary, {}));
  // reference/metrics.json "cross_run_topk_l2_a_vs_b", computed in float64:
  // with the float64 rescoring the mean agrees to rounding (~1e-16 seen),
  // so the bound is far tighter than the 1e-3 a float32 result would need.
  EXPECT_NEAR(c.mmcs_a_to_b, 0.4740634451334671, 1e-9);
  EXPECT_NEAR(c.frac_matched_a, 0.0234375, 1e-12);  // 12 of 512
  std::printf("[stories260k] topk_l2_a vs b: mmcs %.16f (reference 0.4740634451334671), "
              "frac >= 0.7 %.7f (reference 0.0234375), b->a mmcs %.6f, hungarian mean %.6f\n",
              c.mmcs_a_to_b, c.frac_matched_a, c.mmcs_b_to_a, c.assignment_mean);
  // The assignment is one-to-one over all 512 and its mean cannot beat the
  // best-partner mean.
  ASSERT_TRUE(c.has_assignment);
  std::vector<int64_t> sorted = c.assignment_a_to_b;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> all(512);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(sorted, all);
  EXPECT_LE(c.assignment_mean, c.mmcs_a_to_b + 1e-12);
}

}  // namespace
}  // namespace saedict::compare
