// AmxBf16Gemm: for edge shapes (rows, depth and columns that fill no whole
// tile or panel) every output is the bf16 inputs' product within the
// float32 summation bound, columns past n and rows past m are untouched, and
// concurrent calls agree.
#include "engine/amx_gemm.h"

#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "engine/bf16_matmul.h"
#include "gtest/gtest.h"

namespace saedict::engine {
namespace {

float Bf16ToFloat(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(gen);
  return v;
}

#define REQUIRE_AMX()                                                                      \
  if (!AmxBf16Gemm::Available()) {                                                         \
    GTEST_SKIP() << "SKIPPED: no AMX-BF16 on this CPU (or SAEDICT_NO_AMX is set)";        \
  }

TEST(AmxBf16GemmTest, MatchesTheBf16ProductWithinTheSummationBound) {
  REQUIRE_AMX();
  struct Shape {
    int64_t m, k, n;
  };
  for (const Shape s : {Shape{1, 1, 1}, Shape{33, 70, 45}, Shape{32, 32, 32}, Shape{7, 100, 97},
                        Shape{64, 257, 130}}) {
    const std::vector<float> a = Random(s.m * s.k, 1), b = Random(s.k * s.n, 2);
    std::vector<uint16_t> a_bf16(a.size()), b_bf16(b.size());
    Bf16Matmul::RoundToBf16(a.data(), s.m * s.k, a_bf16.data());
    Bf16Matmul::RoundToBf16(b.data(), s.k * s.n, b_bf16.data());
    auto gemm = AmxBf16Gemm::Create(b.data(), s.k, s.n);
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

TEST(AmxBf16GemmTest, ConcurrentCallsAgree) {
  REQUIRE_AMX();
  const int64_t m = 70, k = 96, n = 200;
  const std::vector<float> a = Random(m * k, 3), b = Random(k * n, 4);
  std::vector<uint16_t> a_bf16(a.size());
  Bf16Matmul::RoundToBf16(a.data(), m * k, a_bf16.data());
  auto gemm = AmxBf16Gemm::Create(b.data(), k, n);
  ASSERT_TRUE(gemm.ok());
  std::vector<float> want(m * n);
  (*gemm)->Multiply(a_bf16.data(), m, want.data(), n);
  std::vector<std::vector<float>> got(4, std::vector<float>(m * n));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] { (*gemm)->Multiply(a_bf16.data(), m, got[t].data(), n); });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(got[t], want) << "thread " << t;
}

TEST(AmxBf16GemmTest, RejectsBadWeights) {
  std::vector<float> w(8, 1.0f);
  EXPECT_EQ(AmxBf16Gemm::Create(nullptr, 2, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AmxBf16Gemm::Create(w.data(), 0, 4).status().code(), absl::StatusCode::kInvalidArgument);
  if (!AmxBf16Gemm::Available()) {
    EXPECT_EQ(AmxBf16Gemm::Create(w.data(), 2, 4).status().code(), absl::StatusCode::kUnimplemented);
  }
}

}  // namespace
}  // namespace saedict::engine
