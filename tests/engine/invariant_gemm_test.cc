// InvariantGemm: every kernel computes exactly the contract's FMA chain, for
// edge shapes (rows and columns that fill no full tile) and both layouts, and
// a row's result does not depend on the rows around it or the thread count.
#include "engine/invariant_gemm.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/parallel.h"
#include "gtest/gtest.h"

namespace saedict::engine {
namespace {

using Kernel = InvariantGemm::Kernel;
using Layout = InvariantGemm::Layout;

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(gen);
  return v;
}

// The contract, written as plainly as possible.
float Chain(const float* a, const std::vector<float>& b, int64_t k, int64_t n, int64_t j,
            Layout layout) {
  float acc = 0.0f;
  for (int64_t p = 0; p < k; ++p) {
    const float bv = layout == Layout::kKByN ? b[p * n + j] : b[j * k + p];
    acc = std::fma(a[p], bv, acc);
  }
  return acc;
}

bool SameBits(float x, float y) { return std::memcmp(&x, &y, sizeof(float)) == 0; }

bool CpuRuns(Kernel kernel) {
  switch (kernel) {
    case Kernel::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    case Kernel::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default:
      return true;
  }
}

class InvariantGemmTest : public ::testing::TestWithParam<Kernel> {};

TEST_P(InvariantGemmTest, EveryElementIsTheFixedFmaChain) {
  if (!CpuRuns(GetParam())) GTEST_SKIP() << "this CPU cannot run the kernel";
  struct Shape {
    int64_t m, k, n;
  };
  for (const Shape s : {Shape{1, 1, 1}, Shape{13, 37, 45}, Shape{6, 64, 32}, Shape{7, 100, 33},
                        Shape{25, 3, 17}, Shape{12, 129, 96}}) {
    for (const Layout layout : {Layout::kKByN, Layout::kNByK}) {
      const std::vector<float> a = Random(s.m * s.k, 1), b = Random(s.k * s.n, 2);
      auto gemm = InvariantGemm::Create(b.data(), s.k, s.n, layout, GetParam());
      ASSERT_EQ(gemm->kernel(), GetParam());
      const int64_t ldc = s.n + 3;  // a padded output: columns past n stay untouched
      std::vector<float> c(s.m * ldc, -7.0f);
      gemm->Multiply(a.data(), s.m, s.k, c.data(), ldc);
      for (int64_t i = 0; i < s.m; ++i) {
        for (int64_t j = 0; j < ldc; ++j) {
          const float want = j < s.n ? Chain(a.data() + i * s.k, b, s.k, s.n, j, layout) : -7.0f;
          ASSERT_TRUE(SameBits(c[i * ldc + j], want))
              << gemm->kernel_name() << " m=" << s.m << " k=" << s.k << " n=" << s.n
              << " layout=" << static_cast<int>(layout) << " c[" << i << "][" << j
              << "]=" << c[i * ldc + j] << " want " << want;
        }
      }
    }
  }
}

// MultiplyBlock (the fast exact mode's re-computation) leaves exactly the
// chain for every block, scattered row list and row count, including the
// partial last block, whether the p range runs in one call or in pieces.
TEST_P(InvariantGemmTest, BlocksOfScatteredRowsAreTheSameChain) {
  if (!CpuRuns(GetParam())) GTEST_SKIP() << "this CPU cannot run the kernel";
  const int64_t m = 23, k = 70, n = 83;  // 11 blocks, the last 3 columns wide
  constexpr int64_t kW = InvariantGemm::kBlockWidth;
  const std::vector<float> a = Random(m * k, 5), b = Random(k * n, 6);
  auto gemm = InvariantGemm::Create(b.data(), k, n, Layout::kKByN, GetParam());
  ASSERT_EQ(gemm->num_blocks(), 11);
  for (const std::vector<int64_t>& cuts :
       {std::vector<int64_t>{0, k}, std::vector<int64_t>{0, 1, 33, 64, k}}) {
    for (int64_t block = 0; block < gemm->num_blocks(); ++block) {
      for (int64_t rows = 1; rows <= 19; rows += 3) {
        std::vector<const float*> a_rows;
        std::vector<float*> c_rows;
        std::vector<float> c(rows * kW, 0.0f);
        for (int64_t r = 0; r < rows; ++r) {
          a_rows.push_back(a.data() + ((r * 7 + block) % m) * k);
          c_rows.push_back(c.data() + r * kW);
        }
        for (size_t q = 0; q + 1 < cuts.size(); ++q) {
          gemm->MultiplyBlock(a_rows.data(), rows, block, cuts[q], cuts[q + 1], c_rows.data());
        }
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t t = 0; t < kW; ++t) {
            const int64_t j = block * kW + t;
            const float want = j < n ? Chain(a_rows[r], b, k, n, j, Layout::kKByN) : 0.0f;
            ASSERT_TRUE(SameBits(c[r * kW + t], want))
                << gemm->kernel_name() << " block " << block << " rows " << rows << " r " << r
                << " t " << t << " pieces " << cuts.size() - 1;
          }
        }
      }
    }
  }
}

TEST_P(InvariantGemmTest, RowsDoNotDependOnTheirBatchOrThreads) {
  if (!CpuRuns(GetParam())) GTEST_SKIP() << "this CPU cannot run the kernel";
  const int64_t m = 50, k = 96, n = 200;
  const std::vector<float> a = Random(m * k, 3), b = Random(k * n, 4);
  auto gemm = InvariantGemm::Create(b.data(), k, n, Layout::kKByN, GetParam());
  std::vector<float> all(m * n);
  gemm->Multiply(a.data(), m, k, all.data(), n);
  for (const int threads : {1, 0}) {
    SetParallelism(threads);
    for (const int64_t first : {0, 5, 17, 49}) {
      for (int64_t rows = 1; first + rows <= m; rows = rows * 2 + 1) {
        std::vector<float> part(rows * n);
        gemm->Multiply(a.data() + first * k, rows, k, part.data(), n);
        ASSERT_EQ(std::memcmp(part.data(), all.data() + first * n, part.size() * sizeof(float)), 0)
            << "rows [" << first << ", " << first + rows << ") threads " << threads;
      }
    }
  }
  SetParallelism(0);
}

INSTANTIATE_TEST_SUITE_P(Kernels, InvariantGemmTest,
                         ::testing::Values(Kernel::kAvx512, Kernel::kAvx2, Kernel::kPortable),
                         [](const auto& info) {
                           switch (info.param) {
                             case Kernel::kAvx512:
                               return "avx512";
                             case Kernel::kAvx2:
                               return "avx2";
                             default:
                               return "portable";
                           }
                         });

TEST(InvariantGemmKernels, AutoPicksTheWidestThisCpuRuns) {
  const std::vector<float> b = Random(8 * 8, 5);
  auto gemm = InvariantGemm::Create(b.data(), 8, 8, Layout::kKByN);
  EXPECT_EQ(gemm->kernel(), InvariantGemm::BestKernel());
  if (CpuRuns(Kernel::kAvx512)) {
    EXPECT_EQ(gemm->kernel(), Kernel::kAvx512);
  } else if (CpuRuns(Kernel::kAvx2)) {
    EXPECT_EQ(gemm->kernel(), Kernel::kAvx2);
  }
  std::printf("InvariantGemm kernel on this CPU: %s\n", std::string(gemm->kernel_name()).c_str());
}

}  // namespace
}  // namespace saedict::engine
