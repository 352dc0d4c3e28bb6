// compare::MaxSimilarityAssignment against brute force over every injective
// matching (sizes 1..7, both orientations, with and without ties), against
// an independent Bellman-Ford successive-shortest-path reference on larger
// matrices (including ones where every row wants the same columns, so most
// rows take the shortest-augmenting-path stage), a planted case where
// greedy best-match is not optimal, a hidden permutation at n = 2000 behind
// a planted dual certificate, scipy's linear_sum_assignment when
// python3-scipy is installed, and the error and cancellation paths.
#include "compare/linear_assignment.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::compare {
namespace {

using ::saedict::testing::StatusIs;
using ::testing::HasSubstr;

// The best total over all injective maps of the smaller side into the larger.
double BruteForceBest(const std::vector<float>& s, int64_t rows, int64_t cols) {
  const bool by_rows = rows <= cols;
  const int64_t n = by_rows ? rows : cols, m = by_rows ? cols : rows;
  auto at = [&](int64_t a, int64_t b) {  // a on the small side, b on the large
    return by_rows ? double{s[a * cols + b]} : double{s[b * cols + a]};
  };
  std::vector<bool> used(m, false);
  double best = -std::numeric_limits<double>::infinity();
  std::function<void(int64_t, double)> go = [&](int64_t a, double sum) {
    if (a == n) {
      best = std::max(best, sum);
      return;
    }
    for (int64_t b = 0; b < m; ++b) {
      if (used[b]) continue;
      used[b] = true;
      go(a + 1, sum + at(a, b));
      used[b] = false;
    }
  };
  go(0, 0);
  return best;
}

// An independent reference for sizes past brute force: successive shortest
// augmenting paths by Bellman-Ford on the residual graph (no potentials, no
// initialisation), maximising the total. Starts from the empty matching;
// each augmentation takes the best-total path from any free row to any
// free column, so every intermediate matching is a best one of its size.
double ReferenceBest(const std::vector<float>& s, int64_t rows, int64_t cols) {
  const bool by_rows = rows <= cols;
  const int64_t n = by_rows ? rows : cols, m = by_rows ? cols : rows;
  auto gain = [&](int64_t a, int64_t b) {
    return by_rows ? double{s[a * cols + b]} : double{s[b * cols + a]};
  };
  constexpr double kNone = -std::numeric_limits<double>::infinity();
  std::vector<int64_t> x(n, -1), y(m, -1);
  for (int64_t step = 0; step < n; ++step) {
    // best[i]: best gain of a path from a free row ending at row i.
    std::vector<double> best(n, kNone), col(m, kNone);
    std::vector<int64_t> from(m, -1);
    for (int64_t i = 0; i < n; ++i) {
      if (x[i] < 0) best[i] = 0;
    }
    for (bool changed = true; changed;) {
      changed = false;
      for (int64_t i = 0; i < n; ++i) {
        if (best[i] == kNone) continue;
        for (int64_t j = 0; j < m; ++j) {
          if (x[i] == j) continue;
          const double g = best[i] + gain(i, j);
          if (g > col[j] + 1e-12) {
            col[j] = g;
            from[j] = i;
            if (y[j] >= 0) {
              const double h = g - gain(y[j], j);
              if (h > best[y[j]] + 1e-12) {
                best[y[j]] = h;
                changed = true;
              }
            }
          }
        }
      }
    }
    int64_t sink = -1;
    for (int64_t j = 0; j < m; ++j) {
      if (y[j] < 0 && col[j] != kNone && (sink < 0 || col[j] > col[sink])) sink = j;
    }
    for (int64_t j = sink; j >= 0;) {
      const int64_t i = from[j], old = x[i];
      x[i] = j;
      y[j] = i;
      j = old;
    }
  }
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += gain(i, x[i]);
  return total;
}

// A valid one-to-one matching of min(rows, cols) pairs whose total is the
// sum of its entries.
void ExpectValid(const Assignment& a, const std::vector<float>& s, int64_t rows, int64_t cols) {
  ASSERT_EQ(static_cast<int64_t>(a.row_to_col.size()), rows);
  ASSERT_EQ(static_cast<int64_t>(a.col_to_row.size()), cols);
  int64_t matched = 0;
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = a.row_to_col[r];
    if (c < 0) continue;
    ASSERT_LT(c, cols);
    ASSERT_EQ(a.col_to_row[c], r) << "row " << r << " -> column " << c;
    ++matched;
    total += s[r * cols + c];
  }
  for (int64_t c = 0; c < cols; ++c) {
    if (a.col_to_row[c] >= 0) {
      ASSERT_EQ(a.row_to_col[a.col_to_row[c]], c) << "column " << c;
    }
  }
  EXPECT_EQ(matched, std::min(rows, cols));
  EXPECT_NEAR(a.total, total, 1e-9);
}

// Uniform in [-1, 1), or with `levels` > 0 one of `levels` values k / levels:
// few levels give many optima, more levels give the augmenting row
// reduction exact ties (so rows reach the shortest-path stage) while the
// optimum stays nearly unique.
std::vector<float> RandomMatrix(int64_t rows, int64_t cols, std::mt19937& rng, int levels = 0) {
  std::vector<float> s(rows * cols);
  std::uniform_real_distribution<float> uniform(-1, 1);
  std::uniform_int_distribution<int> level(0, std::max(levels - 1, 0));
  for (float& v : s) v = levels > 0 ? static_cast<float>(level(rng)) / levels : uniform(rng);
  return s;
}

// Rank one plus noise: s_ij = a_i b_j + 0.05 noise, a, b, noise ~ U(0, 1).
std::vector<float> CompetingMatrix(int64_t rows, int64_t cols, std::mt19937& rng) {
  std::uniform_real_distribution<float> uniform(0, 1);
  std::vector<float> a(rows), b(cols), s(rows * cols);
  for (float& v : a) v = uniform(rng);
  for (float& v : b) v = uniform(rng);
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) s[i * cols + j] = a[i] * b[j] + 0.05f * uniform(rng);
  }
  return s;
}

TEST(LinearAssignmentTest, EqualsBruteForceOnSmallMatrices) {
  std::mt19937 rng(7);
  int cases = 0;
  for (int64_t rows = 1; rows <= 7; ++rows) {
    for (int64_t cols = 1; cols <= 7; ++cols) {
      for (int rep = 0; rep < 40; ++rep) {
        const bool ties = rep % 2 == 1;
        const std::vector<float> s = RandomMatrix(rows, cols, rng, ties ? 4 : 0);
        SAEDICT_ASSERT_OK_AND_ASSIGN(Assignment a, MaxSimilarityAssignment(s, rows, cols));
        SCOPED_TRACE(::testing::Message() << rows << " x " << cols << " rep " << rep);
        ExpectValid(a, s, rows, cols);
        EXPECT_NEAR(a.total, BruteForceBest(s, rows, cols), 1e-9);
        ++cases;
      }
    }
  }
  EXPECT_EQ(cases, 7 * 7 * 40);
}

TEST(LinearAssignmentTest, EqualsTheReferenceOnMediumMatrices) {
  std::mt19937 rng(9);
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{20, 20}, {30, 30}, {45, 45},
                                   {12, 30}, {30, 12}, {40, 41}, {41, 40}}) {
    for (int rep = 0; rep < 16; ++rep) {
      const std::vector<float> s = RandomMatrix(rows, cols, rng, (rep % 4) * 16);
      SAEDICT_ASSERT_OK_AND_ASSIGN(Assignment a, MaxSimilarityAssignment(s, rows, cols));
      SCOPED_TRACE(::testing::Message() << rows << " x " << cols << " rep " << rep);
      ExpectValid(a, s, rows, cols);
      EXPECT_NEAR(a.total, ReferenceBest(s, rows, cols), 1e-9);
    }
  }
}

TEST(LinearAssignmentTest, EqualsTheReferenceWhenRowsCompete) {
  // Every row prefers the same columns: the augmenting row reduction runs
  // out of its budget and most rows take shortest augmenting paths, whose
  // price updates must then be right.
  std::mt19937 rng(13);
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{20, 20}, {40, 40}, {60, 60},
                                   {40, 50}, {50, 40}, {30, 70}, {70, 30}}) {
    for (int rep = 0; rep < 4; ++rep) {
      const std::vector<float> s = CompetingMatrix(rows, cols, rng);
      SAEDICT_ASSERT_OK_AND_ASSIGN(Assignment a, MaxSimilarityAssignment(s, rows, cols));
      SCOPED_TRACE(::testing::Message() << rows << " x " << cols << " rep " << rep);
      ExpectValid(a, s, rows, cols);
      EXPECT_NEAR(a.total, ReferenceBest(s, rows, cols), 1e-9);
    }
  }
  for (int64_t rows = 2; rows <= 7; ++rows) {
    for (int64_t cols = 2; cols <= 7; ++cols) {
      for (int rep = 0; rep < 10; ++rep) {
        const std::vector<float> s = CompetingMatrix(rows, cols, rng);
        SAEDICT_ASSERT_OK_AND_ASSIGN(Assignment a, MaxSimilarityAssignment(s, rows, cols));
        SCOPED_TRACE(::testing::Message() << rows << " x " << cols << " rep " << rep);
        EXPECT_NEAR(a.total, BruteForceBest(s, rows, cols), 1e-9);
      }
    }
  }
}

TEST(LinearAssignmentTest, AllEqualAndConstantRows) {
  // Every matching is optimal; the result must still be a complete one.
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{5, 5}, {3, 8}, {8, 3}}) {
    const std::vector<float> s(rows * cols, 0.5f);
    SAEDICT_ASSERT_OK_AND_ASSIGN(Assignment a, MaxSimilarityAssignment(s, rows, cols));
    ExpectValid(a, s, rows, cols);
    EXPECT_NEAR(a.total, 0.5 * std::min(rows, cols), 1e-12);
  }
}

TEST(LinearAssignmentTest, BeatsGreedyOnAPlantedCase) {
  // Greedy by best similarity takes (0,0) = 0.9 and then (1,1) = 0.1: 1.0.
  // The optimum is (0,1) + (1,0) = 0.8 + 0.8 = 1.6.
  const std::vector<float> s = {0.9f, 0.8f,  //
                                0.8f, 0.1f};
  SAEDICT_ASSERT_OK_AND_ASSIGN(Assignment a, MaxSimilarityAssignment(s, 2, 2));
  EXPECT_EQ(a.row_to_col, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(a.col_to_row, (std::vector<int64_t>{1, 0}));
  EXPECT_NEAR(a.total, 1.6, 1e-6);

  // Rectangular: row 0's best column (0) must go to row 1, which has no
  // other good column.
  const std::vector<float> r = {0.9f, 0.85f, 0.0f,  //
                                0.88f, 0.0f, 0.0f};
  SAEDICT_ASSERT_OK_AND_ASSIGN(Assignment b, MaxSimilarityAssignment(r, 2, 3));
  EXPECT_EQ(b.row_to_col, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(b.col_to_row, (std::vector<int64_t>{1, 0, -1}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(Assignment c, MaxSimilarityAssignment(
                                                 {0.9f, 0.88f, 0.85f, 0.0f, 0.0f, 0.0f}, 3, 2));
  EXPECT_EQ(c.row_to_col, (std::vector<int64_t>{1, 0, -1}));
}

TEST(LinearAssignmentTest, RecoversAHiddenPermutationAt2000) {
  // A planted dual certificate: s = u_i + v_j on the hidden pairs and at
  // least 0.001 below it elsewhere, so the permutation is the unique
  // optimum; with v spread out, many rows' best entry is a decoy.
  constexpr int64_t kN = 2000;
  std::mt19937 rng(3);
  std::vector<int64_t> perm(kN);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::uniform_real_distribution<float> potential(0, 0.5f), slack(0.001f, 0.3f);
  std::vector<float> u(kN), v(kN), s(kN * kN);
  for (float& x : u) x = potential(rng);
  for (float& x : v) x = potential(rng);
  for (int64_t r = 0; r < kN; ++r) {
    for (int64_t c = 0; c < kN; ++c) {
      s[r * kN + c] = u[r] + v[c] - (c == perm[r] ? 0.0f : slack(rng));
    }
  }
  int64_t decoyed = 0;
  for (int64_t r = 0; r < kN; ++r) {
    const float* row = s.data() + r * kN;
    decoyed += std::max_element(row, row + kN) - row != perm[r];
  }
  EXPECT_GT(decoyed, kN / 2) << "greedy best-match must be wrong for many rows";
  SAEDICT_ASSERT_OK_AND_ASSIGN(Assignment a, MaxSimilarityAssignment(s, kN, kN));
  EXPECT_EQ(a.row_to_col, perm);
  ExpectValid(a, s, kN, kN);
  // And transposed: the same permutation from the column side.
  std::vector<float> t(kN * kN);
  for (int64_t r = 0; r < kN; ++r) {
    for (int64_t c = 0; c < kN; ++c) t[c * kN + r] = s[r * kN + c];
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(Assignment b, MaxSimilarityAssignment(t, kN, kN));
  EXPECT_EQ(b.col_to_row, perm);
}

TEST(LinearAssignmentTest, LargerRandomMatricesAreValidAndBeatLocalSwaps) {
  // No brute force at this size: check no pair of rows gains by swapping
  // (a necessary condition of optimality that catches broken potentials).
  std::mt19937 rng(5);
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{60, 60}, {40, 70}, {70, 40}}) {
    const std::vector<float> s = RandomMatrix(rows, cols, rng);
    SAEDICT_ASSERT_OK_AND_ASSIGN(Assignment a, MaxSimilarityAssignment(s, rows, cols));
    ExpectValid(a, s, rows, cols);
    for (int64_t r1 = 0; r1 < rows; ++r1) {
      for (int64_t r2 = r1 + 1; r2 < rows; ++r2) {
        const int64_t c1 = a.row_to_col[r1], c2 = a.row_to_col[r2];
        auto at = [&](int64_t r, int64_t c) { return c < 0 ? 0.0 : double{s[r * cols + c]}; };
        EXPECT_GE(at(r1, c1) + at(r2, c2) + 1e-9, at(r1, c2) + at(r2, c1)) << r1 << ", " << r2;
      }
    }
  }
}

TEST(LinearAssignmentTest, MatchesScipy) {
  if (std::system("/usr/bin/python3 -c 'import scipy' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "SKIPPED: python3-scipy not installed; scipy comparison not run";
  }
  constexpr int64_t kRows = 50, kCols = 40;
  std::mt19937 rng(11);
  const std::vector<float> s = RandomMatrix(kRows, kCols, rng);
  testing::ScratchDir dir;
  const std::string in = (dir.path() / "s.txt").string(), out = (dir.path() / "r.txt").string();
  {
    std::ofstream f(in);
    f.precision(9);
    for (int64_t r = 0; r < kRows; ++r) {
      for (int64_t c = 0; c < kCols; ++c) f << s[r * kCols + c] << (c + 1 < kCols ? " " : "\n");
    }
  }
  const std::string cmd =
      "/usr/bin/python3 -c \"import numpy as np, scipy.optimize as o, sys; "
      "s = np.loadtxt(sys.argv[1], dtype=np.float32).astype(np.float64); "
      "r, c = o.linear_sum_assignment(s, maximize=True); "
      "open(sys.argv[2], 'w').write(repr(float(s[r, c].sum())))\" " +
      in + " " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream f(out);
  double want = 0;
  ASSERT_TRUE(f >> want);
  SAEDICT_ASSERT_OK_AND_ASSIGN(Assignment a, MaxSimilarityAssignment(s, kRows, kCols));
  ExpectValid(a, s, kRows, kCols);
  EXPECT_NEAR(a.total, want, 1e-9);
}

TEST(LinearAssignmentTest, RejectsBadInput) {
  const std::vector<float> s(6, 0.0f);
  EXPECT_THAT(MaxSimilarityAssignment(s, 2, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("6 entries")));
  EXPECT_THAT(MaxSimilarityAssignment(s, 0, 6),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rows = 0")));
  EXPECT_THAT(MaxSimilarityAssignment({}, 3, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cols = 0")));
  std::vector<float> bad = s;
  bad[4] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(MaxSimilarityAssignment(bad, 2, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("similarity[1][1] is nan")));
  bad[4] = 0;
  bad[2] = -std::numeric_limits<float>::infinity();
  EXPECT_THAT(MaxSimilarityAssignment(bad, 3, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("similarity[1][0] is -inf")));
}

TEST(LinearAssignmentTest, Cancels) {
  std::mt19937 rng(1);
  const std::vector<float> s = RandomMatrix(300, 300, rng);
  EXPECT_THAT(MaxSimilarityAssignment(s, 300, 300, [] { return true; }),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  // Cancelled part-way: the poll inside the work, not only the first one.
  int polls = 0;
  EXPECT_THAT(MaxSimilarityAssignment(s, 300, 300, [&] { return ++polls > 1; }),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  EXPECT_GT(polls, 1);
  SAEDICT_ASSERT_OK_AND_ASSIGN(Assignment a,
                               MaxSimilarityAssignment(s, 300, 300, [] { return false; }));
  ExpectValid(a, s, 300, 300);
}

}  // namespace
}  // namespace saedict::compare
