// Each ScreenGemm implementation (AmxBf16Gemm, Avx512Bf16Gemm,
// Avx2Int16Gemm) where this CPU runs it, and CreateScreenGemm: for edge
// shapes (rows, depth and columns that fill no whole tile or panel, odd
// depth) every output keeps the contract of screen_gemm.h against the exact
// product (its norms and error terms), the bf16 ones also the float32
// summation bound of their bf16 inputs' product, columns past n and rows
// past m are untouched, rows that are not finite give NaN, concurrent calls
// agree, and bad weights are refused.
#include "engine/screen_gemm.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/amx_gemm.h"
#include "engine/avx2_int16_gemm.h"
#include "engine/avx512_bf16_gemm.h"
#include "engine/bf16_matmul.h"
#include "gtest/gtest.h"
#include "util/half.h"

namespace saedict::engine {
namespace {

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(gen);
  return v;
}

struct Implementation {
  std::string name;
  std::function<bool()> available;
  std::function<absl::StatusOr<std::unique_ptr<ScreenGemm>>(const float*, int64_t, int64_t)> create;
  std::string off_switch;
  bool bf16 = true;  // stand-ins are Bf16Matmul::RoundToBf16 roundings
};

// gtest names a failing parameter by this instead of its bytes.
void PrintTo(const Implementation& implementation, std::ostream* os) { *os << implementation.name; }

class ScreenGemmTest : public ::testing::TestWithParam<Implementation> {
 protected:
  void SetUp() override {
    if (!GetParam().available()) {
      GTEST_SKIP() << "SKIPPED: " << GetParam().name << " does not run on this CPU (or "
                   << GetParam().off_switch << " is set)";
    }
  }
};

INSTANTIATE_TEST_SUITE_P(
    Implementations, ScreenGemmTest,
    ::testing::Values(Implementation{"amx", [] { return AmxBf16Gemm::Available(); },
                                     CreateScreenGemmAs<AmxBf16Gemm>, "SAEDICT_NO_AMX"},
                      Implementation{"avx512bf16", [] { return Avx512Bf16Gemm::Available(); },
                                     CreateScreenGemmAs<Avx512Bf16Gemm>, "SAEDICT_NO_AVX512_BF16"},
                      Implementation{"avx2int16", [] { return Avx2Int16Gemm::Available(); },
                                     CreateScreenGemmAs<Avx2Int16Gemm>, "SAEDICT_NO_AVX2_INT16",
                                     /*bf16=*/false},
                      Implementation{
                          "chosen", [] { return ScreenGemmAvailable(); }, CreateScreenGemm,
                          "SAEDICT_NO_AMX, SAEDICT_NO_AVX512_BF16 and "
                          "SAEDICT_NO_AVX2_INT16",
                          /*bf16=*/AmxBf16Gemm::Available() || Avx512Bf16Gemm::Available()}),
    [](const ::testing::TestParamInfo<Implementation>& info) { return info.param.name; });

struct Shape {
  int64_t m, k, n;
};
constexpr Shape kShapes[] = {Shape{1, 1, 1},    Shape{33, 70, 45},   Shape{32, 32, 32},
                             Shape{7, 100, 97}, Shape{64, 257, 130}, Shape{13, 3, 64},
                             Shape{6, 64, 128}, Shape{5, 2304, 200}, Shape{9, 513, 17}};

// Rows encoded by the implementation, for Multiply.
struct Encoded {
  std::vector<uint64_t> rows;
  std::vector<RowNorms> norms;
};
Encoded EncodeAll(const ScreenGemm& gemm, const std::vector<float>& a, int64_t m) {
  Encoded e;
  e.rows.resize((m * gemm.encoded_row_bytes() + 7) / 8);
  e.norms.resize(m);
  gemm.EncodeRows(a.data(), m, e.rows.data(), e.norms.data());
  return e;
}

// The contract FastExactScreen relies on, against the exact product x·W_j:
// |x·W_j - c~| <= ||dx||·||W_j|| + ||x~||·||dW_j|| + r·||x~||·||W~_j|| + a,
// with every norm as the implementation reports it.
TEST_P(ScreenGemmTest, KeepsItsContractAgainstTheExactProduct) {
  for (const Shape s : kShapes) {
    std::vector<float> a = Random(s.m * s.k, 5), b = Random(s.k * s.n, 6);
    if (s.m > 2) {  // a zero row and a tiny one (scales below the normal range)
      std::fill(a.begin(), a.begin() + s.k, 0.0f);
      for (int64_t p = 0; p < s.k; ++p) a[s.k + p] *= 1e-40f;
    }
    if (s.n > 3) {
      for (int64_t p = 0; p < s.k; ++p) b[p * s.n + 1] = 0.0f;  // a zero column
    }
    auto gemm = GetParam().create(b.data(), s.k, s.n);
    ASSERT_TRUE(gemm.ok()) << gemm.status();
    const Encoded e = EncodeAll(**gemm, a, s.m);
    const ColumnNorms& cn = (*gemm)->column_norms();
    ASSERT_EQ(cn.input.size(), static_cast<size_t>(s.n));
    std::vector<float> c(s.m * s.n);
    (*gemm)->Multiply(e.rows.data(), s.m, c.data(), s.n);
    const double r = (*gemm)->relative_error(), abs_error = (*gemm)->absolute_error();
    for (int64_t i = 0; i < s.m; ++i) {
      double x_sq = 0.0;
      for (int64_t p = 0; p < s.k; ++p)
        x_sq += static_cast<double>(a[i * s.k + p]) * a[i * s.k + p];
      ASSERT_GE(e.norms[i].input, std::sqrt(x_sq)) << "row " << i;
      for (int64_t j = 0; j < s.n; ++j) {
        double exact = 0.0;
        for (int64_t p = 0; p < s.k; ++p) {
          exact += static_cast<double>(a[i * s.k + p]) * b[p * s.n + j];
        }
        const double bound = e.norms[i].residual * cn.input[j] +
                             e.norms[i].screen * cn.residual[j] +
                             r * e.norms[i].screen * cn.screen[j] + abs_error;
        // 1e-12 relative: the double reference's own rounding.
        ASSERT_LE(std::abs(c[i * s.n + j] - exact), bound * (1 + 1e-9) + 1e-12 * std::abs(exact))
            << "m=" << s.m << " k=" << s.k << " n=" << s.n << " at " << i << "," << j;
      }
    }
  }
}

// A row with a NaN or an infinity gives non-finite outputs (the screen then
// computes that row densely); the other rows are unaffected.
TEST_P(ScreenGemmTest, RowsThatAreNotFiniteGiveNonFiniteOutputs) {
  const int64_t m = 8, k = 70, n = 40;
  std::vector<float> a = Random(m * k, 7);
  const std::vector<float> b = Random(k * n, 8);
  a[2 * k + 5] = std::numeric_limits<float>::quiet_NaN();
  a[5 * k + 69] = std::numeric_limits<float>::infinity();
  auto gemm = GetParam().create(b.data(), k, n);
  ASSERT_TRUE(gemm.ok());
  const Encoded e = EncodeAll(**gemm, a, m);
  std::vector<float> c(m * n);
  (*gemm)->Multiply(e.rows.data(), m, c.data(), n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      if (i == 2 || i == 5) {
        EXPECT_FALSE(std::isfinite(c[i * n + j])) << i << "," << j << ": " << c[i * n + j];
      } else {
        EXPECT_TRUE(std::isfinite(c[i * n + j])) << i << "," << j;
      }
    }
  }
}

TEST_P(ScreenGemmTest, MatchesTheBf16ProductWithinTheSummationBound) {
  if (!GetParam().bf16) GTEST_SKIP() << "SKIPPED: " << GetParam().name << " has int16 stand-ins";
  for (const Shape s : kShapes) {
    const std::vector<float> a = Random(s.m * s.k, 1), b = Random(s.k * s.n, 2);
    std::vector<uint16_t> a_bf16(a.size()), b_bf16(b.size());
    Bf16Matmul::RoundToBf16(a.data(), s.m * s.k, a_bf16.data());
    Bf16Matmul::RoundToBf16(b.data(), s.k * s.n, b_bf16.data());
    auto gemm = GetParam().create(b.data(), s.k, s.n);
    ASSERT_TRUE(gemm.ok()) << gemm.status();
    const int64_t ldc = s.n + 3;
    std::vector<float> c((s.m + 1) * ldc, -7.0f);  // one guard row, three guard columns
    (*gemm)->Multiply(a_bf16.data(), s.m, c.data(), ldc);
    const double gamma = static_cast<double>(s.k) * 0x1p-23;
    for (int64_t i = 0; i <= s.m; ++i) {
      for (int64_t j = 0; j < ldc; ++j) {
        if (i == s.m || j >= s.n) {
          ASSERT_EQ(c[i * ldc + j], -7.0f) << "wrote outside [m, n) at " << i << "," << j;
          continue;
        }
        double exact = 0.0, abs_sum = 0.0;
        for (int64_t p = 0; p < s.k; ++p) {
          const double t = static_cast<double>(Bf16ToFloat(a_bf16[i * s.k + p])) *
                           Bf16ToFloat(b_bf16[p * s.n + j]);
          exact += t;
          abs_sum += std::abs(t);
        }
        ASSERT_LE(std::abs(c[i * ldc + j] - exact), gamma * abs_sum + 1e-30)
            << "m=" << s.m << " k=" << s.k << " n=" << s.n << " at " << i << "," << j;
      }
    }
  }
}

TEST_P(ScreenGemmTest, ConcurrentCallsAgree) {
  const int64_t m = 70, k = 96, n = 200;
  const std::vector<float> a = Random(m * k, 3), b = Random(k * n, 4);
  auto gemm = GetParam().create(b.data(), k, n);
  ASSERT_TRUE(gemm.ok());
  const Encoded e = EncodeAll(**gemm, a, m);
  std::vector<float> want(m * n);
  (*gemm)->Multiply(e.rows.data(), m, want.data(), n);
  std::vector<std::vector<float>> got(4, std::vector<float>(m * n));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const Encoded mine = EncodeAll(**gemm, a, m);
      (*gemm)->Multiply(mine.rows.data(), m, got[t].data(), n);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(got[t], want) << "thread " << t;
}

// Runs on every CPU: bad weights are INVALID_ARGUMENT whatever runs here,
// and an implementation this CPU lacks says UNIMPLEMENTED.
TEST(ScreenGemmRejectTest, RejectsBadWeightsAndMissingHardware) {
  std::vector<float> w(8, 1.0f);
  for (const auto& create : {std::function<absl::Status(const float*, int64_t, int64_t)>(
                                 [](const float*b, int64_t k, int64_t n) {
                                   return CreateScreenGemmAs<AmxBf16Gemm>(b, k, n).status();
                                 }),
                             std::function<absl::Status(const float*, int64_t, int64_t)>(
                                 [](const float*b, int64_t k, int64_t n) {
                                   return CreateScreenGemmAs<Avx512Bf16Gemm>(b, k, n).status();
                                 }),
                             std::function<absl::Status(const float*, int64_t, int64_t)>(
                                 [](const float*b, int64_t k, int64_t n) {
                                   return CreateScreenGemmAs<Avx2Int16Gemm>(b, k, n).status();
                                 }),
                             std::function<absl::Status(const float*, int64_t, int64_t)>(
                                 [](const float*b, int64_t k, int64_t n) {
                                   return CreateScreenGemm(b, k, n).status();
                                 })}) {
    EXPECT_EQ(create(nullptr, 2, 4).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(create(w.data(), 0, 4).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(create(w.data(), 2, -1).code(), absl::StatusCode::kInvalidArgument);
  }
  if (!AmxBf16Gemm::Available()) {
    EXPECT_EQ(AmxBf16Gemm::Create(w.data(), 2, 4).status().code(),
              absl::StatusCode::kUnimplemented);
  }
  if (!Avx512Bf16Gemm::Available()) {
    EXPECT_EQ(Avx512Bf16Gemm::Create(w.data(), 2, 4).status().code(),
              absl::StatusCode::kUnimplemented);
  }
  if (!Avx2Int16Gemm::Available()) {
    EXPECT_EQ(Avx2Int16Gemm::Create(w.data(), 2, 4).status().code(),
              absl::StatusCode::kUnimplemented);
  }
  if (!ScreenGemmAvailable()) {
    EXPECT_EQ(CreateScreenGemm(w.data(), 2, 4).status().code(), absl::StatusCode::kUnimplemented);
  }
}

// The bf16 screens beat the F32 encode and are the default; the int16 one
// is not (ScreenGemm::faster_than_f32), and ScreenGemmFasterThanF32 says
// which CreateScreenGemm picks here.
TEST(ScreenGemmRejectTest, FasterThanF32IsWhatTheDefaultModeFollows) {
  std::vector<float> w(8, 1.0f);
  if (Avx2Int16Gemm::Available()) {
    EXPECT_FALSE((*Avx2Int16Gemm::Create(w.data(), 2, 4))->faster_than_f32());
  }
  if (Avx512Bf16Gemm::Available()) {
    EXPECT_TRUE((*Avx512Bf16Gemm::Create(w.data(), 2, 4))->faster_than_f32());
  }
  if (AmxBf16Gemm::Available()) {
    EXPECT_TRUE((*AmxBf16Gemm::Create(w.data(), 2, 4))->faster_than_f32());
  }
  if (ScreenGemmAvailable()) {
    EXPECT_EQ((*CreateScreenGemm(w.data(), 2, 4))->faster_than_f32(), ScreenGemmFasterThanF32());
  } else {
    EXPECT_FALSE(ScreenGemmFasterThanF32());
  }
}

// Every quantized value at its largest magnitude Q: each 256-deep int32 block
// reaches 256·Q² (just below 2^31) and the float total k·Q², with signs all
// equal (the largest sum) and alternating (cancellation to 0 or one
// product). An int32 overflow anywhere would be off by 2^32·scales.
TEST(Avx2Int16GemmTest, ExtremeValuesDoNotOverflow) {
  if (!Avx2Int16Gemm::Available()) {
    GTEST_SKIP() << "SKIPPED: no AVX2 here (or SAEDICT_NO_AVX2_INT16 is set)";
  }
  for (const int64_t k : {int64_t{256}, int64_t{257}, int64_t{4099}}) {
    const int64_t m = 2, n = 3;
    std::vector<float> a(m * k), b(k * n);
    for (int64_t p = 0; p < k; ++p) {
      a[p] = 3.0f;                           // row 0: all equal
      a[k + p] = p % 2 == 0 ? 3.0f : -3.0f;  // row 1: alternating
      for (int64_t j = 0; j < n; ++j) b[p * n + j] = j == 2 ? -0.5f : 0.5f;
    }
    auto gemm = Avx2Int16Gemm::Create(b.data(), k, n);
    ASSERT_TRUE(gemm.ok());
    const Encoded e = EncodeAll(**gemm, a, m);
    std::vector<float> c(m * n);
    (*gemm)->Multiply(e.rows.data(), m, c.data(), n);
    const double same = 1.5 * static_cast<double>(k), alternating = k % 2 == 0 ? 0.0 : 1.5;
    const double tolerance = 1e-5 * same;
    EXPECT_NEAR(c[0], same, tolerance) << "k=" << k;
    EXPECT_NEAR(c[1], same, tolerance) << "k=" << k;
    EXPECT_NEAR(c[2], -same, tolerance) << "k=" << k;
    EXPECT_NEAR(c[3], alternating, tolerance) << "k=" << k;
    EXPECT_NEAR(c[5], -alternating, tolerance) << "k=" << k;
  }
}

// The stand-ins are the documented quantization: 12.5 bits against each
// row's and each column's largest value, so the residual norms are within
// 2^-12 of the norms (bf16 gives about 2^-9 per value).
TEST(Avx2Int16GemmTest, StandInsAreTheDocumentedQuantization) {
  if (!Avx2Int16Gemm::Available()) {
    GTEST_SKIP() << "SKIPPED: no AVX2 here (or SAEDICT_NO_AVX2_INT16 is set)";
  }
  const int64_t m = 4, k = 300, n = 50;
  const std::vector<float> a = Random(m * k, 9), b = Random(k * n, 10);
  auto gemm = Avx2Int16Gemm::Create(b.data(), k, n);
  ASSERT_TRUE(gemm.ok());
  const Encoded e = EncodeAll(**gemm, a, m);
  for (int64_t i = 0; i < m; ++i) {
    float max_abs = 0.0f;
    for (int64_t p = 0; p < k; ++p) max_abs = std::max(max_abs, std::abs(a[i * k + p]));
    const double step = max_abs / Avx2Int16Gemm::kMaxQuantized;
    // Each value is off by at most half a step.
    EXPECT_LE(e.norms[i].residual, 0.5 * step * std::sqrt(static_cast<double>(k)) * (1 + 1e-6));
    EXPECT_GT(e.norms[i].residual, 0.0);
    EXPECT_LT(e.norms[i].residual, e.norms[i].input * 0x1p-10);
  }
  const ColumnNorms& cn = (*gemm)->column_norms();
  for (int64_t j = 0; j < n; ++j) {
    EXPECT_GT(cn.residual[j], 0.0f);
    EXPECT_LT(cn.residual[j], cn.input[j] * 0x1p-10f) << j;
  }
}

}  // namespace
}  // namespace saedict::engine
