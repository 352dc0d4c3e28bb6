// compare::CompareActivations against a brute-force dense Pearson computation
// (dead features, a best partner that never co-fires, ties, several passes
// under a small memory budget), on a planted relabelled-and-scaled copy, and
// on its error paths; compare::Svcca against a direct float64 computation
// (centre, PCA, QR, Jacobi) and on identical, independent and linearly mixed
// data.
#include "compare/activation_matching.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "compare/svcca.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"
#include "util/status_macros.h"

namespace saedict::compare {
namespace {

using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;
using ::testing::HasSubstr;

// A shared corpus: per token, A's and B's sparse rows.
struct Corpus {
  int64_t size_a = 0, size_b = 0;
  std::vector<std::vector<uint32_t>> a_idx, b_idx;
  std::vector<std::vector<float>> a_val, b_val;

  int64_t tokens() const { return static_cast<int64_t>(a_idx.size()); }
  void Add(const std::map<uint32_t, float>& a, const std::map<uint32_t, float>& b) {
    a_idx.emplace_back();
    a_val.emplace_back();
    b_idx.emplace_back();
    b_val.emplace_back();
    for (const auto& [i, v] : a) a_idx.back().push_back(i), a_val.back().push_back(v);
    for (const auto& [j, v] : b) b_idx.back().push_back(j), b_val.back().push_back(v);
  }
  // Counts its calls in *calls when given.
  TokenPairSource Source(int* calls = nullptr) const {
    return [this, calls](const TokenPairVisitor& visit) -> absl::Status {
      if (calls != nullptr) ++*calls;
      for (int64_t t = 0; t < tokens(); ++t) {
        SAEDICT_RETURN_IF_ERROR(visit({a_idx[t], a_val[t]}, {b_idx[t], b_val[t]}));
      }
      return absl::OkStatus();
    };
  }
};

// T x n dense float64 activations of one side.
std::vector<double> Densify(const std::vector<std::vector<uint32_t>>& idx,
                            const std::vector<std::vector<float>>& val, int64_t n) {
  std::vector<double> x(idx.size() * n, 0.0);
  for (size_t t = 0; t < idx.size(); ++t) {
    for (size_t k = 0; k < idx[t].size(); ++k) x[t * n + idx[t][k]] = val[t][k];
  }
  return x;
}

// Pearson correlations by the textbook formula on the dense corpus.
struct DenseReference {
  std::vector<double> corr;  // size_a x size_b; NaN when either side is dead
  std::vector<CorrelationMatch> a_to_b, b_to_a;
  std::vector<bool> co_active;  // size_a x size_b
};

DenseReference BruteForce(const Corpus& c) {
  const int64_t t = c.tokens(), na = c.size_a, nb = c.size_b;
  const std::vector<double> xa = Densify(c.a_idx, c.a_val, na), xb = Densify(c.b_idx, c.b_val, nb);
  auto centre = [t](std::vector<double> x, int64_t n, std::vector<double>* sd) {
    sd->assign(n, 0.0);
    for (int64_t f = 0; f < n; ++f) {
      double mean = 0;
      for (int64_t r = 0; r < t; ++r) mean += x[r * n + f];
      mean /= t;
      for (int64_t r = 0; r < t; ++r) {
        x[r * n + f] -= mean;
        (*sd)[f] += x[r * n + f] * x[r * n + f];
      }
      (*sd)[f] = std::sqrt((*sd)[f]);
    }
    return x;
  };
  std::vector<double> sda, sdb;
  const std::vector<double> ca = centre(xa, na, &sda), cb = centre(xb, nb, &sdb);
  DenseReference ref;
  ref.corr.assign(na * nb, std::nan(""));
  ref.co_active.assign(na * nb, false);
  ref.a_to_b.assign(na, {});
  ref.b_to_a.assign(nb, {});
  for (int64_t i = 0; i < na; ++i) {
    for (int64_t j = 0; j < nb; ++j) {
      double cov = 0;
      for (int64_t r = 0; r < t; ++r) {
        cov += ca[r * na + i] * cb[r * nb + j];
        if (xa[r * na + i] != 0 && xb[r * nb + j] != 0) ref.co_active[i * nb + j] = true;
      }
      if (sda[i] == 0 || sdb[j] == 0) continue;
      const double v = cov / (sda[i] * sdb[j]);
      ref.corr[i * nb + j] = v;
      if (ref.a_to_b[i].partner < 0 || v > ref.a_to_b[i].correlation) ref.a_to_b[i] = {j, v};
      if (ref.b_to_a[j].partner < 0 || v > ref.b_to_a[j].correlation) ref.b_to_a[j] = {i, v};
    }
  }
  return ref;
}

// 20 x 30 features over 500 tokens, with planted structure:
//   A3 and B27 never fire; A8 is a copy of A7 and B11 of B10 (exact ties);
//   B_j (j < 20) is a noisy copy of A_j; A5 fires on every tenth token,
//   where only B20..B26 fire, rarely (they fire on a fifth of the other
//   tokens), so each B feature that co-fires with A5 is anti-correlated with
//   it; among those that never do, the rarest, B28 (5 tokens), is the least
//   anti-correlated: A5's best partner is B28, never co-active.
Corpus MakeRandomCorpus() {
  Corpus c;
  c.size_a = 20;
  c.size_b = 30;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1), value(0.2, 2.0), noise(0, 0.3);
  const std::vector<int> b28_tokens = {11, 57, 123, 301, 477};
  for (int t = 0; t < 500; ++t) {
    std::map<uint32_t, float> a, b;
    for (uint32_t i = 0; i < 20; ++i) {
      if (i == 3 || i == 5 || i == 8) continue;
      if (u(rng) < 0.15) a[i] = static_cast<float>(value(rng));
    }
    if (a.count(7)) a[8] = a[7];
    const bool a5 = t % 10 == 0;
    if (a5) {
      a[5] = 1.0f;
      for (uint32_t j = 20; j < 27; ++j) {
        if (u(rng) < 0.03) b[j] = static_cast<float>(value(rng));
      }
    } else {
      for (uint32_t j = 0; j < 20; ++j) {
        if (j == 11) continue;
        if (a.count(j) && u(rng) < 0.8) {
          b[j] = static_cast<float>(1.5 * a[j] + noise(rng));
        } else if (u(rng) < 0.05) {
          b[j] = static_cast<float>(value(rng));
        }
      }
      for (uint32_t j = 20; j < 27; ++j) {
        if (u(rng) < 0.2) b[j] = static_cast<float>(value(rng));
      }
      if (std::count(b28_tokens.begin(), b28_tokens.end(), t)) b[28] = 1.0f;
      if (t % 25 == 1) b[29] = static_cast<float>(value(rng));
    }
    if (b.count(10)) b[11] = b[10];
    c.Add(a, b);
  }
  return c;
}

void ExpectMatchesReference(const std::vector<CorrelationMatch>& got,
                            const std::vector<CorrelationMatch>& want, const char* side) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t f = 0; f < got.size(); ++f) {
    EXPECT_EQ(got[f].partner, want[f].partner) << side << " feature " << f;
    EXPECT_NEAR(got[f].correlation, want[f].correlation, 1e-9) << side << " feature " << f;
  }
}

TEST(CompareActivationsTest, CorrelationsMatchDensePearson) {
  const Corpus corpus = MakeRandomCorpus();
  const DenseReference ref = BruteForce(corpus);
  int calls = 0;
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      const ActivationComparison got,
      CompareActivations(corpus.Source(&calls), corpus.size_a, corpus.size_b, {}));
  EXPECT_EQ(got.tokens, 500);
  EXPECT_EQ(got.passes, 2);  // everything fits one block, then SVCCA
  EXPECT_EQ(calls, 2);
  ExpectMatchesReference(got.a_to_b, ref.a_to_b, "A");
  ExpectMatchesReference(got.b_to_a, ref.b_to_a, "B");

  // Dead features: no partner, not counted.
  EXPECT_EQ(got.a_to_b[3].partner, -1);
  EXPECT_EQ(got.b_to_a[27].partner, -1);
  EXPECT_EQ(got.alive_a, 19);
  EXPECT_EQ(got.alive_b, 29);
  // A5's best partner never co-fires with it and every co-active one is worse.
  EXPECT_EQ(got.a_to_b[5].partner, 28);
  EXPECT_LT(got.a_to_b[5].correlation, 0);
  EXPECT_FALSE(ref.co_active[5 * 30 + 28]);
  for (int j = 0; j < 30; ++j) {
    if (ref.co_active[5 * 30 + j]) {
      EXPECT_LT(ref.corr[5 * 30 + j], got.a_to_b[5].correlation) << j;
    }
  }
  // Exact ties go to the lower id.
  EXPECT_EQ(got.b_to_a[7].partner, 7);
  EXPECT_EQ(got.b_to_a[8].partner, 7);
  EXPECT_EQ(got.a_to_b[10].partner, 10);

  // The summary numbers from the reference.
  double sum = 0;
  int matched = 0, alive = 0;
  for (int i = 0; i < 20; ++i) {
    if (ref.a_to_b[i].partner < 0) continue;
    ++alive;
    sum += ref.a_to_b[i].correlation;
    matched += ref.a_to_b[i].correlation >= 0.7;
  }
  EXPECT_NEAR(got.mean_max_corr_a_to_b, sum / alive, 1e-9);
  EXPECT_DOUBLE_EQ(got.frac_matched_a, static_cast<double>(matched) / alive);
  EXPECT_GT(matched, 5);
  EXPECT_EQ(got.svcca_pairs, matched);
  EXPECT_GT(got.svcca, 0.5);
  EXPECT_TRUE(std::is_sorted(got.svcca_correlations.rbegin(), got.svcca_correlations.rend()));
}

TEST(CompareActivationsTest, SmallMemoryBudgetGivesTheSameAnswerInMorePasses) {
  const Corpus corpus = MakeRandomCorpus();
  SAEDICT_ASSERT_OK_AND_ASSIGN(const ActivationComparison one,
                               CompareActivations(corpus.Source(), 20, 30, {}));
  // Four A rows per block: rows 0-3 with all 30 columns on the first pass,
  // then the other 16 alive A features against the 29 alive B features,
  // 4 at a time (A7 and A8, tied, land in different blocks).
  int calls = 0;
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      const ActivationComparison many,
      CompareActivations(corpus.Source(&calls), 20, 30, {.memory_budget_bytes = 8 * 30 * 4}));
  EXPECT_EQ(many.passes, 1 + 4 + 1);
  EXPECT_EQ(calls, many.passes);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(many.a_to_b[i].partner, one.a_to_b[i].partner) << i;
    EXPECT_EQ(many.a_to_b[i].correlation, one.a_to_b[i].correlation) << i;
  }
  for (int j = 0; j < 30; ++j) {
    EXPECT_EQ(many.b_to_a[j].partner, one.b_to_a[j].partner) << j;
    EXPECT_EQ(many.b_to_a[j].correlation, one.b_to_a[j].correlation) << j;
  }
  EXPECT_EQ(many.b_to_a[7].partner, 7);
  EXPECT_EQ(many.svcca, one.svcca);
}

// B is A relabelled by a permutation and scaled by 2.5: the same features
// of (say) another model whose decoders live in an unrelated basis or d_in,
// so decoder cosine matching cannot pair them; their activations can.
TEST(CompareActivationsTest, RecoversARelabelledScaledCopy) {
  constexpr int kN = 64;
  std::mt19937_64 rng(11);
  std::vector<uint32_t> perm(kN);
  std::iota(perm.begin(), perm.end(), 0u);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::uniform_real_distribution<double> u(0, 1), value(0.1, 3.0);
  Corpus corpus;
  corpus.size_a = corpus.size_b = kN;
  for (int t = 0; t < 3000; ++t) {
    std::map<uint32_t, float> a, b;
    for (uint32_t i = 0; i < kN; ++i) {
      if (u(rng) < 0.05) a[i] = static_cast<float>(value(rng));
    }
    for (const auto& [i, v] : a) b[perm[i]] = v * 2.5f;
    corpus.Add(a, b);
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(const ActivationComparison got,
                               CompareActivations(corpus.Source(), kN, kN, {}));
  for (int i = 0; i < kN; ++i) {
    EXPECT_EQ(got.a_to_b[i].partner, perm[i]) << i;
    EXPECT_NEAR(got.a_to_b[i].correlation, 1.0, 1e-9) << i;
    EXPECT_EQ(got.b_to_a[perm[i]].partner, i) << i;
  }
  EXPECT_DOUBLE_EQ(got.frac_matched_a, 1.0);
  EXPECT_DOUBLE_EQ(got.frac_matched_b, 1.0);
  EXPECT_NEAR(got.mean_max_corr_a_to_b, 1.0, 1e-9);
  EXPECT_EQ(got.svcca_pairs, kN);
  EXPECT_EQ(got.svcca_dims_a, got.svcca_dims_b);
  EXPECT_NEAR(got.svcca, 1.0, 1e-6);
}

TEST(CompareActivationsTest, SvccaCapsThePairsAtTheBestCorrelated) {
  const Corpus corpus = MakeRandomCorpus();
  SAEDICT_ASSERT_OK_AND_ASSIGN(const ActivationComparison all,
                               CompareActivations(corpus.Source(), 20, 30, {}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(const ActivationComparison capped,
                               CompareActivations(corpus.Source(), 20, 30, {.svcca_max_pairs = 1}));
  ASSERT_GT(all.svcca_pairs, 1);
  EXPECT_EQ(capped.svcca_pairs, 1);
  // One pair: its single canonical correlation is |corr| of the best pair.
  double best = -1;
  for (const CorrelationMatch& m : all.a_to_b) best = std::max(best, m.correlation);
  ASSERT_EQ(capped.svcca_correlations.size(), 1u);
  EXPECT_NEAR(capped.svcca, best, 1e-9);
  SAEDICT_ASSERT_OK_AND_ASSIGN(const ActivationComparison none,
                               CompareActivations(corpus.Source(), 20, 30, {.svcca_max_pairs = 0}));
  EXPECT_EQ(none.svcca_pairs, 0);
  EXPECT_EQ(none.passes, 1);
}

// Two dictionaries with independent codes: nothing matches, and SVCCA over
// the (spurious) best partners of every feature stays low.
TEST(CompareActivationsTest, IndependentDictionariesScoreLow) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0, 1), value(0.1, 2.0);
  Corpus corpus;
  corpus.size_a = corpus.size_b = 16;
  for (int t = 0; t < 20000; ++t) {
    std::map<uint32_t, float> a, b;
    for (uint32_t i = 0; i < 16; ++i) {
      if (u(rng) < 0.2) a[i] = static_cast<float>(value(rng));
      if (u(rng) < 0.2) b[i] = static_cast<float>(value(rng));
    }
    corpus.Add(a, b);
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(const ActivationComparison strict,
                               CompareActivations(corpus.Source(), 16, 16, {}));
  EXPECT_EQ(strict.frac_matched_a, 0);
  EXPECT_EQ(strict.svcca_pairs, 0);
  EXPECT_LT(strict.mean_max_corr_a_to_b, 0.1);
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      const ActivationComparison all,
      CompareActivations(corpus.Source(), 16, 16, {.match_threshold = -1}));
  EXPECT_EQ(all.svcca_pairs, 16);
  EXPECT_LT(all.svcca, 0.3);
}

// Dense signed tokens with B = A R, R invertible and near 2 I so that every
// A feature's best partner is its own B column: the matched sets span the
// same space and SVCCA (keeping all variance) is 1.
TEST(CompareActivationsTest, LinearlyMixedDenseCopyHasSvccaOne) {
  constexpr int kN = 8;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> g(0, 1);
  std::vector<double> r(kN * kN);
  for (int i = 0; i < kN; ++i) {
    for (int j = 0; j < kN; ++j) r[i * kN + j] = (i == j ? 2.0 : 0.0) + 0.3 * g(rng);
  }
  Corpus corpus;
  corpus.size_a = corpus.size_b = kN;
  for (int t = 0; t < 4000; ++t) {
    std::vector<double> x(kN);
    for (double& v : x) v = g(rng);
    std::map<uint32_t, float> a, b;
    for (int j = 0; j < kN; ++j) {
      double y = 0;
      for (int i = 0; i < kN; ++i) y += x[i] * r[i * kN + j];
      a[j] = static_cast<float>(x[j]);
      b[j] = static_cast<float>(y);
    }
    corpus.Add(a, b);
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      const ActivationComparison got,
      CompareActivations(corpus.Source(), kN, kN,
                         {.match_threshold = -1, .svcca_variance_kept = 1.0}));
  for (int i = 0; i < kN; ++i) EXPECT_EQ(got.a_to_b[i].partner, i);
  EXPECT_EQ(got.svcca_pairs, kN);
  EXPECT_EQ(got.svcca_dims_a, kN);
  EXPECT_EQ(got.svcca_dims_b, kN);
  EXPECT_NEAR(got.svcca, 1.0, 1e-5);          // float32 rounding of the stored B values
  EXPECT_LT(got.mean_max_corr_a_to_b, 0.99);  // while no single pair is a copy
}

TEST(CompareActivationsTest, ReportsProgressPerPhase) {
  const Corpus corpus = MakeRandomCorpus();
  std::map<std::string, std::vector<double>> seen;
  ASSERT_THAT(CompareActivations(corpus.Source(), 20, 30, {.memory_budget_bytes = 8 * 30 * 4},
                                 [&](const char* phase, double f) { seen[phase].push_back(f); })
                  .status(),
              IsOk());
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& [phase, fractions] : seen) {
    EXPECT_TRUE(std::is_sorted(fractions.begin(), fractions.end())) << phase;
    EXPECT_EQ(fractions.front(), 0) << phase;
    EXPECT_DOUBLE_EQ(fractions.back(), 1) << phase;
  }
}

// --- error paths -------------------------------------------------------------

// A source of `tokens` copies of one row pair, then `bad` at token `at`.
TokenPairSource OneBadRow(SparseRowView bad_a, SparseRowView bad_b, int at) {
  return [=](const TokenPairVisitor& visit) -> absl::Status {
    static const std::vector<uint32_t> idx = {1, 4};
    static const std::vector<float> val = {1.0f, 2.0f};
    for (int t = 0; t < 10; ++t) {
      const SparseRowView good{idx, val};
      SAEDICT_RETURN_IF_ERROR(t == at ? visit(bad_a, bad_b) : visit(good, good));
    }
    return absl::OkStatus();
  };
}

TEST(CompareActivationsErrorsTest, RejectsMalformedRowsNamingTokenAndSide) {
  const std::vector<uint32_t> good_idx = {1, 4}, unsorted = {5, 2}, too_big = {3, 30};
  const std::vector<float> good_val = {1.0f, 2.0f}, one_val = {1.0f},
                           nan_val = {1.0f, std::nanf("")},
                           inf_val = {std::numeric_limits<float>::infinity(), 1.0f};
  const SparseRowView good{good_idx, good_val};
  EXPECT_THAT(CompareActivations(OneBadRow(good, {good_idx, one_val}, 3), 20, 30, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("token 3: side B row has 2 indices but 1 values")));
  EXPECT_THAT(
      CompareActivations(OneBadRow({unsorted, good_val}, good, 1), 20, 30, {}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("token 1: side A: feature indices not strictly ascending (2 after 5)")));
  EXPECT_THAT(CompareActivations(OneBadRow(good, {too_big, good_val}, 0), 20, 30, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("token 0: side B: feature index 30 >= size_b 30")));
  EXPECT_THAT(CompareActivations(OneBadRow({good_idx, nan_val}, good, 9), 20, 30, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("token 9: side A: feature 4 has value nan")));
  EXPECT_THAT(CompareActivations(OneBadRow(good, {good_idx, inf_val}, 2), 20, 30, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("token 2: side B: feature 1 has value inf")));
}

TEST(CompareActivationsErrorsTest, NoTokensIsAFailedPrecondition) {
  const TokenPairSource empty = [](const TokenPairVisitor&) { return absl::OkStatus(); };
  EXPECT_THAT(CompareActivations(empty, 20, 30, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no shared tokens")));
}

TEST(CompareActivationsErrorsTest, CancellationStopsThePass) {
  Corpus corpus;
  corpus.size_a = corpus.size_b = 4;
  for (int t = 0; t < 20000; ++t) corpus.Add({{0, 1.0f}}, {{1, 1.0f}});
  int polls = 0;
  int64_t visited = 0;
  const TokenPairSource counting = [&](const TokenPairVisitor& visit) -> absl::Status {
    return corpus.Source()([&](const SparseRowView& a, const SparseRowView& b) {
      ++visited;
      return visit(a, b);
    });
  };
  // The first poll is before the first pass; the second, 4096 tokens in, cancels.
  EXPECT_THAT(CompareActivations(counting, 4, 4, {}, nullptr, [&] { return ++polls >= 2; }),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  EXPECT_EQ(polls, 2);
  EXPECT_LT(visited, 5000);
  // A source that ignores what visit returns still ends CANCELLED.
  const TokenPairSource deaf = [&](const TokenPairVisitor& visit) {
    for (int64_t t = 0; t < corpus.tokens(); ++t) {
      (void)visit({corpus.a_idx[t], corpus.a_val[t]}, {corpus.b_idx[t], corpus.b_val[t]});
    }
    return absl::OkStatus();
  };
  EXPECT_THAT(CompareActivations(deaf, 4, 4, {}, nullptr, [] { return true; }),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
}

TEST(CompareActivationsErrorsTest, SourceErrorsAndChangingSourcesAreReported) {
  const TokenPairSource failing = [](const TokenPairVisitor&) {
    return absl::DataLossError("corrupt document 7");
  };
  EXPECT_THAT(CompareActivations(failing, 4, 4, {}),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("document 7")));
  // A source that loses a token after the first pass.
  const Corpus corpus = MakeRandomCorpus();
  int calls = 0;
  const TokenPairSource shrinking = [&](const TokenPairVisitor& visit) -> absl::Status {
    const int64_t n = corpus.tokens() - (calls++ > 0 ? 1 : 0);
    for (int64_t t = 0; t < n; ++t) {
      SAEDICT_RETURN_IF_ERROR(
          visit({corpus.a_idx[t], corpus.a_val[t]}, {corpus.b_idx[t], corpus.b_val[t]}));
    }
    return absl::OkStatus();
  };
  EXPECT_THAT(CompareActivations(shrinking, 20, 30, {.memory_budget_bytes = 8 * 30 * 4}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("yielded 499 tokens on pass 2, 500 on the first")));
}

TEST(CompareActivationsErrorsTest, RejectsBadSizesAndOptions) {
  const Corpus corpus = MakeRandomCorpus();
  EXPECT_THAT(CompareActivations(corpus.Source(), 0, 30, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("size_a = 0")));
  EXPECT_THAT(CompareActivations(corpus.Source(), 20, 30, {.memory_budget_bytes = 100}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("memory_budget_bytes 100")));
  EXPECT_THAT(CompareActivations(corpus.Source(), 20, 30, {.match_threshold = 1.5}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("match_threshold")));
  EXPECT_THAT(CompareActivations(corpus.Source(), 20, 30, {.svcca_max_pairs = -1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("svcca_max_pairs")));
  EXPECT_THAT(CompareActivations(corpus.Source(), 20, 30, {.svcca_variance_kept = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("svcca_variance_kept")));
}

// --- SVCCA alone ---------------------------------------------------------------

// Cyclic Jacobi eigen-decomposition of a small symmetric matrix: values
// descending, vectors[r * n + c] the r-th entry of the c-th vector.
void Jacobi(std::vector<double> a, int n, std::vector<double>* values,
            std::vector<double>* vectors) {
  std::vector<double> v(n * n, 0.0);
  for (int i = 0; i < n; ++i) v[i * n + i] = 1;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int p = 0; p < n; ++p) {
      for (int q = p + 1; q < n; ++q) off += a[p * n + q] * a[p * n + q];
    }
    if (off < 1e-30) break;
    for (int p = 0; p < n; ++p) {
      for (int q = p + 1; q < n; ++q) {
        if (std::abs(a[p * n + q]) < 1e-300) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q]);
        const double t = (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; ++k) {  // A J
          const double kp = a[k * n + p], kq = a[k * n + q];
          a[k * n + p] = c * kp - s * kq;
          a[k * n + q] = s * kp + c * kq;
        }
        for (int k = 0; k < n; ++k) {  // J^T (A J)
          const double pk = a[p * n + k], qk = a[q * n + k];
          a[p * n + k] = c * pk - s * qk;
          a[q * n + k] = s * pk + c * qk;
        }
        for (int k = 0; k < n; ++k) {
          const double kp = v[k * n + p], kq = v[k * n + q];
          v[k * n + p] = c * kp - s * kq;
          v[k * n + q] = s * kp + c * kq;
        }
      }
    }
  }
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int x, int y) { return a[x * n + x] > a[y * n + y]; });
  values->resize(n);
  vectors->resize(n * n);
  for (int c = 0; c < n; ++c) {
    (*values)[c] = a[order[c] * n + order[c]];
    for (int r = 0; r < n; ++r) (*vectors)[r * n + c] = v[r * n + order[c]];
  }
}

// T x n samples, column-centred.
struct Data {
  int t = 0, n = 0;
  std::vector<double> x;
  double at(int r, int c) const { return x[r * n + c]; }
};

void Centre(Data& d) {
  for (int c = 0; c < d.n; ++c) {
    double mean = 0;
    for (int r = 0; r < d.t; ++r) mean += d.at(r, c);
    mean /= d.t;
    for (int r = 0; r < d.t; ++r) d.x[r * d.n + c] -= mean;
  }
}

std::vector<double> Cov(const Data& a, const Data& b) {
  std::vector<double> c(a.n * b.n, 0.0);
  for (int r = 0; r < a.t; ++r) {
    for (int i = 0; i < a.n; ++i) {
      for (int j = 0; j < b.n; ++j) c[i * b.n + j] += a.at(r, i) * b.at(r, j);
    }
  }
  for (double& v : c) v /= a.t;
  return c;
}

// SVCCA the direct way: project on the top principal components explaining
// `kept` of the variance, orthonormalise the columns (Gram-Schmidt), and take
// the singular values of Qa^T Qb (Jacobi on the smaller Gram matrix).
std::vector<double> DirectSvcca(const Data& a, const Data& b, double kept) {
  auto reduce = [kept](const Data& d) {
    std::vector<double> values, vectors;
    Jacobi(Cov(d, d), d.n, &values, &vectors);
    double total = 0, sum = 0;
    for (double v : values) total += std::max(v, 0.0);
    int k = 0;
    while (k < d.n && sum < kept * total) sum += values[k++];
    Data q{d.t, k, std::vector<double>(d.t * k, 0.0)};
    for (int r = 0; r < d.t; ++r) {
      for (int c = 0; c < k; ++c) {
        for (int f = 0; f < d.n; ++f) q.x[r * k + c] += d.at(r, f) * vectors[f * d.n + c];
      }
    }
    for (int c = 0; c < k; ++c) {  // modified Gram-Schmidt
      for (int p = 0; p < c; ++p) {
        double dot = 0;
        for (int r = 0; r < d.t; ++r) dot += q.at(r, p) * q.at(r, c);
        for (int r = 0; r < d.t; ++r) q.x[r * k + c] -= dot * q.at(r, p);
      }
      double norm = 0;
      for (int r = 0; r < d.t; ++r) norm += q.at(r, c) * q.at(r, c);
      for (int r = 0; r < d.t; ++r) q.x[r * k + c] /= std::sqrt(norm);
    }
    return q;
  };
  const Data qa = reduce(a), qb = reduce(b);
  const Data& small = qa.n <= qb.n ? qa : qb;
  const Data& large = qa.n <= qb.n ? qb : qa;
  std::vector<double> k = Cov(small, large);  // (Qs^T Ql) / T
  for (double& v : k) v *= small.t;
  std::vector<double> g(small.n * small.n, 0.0);
  for (int i = 0; i < small.n; ++i) {
    for (int j = 0; j < small.n; ++j) {
      for (int l = 0; l < large.n; ++l)
        g[i * small.n + j] += k[i * large.n + l] * k[j * large.n + l];
    }
  }
  std::vector<double> values, vectors;
  Jacobi(g, small.n, &values, &vectors);
  for (double& v : values) v = std::sqrt(std::max(v, 0.0));
  return values;
}

// Correlated samples: a = z M_a + noise, b = z M_b + noise from shared z.
void MakeCorrelated(int t, int na, int nb, uint64_t seed, Data* a, Data* b) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  constexpr int kLatent = 3;
  std::vector<double> ma(kLatent * na), mb(kLatent * nb);
  for (double& v : ma) v = g(rng);
  for (double& v : mb) v = g(rng);
  *a = {t, na, std::vector<double>(t * na)};
  *b = {t, nb, std::vector<double>(t * nb)};
  for (int r = 0; r < t; ++r) {
    double z[kLatent];
    for (double& v : z) v = g(rng);
    for (int c = 0; c < na; ++c) {
      double s = (c + 1) * 0.5 * g(rng);  // distinct noise scales per column
      for (int l = 0; l < kLatent; ++l) s += z[l] * ma[l * na + c];
      a->x[r * na + c] = s;
    }
    for (int c = 0; c < nb; ++c) {
      double s = 0.7 * g(rng);
      for (int l = 0; l < kLatent; ++l) s += z[l] * mb[l * nb + c];
      b->x[r * nb + c] = s;
    }
  }
  Centre(*a);
  Centre(*b);
}

TEST(SvccaTest, MatchesADirectComputation) {
  Data a, b;
  MakeCorrelated(300, 5, 4, 21, &a, &b);
  for (double kept : {1.0, 0.9}) {
    SAEDICT_ASSERT_OK_AND_ASSIGN(const SvccaResult got,
                                 Svcca(Cov(a, a), a.n, Cov(b, b), b.n, Cov(a, b), kept));
    const std::vector<double> want = DirectSvcca(a, b, kept);
    ASSERT_EQ(got.correlations.size(), want.size()) << kept;
    EXPECT_EQ(std::min(got.dims_a, got.dims_b), static_cast<int64_t>(want.size()));
    double mean = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(got.correlations[i], want[i], 1e-9) << kept << " " << i;
      mean += want[i] / want.size();
    }
    EXPECT_NEAR(got.mean, mean, 1e-9);
    if (kept == 1.0) {
      EXPECT_EQ(got.dims_a, 5);
      EXPECT_EQ(got.dims_b, 4);
    } else {
      EXPECT_LT(got.dims_a, 5);  // the truncation is exercised
    }
  }
}

TEST(SvccaTest, IdenticalSidesScoreOne) {
  Data a, b;
  MakeCorrelated(2000, 6, 6, 4, &a, &b);
  const std::vector<double> c = Cov(a, a);
  SAEDICT_ASSERT_OK_AND_ASSIGN(const SvccaResult got, Svcca(c, 6, c, 6, c, 0.99));
  EXPECT_GT(got.dims_a, 0);
  for (double r : got.correlations) EXPECT_NEAR(r, 1.0, 1e-9);
  EXPECT_NEAR(got.mean, 1.0, 1e-9);
}

TEST(SvccaTest, IndependentSidesScoreLow) {
  std::mt19937_64 rng(9);
  std::normal_distribution<double> g(0, 1);
  Data a{20000, 8, std::vector<double>(20000 * 8)}, b{20000, 8, std::vector<double>(20000 * 8)};
  for (double& v : a.x) v = g(rng);
  for (double& v : b.x) v = g(rng);
  Centre(a);
  Centre(b);
  SAEDICT_ASSERT_OK_AND_ASSIGN(const SvccaResult got,
                               Svcca(Cov(a, a), 8, Cov(b, b), 8, Cov(a, b), 0.99));
  EXPECT_LT(got.mean, 0.1);
  EXPECT_LT(got.correlations.front(), 0.1);
}

TEST(SvccaTest, LinearlyMixedCopyScoresOne) {
  Data a, unused;
  MakeCorrelated(3000, 6, 1, 8, &a, &unused);
  std::mt19937_64 rng(1);
  std::normal_distribution<double> g(0, 1);
  std::vector<double> r(36);
  for (int i = 0; i < 6; ++i) {
    for (int j = 0; j < 6; ++j) r[i * 6 + j] = (i == j ? 1.0 : 0.0) + 0.8 * g(rng);
  }
  Data b{a.t, 6, std::vector<double>(a.t * 6, 0.0)};
  for (int t = 0; t < a.t; ++t) {
    for (int j = 0; j < 6; ++j) {
      for (int i = 0; i < 6; ++i) b.x[t * 6 + j] += a.at(t, i) * r[i * 6 + j];
    }
  }
  // All variance kept: a truncation could cut different directions of the
  // two sides, which a mixing does not preserve.
  SAEDICT_ASSERT_OK_AND_ASSIGN(const SvccaResult got,
                               Svcca(Cov(a, a), 6, Cov(b, b), 6, Cov(a, b), 1.0));
  EXPECT_EQ(got.dims_a, 6);
  EXPECT_EQ(got.dims_b, 6);
  EXPECT_NEAR(got.mean, 1.0, 1e-9);
}

TEST(SvccaTest, RankDeficientSideIsTruncated) {
  Data a, b;
  MakeCorrelated(500, 4, 3, 2, &a, &b);
  Data dup{a.t, 5, std::vector<double>(a.t * 5)};  // a with its column 0 twice
  for (int t = 0; t < a.t; ++t) {
    for (int c = 0; c < 5; ++c) dup.x[t * 5 + c] = a.at(t, c == 4 ? 0 : c);
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(const SvccaResult with_dup,
                               Svcca(Cov(dup, dup), 5, Cov(b, b), 3, Cov(dup, b), 1.0));
  SAEDICT_ASSERT_OK_AND_ASSIGN(const SvccaResult plain,
                               Svcca(Cov(a, a), 4, Cov(b, b), 3, Cov(a, b), 1.0));
  EXPECT_EQ(with_dup.dims_a, 4);
  ASSERT_EQ(with_dup.correlations.size(), plain.correlations.size());
  for (size_t i = 0; i < plain.correlations.size(); ++i) {
    EXPECT_NEAR(with_dup.correlations[i], plain.correlations[i], 1e-7);
  }
}

TEST(SvccaTest, RejectsBadInput) {
  const std::vector<double> one = {1.0}, zero = {0.0};
  EXPECT_THAT(Svcca(one, 1, one, 1, {0.5, 0.5}, 0.99),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cross-covariance has 2")));
  EXPECT_THAT(Svcca(one, 1, one, 1, {std::nan("")}, 0.99),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("entry (0, 0)")));
  EXPECT_THAT(Svcca(one, 1, one, 1, one, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("variance_kept")));
  EXPECT_THAT(Svcca(one, 0, one, 1, one, 0.99),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("n_a = 0")));
  EXPECT_THAT(Svcca(zero, 1, one, 1, zero, 0.99),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("side A has no variance")));
}

}  // namespace
}  // namespace saedict::compare
