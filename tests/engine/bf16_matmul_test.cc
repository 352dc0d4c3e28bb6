// Tests for Bf16Matmul: argument checking, agreement with a float64 GEMM on
// bf16-rounded inputs (tight) and on the original float32 inputs (within
// bf16 rounding), tile boundaries, and concurrent Run on one object.
// Tests that need the BF16 path skip visibly when Bf16Matmul::Available()
// is false (no oneDNN in the build, or no AVX512-BF16/AMX on this CPU).
#include "engine/bf16_matmul.h"

#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"
#include "util/half.h"

namespace saedict::engine {
namespace {

using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;
using ::testing::HasSubstr;

std::vector<float> Gaussian(int64_t count, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(count);
  for (float& x : v) x = dist(gen);
  return v;
}

float RoundBf16(float x) { return Bf16ToFloat(FloatToBf16(x)); }

// Reference product in float64. With round_inputs, A and B are first rounded
// to bf16 (what the kernel multiplies). Also returns sum_k |a||b| per entry.
void Reference(const std::vector<float>& a, const std::vector<float>& b, int64_t m, int64_t k,
               int64_t n, bool round_inputs, std::vector<double>* c,
               std::vector<double>* magnitude) {
  c->assign(m * n, 0.0);
  magnitude->assign(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t p = 0; p < k; ++p) {
      const double av = round_inputs ? RoundBf16(a[i * k + p]) : a[i * k + p];
      for (int64_t j = 0; j < n; ++j) {
        const double bv = round_inputs ? RoundBf16(b[p * n + j]) : b[p * n + j];
        (*c)[i * n + j] += av * bv;
        (*magnitude)[i * n + j] += std::fabs(av * bv);
      }
    }
  }
}

#define SKIP_WITHOUT_BF16()                                                              \
  if (!Bf16Matmul::Available())                                                          \
  GTEST_SKIP() << "Bf16Matmul unavailable: built without oneDNN or the CPU has neither " \
                  "AVX512-BF16 nor AMX"

TEST(Bf16MatmulTest, CreateRejectsBadArguments) {
  const std::vector<float> b(12, 1.0f);
  EXPECT_THAT(Bf16Matmul::Create(nullptr, 3, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("null")));
  EXPECT_THAT(Bf16Matmul::Create(b.data(), 0, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0x4")));
  EXPECT_THAT(Bf16Matmul::Create(b.data(), 3, -1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("3x-1")));
  EXPECT_THAT(Bf16Matmul::Create(b.data(), int64_t{1} << 40, int64_t{1} << 20),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too large")));
}

TEST(Bf16MatmulTest, CreateIsUnimplementedExactlyWhenUnavailable) {
  const std::vector<float> b(12, 1.0f);
  auto matmul = Bf16Matmul::Create(b.data(), 3, 4);
  if (Bf16Matmul::Available()) {
    EXPECT_THAT(matmul, IsOk());
  } else {
    EXPECT_THAT(matmul, StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("BF16")));
  }
}

TEST(Bf16MatmulTest, RunRejectsBadArguments) {
  SKIP_WITHOUT_BF16();
  const std::vector<float> b = Gaussian(6 * 5, 1);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto matmul, Bf16Matmul::Create(b.data(), 6, 5));
  EXPECT_EQ(matmul->k(), 6);
  EXPECT_EQ(matmul->n(), 5);
  std::vector<float> a(6), c(5);
  EXPECT_THAT(matmul->Run(a.data(), -1, c.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-1")));
  EXPECT_THAT(matmul->Run(nullptr, 1, c.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("null")));
  EXPECT_THAT(matmul->Run(a.data(), 1, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("null")));
  EXPECT_THAT(matmul->Run(nullptr, 0, nullptr), IsOk());  // m == 0: nothing to do
}

struct Shape {
  int64_t m, k, n;
};
void PrintTo(const Shape& s, std::ostream* os) { *os << s.m << "x" << s.k << "x" << s.n; }

class Bf16MatmulShapeTest : public ::testing::TestWithParam<Shape> {};

TEST_P(Bf16MatmulShapeTest, MatchesFloat64GemmWithinBf16Rounding) {
  SKIP_WITHOUT_BF16();
  const Shape s = GetParam();
  const std::vector<float> a = Gaussian(s.m * s.k, 11);
  const std::vector<float> b = Gaussian(s.k * s.n, 12, 1.0f / std::sqrt(float(s.k)));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto matmul, Bf16Matmul::Create(b.data(), s.k, s.n));
  std::vector<float> c(s.m * s.n, std::nanf(""));
  ASSERT_THAT(matmul->Run(a.data(), s.m, c.data()), IsOk());

  // 1. Against the exact product of the bf16-rounded inputs: only float32
  //    accumulation error remains, far below bf16 rounding.
  std::vector<double> ref, mag;
  Reference(a, b, s.m, s.k, s.n, /*round_inputs=*/true, &ref, &mag);
  int64_t bad = 0;
  for (int64_t i = 0; i < s.m * s.n; ++i) {
    const double tol = 1e-5 * std::sqrt(double(s.k)) * mag[i] + 1e-30;
    if (!(std::fabs(c[i] - ref[i]) <= tol) && bad++ < 5) {
      ADD_FAILURE() << "row " << i / s.n << " col " << i % s.n << ": got " << c[i]
                    << ", bf16-input reference " << ref[i] << ", tolerance " << tol;
    }
  }
  EXPECT_EQ(bad, 0);

  // 2. Against the float32 inputs: relative Frobenius error of bf16 rounding
  //    (unit roundoff 2^-9 per input) is a few 1e-3 for random data.
  Reference(a, b, s.m, s.k, s.n, /*round_inputs=*/false, &ref, &mag);
  double err = 0, norm = 0;
  for (int64_t i = 0; i < s.m * s.n; ++i) {
    err += (c[i] - ref[i]) * (c[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  const double rel = std::sqrt(err / norm);
  EXPECT_LT(rel, 1e-2) << "relative Frobenius error vs float32 inputs";
  if (s.k >= 64) {
    EXPECT_GT(rel, 1e-5) << "suspiciously exact: were inputs rounded to bf16?";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Bf16MatmulShapeTest,
    ::testing::Values(Shape{1, 1, 1}, Shape{1, 7, 5}, Shape{3, 64, 130}, Shape{16, 100, 64},
                      Shape{37, 256, 333},
                      Shape{529, 96, 200},   // one full 512-row tile + padded 17-row tile
                      Shape{1100, 64, 48}),  // two full tiles + padded remainder
    [](const ::testing::TestParamInfo<Shape>& info) {
      return absl::StrCat("m", info.param.m, "_k", info.param.k, "_n", info.param.n);
    });

TEST(Bf16MatmulTest, ExactForBf16RepresentableInputs) {
  SKIP_WITHOUT_BF16();
  // Exactly representable inputs (small integers) make every result exact,
  // whichever tile size or kernel computes it.
  const int64_t k = 40, n = 70, m = 600;
  std::vector<float> a(m * k), b(k * n);
  for (int64_t i = 0; i < m * k; ++i) a[i] = float(int64_t(i * 7 % 9) - 4);
  for (int64_t i = 0; i < k * n; ++i) b[i] = float(int64_t(i * 5 % 7) - 3);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto matmul, Bf16Matmul::Create(b.data(), k, n));
  std::vector<float> c(m * n);
  ASSERT_THAT(matmul->Run(a.data(), m, c.data()), IsOk());
  for (int64_t i = 0; i < m; i += 97) {
    for (int64_t j = 0; j < n; ++j) {
      float want = 0;
      for (int64_t p = 0; p < k; ++p) want += a[i * k + p] * b[p * n + j];
      ASSERT_EQ(c[i * n + j], want) << "row " << i << " col " << j;
    }
  }
  std::vector<float> one(n);
  ASSERT_THAT(matmul->Run(a.data() + 123 * k, 1, one.data()), IsOk());
  for (int64_t j = 0; j < n; ++j) EXPECT_EQ(one[j], c[123 * n + j]);
}

TEST(Bf16MatmulTest, ConcurrentRunsMatchSerialRuns) {
  SKIP_WITHOUT_BF16();
  const int64_t k = 192, n = 320;
  const std::vector<int64_t> sizes = {1, 17, 64, 200, 513, 700};
  const int64_t max_m = 700;
  const std::vector<float> a = Gaussian(max_m * k, 21);
  const std::vector<float> b = Gaussian(k * n, 22);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto matmul, Bf16Matmul::Create(b.data(), k, n));

  std::vector<std::vector<float>> serial(sizes.size());
  for (size_t s = 0; s < sizes.size(); ++s) {
    serial[s].resize(sizes[s] * n);
    ASSERT_THAT(matmul->Run(a.data(), sizes[s], serial[s].data()), IsOk());
  }

  constexpr int kThreads = 6;
  constexpr int kIterations = 8;
  std::vector<int> mismatches(kThreads, 0), errors(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int it = 0; it < kIterations; ++it) {
        const size_t s = (t + it) % sizes.size();
        std::vector<float> c(sizes[s] * n, -1.0f);
        if (!matmul->Run(a.data(), sizes[s], c.data()).ok()) {
          ++errors[t];
          continue;
        }
        if (c != serial[s]) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], 0) << "thread " << t;
    EXPECT_EQ(mismatches[t], 0) << "thread " << t;
  }
}

}  // namespace
}  // namespace saedict::engine
