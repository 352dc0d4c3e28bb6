// Each ScreenGemm implementation (AmxBf16Gemm, Avx512Bf16Gemm) where this
// CPU runs it, and CreateScreenGemm: for edge shapes (rows, depth and
// columns that fill no whole tile or panel, odd depth) every output is the
// bf16 inputs' product within the float32 summation bound the screen relies
// on, columns past n and rows past m are untouched, concurrent calls agree,
// and bad weights are refused.
#include "engine/screen_gemm.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/amx_gemm.h"
#include "engine/avx512_bf16_gemm.h"
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

struct Implementation {
  std::string name;
  std::function<bool()> available;
  std::function<absl::StatusOr<std::unique_ptr<ScreenGemm>>(const float*, int64_t, int64_t)> create;
  std::string off_switch;
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
                      Implementation{"chosen", [] { return ScreenGemmAvailable(); },
                                     CreateScreenGemm,
                                     "SAEDICT_NO_AMX and SAEDICT_NO_AVX512_BF16"}),
    [](const ::testing::TestParamInfo<Implementation>& info) { return info.param.name; });

TEST_P(ScreenGemmTest, MatchesTheBf16ProductWithinTheSummationBound) {
  struct Shape {
    int64_t m, k, n;
  };
  for (const Shape s :
       {Shape{1, 1, 1}, Shape{33, 70, 45}, Shape{32, 32, 32}, Shape{7, 100, 97},
        Shape{64, 257, 130}, Shape{13, 3, 64}, Shape{6, 64, 128}, Shape{5, 2304, 200}}) {
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
  std::vector<uint16_t> a_bf16(a.size());
  Bf16Matmul::RoundToBf16(a.data(), m * k, a_bf16.data());
  auto gemm = GetParam().create(b.data(), k, n);
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
  if (!ScreenGemmAvailable()) {
    EXPECT_EQ(CreateScreenGemm(w.data(), 2, 4).status().code(), absl::StatusCode::kUnimplemented);
  }
}

}  // namespace
}  // namespace saedict::engine
