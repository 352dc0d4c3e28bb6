// Avx512Bf16Gemm (see avx512_bf16_gemm.h).
#include "engine/avx512_bf16_gemm.h"

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/bf16_matmul.h"
#include "engine/parallel.h"

namespace saedict::engine {
namespace {

constexpr int64_t kPanel = 64;  // columns per panel: four zmm of 16 float32 lanes
constexpr int64_t kRows = 6;    // rows per kernel call

bool CpuHasAvx512Bf16() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return false;
  const bool bf16 = (eax >> 5) & 1;
  __builtin_cpu_init();
  // avx512f here also checks that the OS saves the zmm state (XCR0).
  return bf16 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

int64_t RoundUp(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// A row's bf16 pair read as one 32-bit word: the type may alias uint16_t and
// needs only its alignment.
typedef uint32_t __attribute__((may_alias, aligned(2))) PairWord;

// c[MR rows, 64 columns] = a · panel over k_pairs pairs; `cols` < 64 stores
// only the first cols columns.
template <int MR>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void Tile(const PairWord* a,
                                                                 int64_t lda_words,
                                                                 const uint32_t* panel,
                                                                 int64_t k_pairs, float* c,
                                                                 int64_t ldc, int cols) {
  __m512 acc[MR][4];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    for (int q = 0; q < 4; ++q) acc[r][q] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < k_pairs; ++p) {
    const uint32_t* w = panel + p * kPanel;
    const __m512bh b0 = (__m512bh)_mm512_load_si512(w);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(w + 16);
    const __m512bh b2 = (__m512bh)_mm512_load_si512(w + 32);
    const __m512bh b3 = (__m512bh)_mm512_load_si512(w + 48);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[r * lda_words + p]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
      acc[r][2] = _mm512_dpbf16_ps(acc[r][2], av, b2);
      acc[r][3] = _mm512_dpbf16_ps(acc[r][3], av, b3);
    }
  }
  if (cols == kPanel) {
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      for (int q = 0; q < 4; ++q) _mm512_storeu_ps(c + r * ldc + 16 * q, acc[r][q]);
    }
    return;
  }
  for (int q = 0; q < 4; ++q) {
    const int left = std::clamp(cols - 16 * q, 0, 16);
    const __mmask16 mask = left == 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
    for (int r = 0; r < MR; ++r) _mm512_mask_storeu_ps(c + r * ldc + 16 * q, mask, acc[r][q]);
  }
}

using TileFn = void (*)(const PairWord*, int64_t, const uint32_t*, int64_t, float*, int64_t, int);
constexpr TileFn kTiles[kRows + 1] = {nullptr, Tile<1>, Tile<2>, Tile<3>,
                                      Tile<4>, Tile<5>, Tile<6>};

}  // namespace

void Avx512Bf16Gemm::FreeDeleter::operator()(uint32_t* p) const { std::free(p); }

bool Avx512Bf16Gemm::Available() {
  static const bool available =
      !EnvironmentSwitchSet("SAEDICT_NO_AVX512_BF16") && CpuHasAvx512Bf16();
  return available;
}

Avx512Bf16Gemm::Avx512Bf16Gemm(int64_t k, int64_t n)
    : Bf16ScreenGemm(k), k_(k), n_(n), k_pairs_((k + 1) / 2), n_pad_(RoundUp(n, kPanel)) {}

Avx512Bf16Gemm::~Avx512Bf16Gemm() = default;

absl::StatusOr<std::unique_ptr<Avx512Bf16Gemm>> Avx512Bf16Gemm::Create(const float* b, int64_t k,
                                                                       int64_t n) {
  if (b == nullptr || k <= 0 || n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("AVX512-BF16 GEMM: bad weights (", k, "x", n, ", null: ", b == nullptr, ")"));
  }
  if (!Available()) {
    return absl::UnimplementedError(
        "AVX512-BF16 GEMM: this CPU has no AVX512-BF16 (or SAEDICT_NO_AVX512_BF16 is set)");
  }
  std::unique_ptr<Avx512Bf16Gemm> gemm(new Avx512Bf16Gemm(k, n));
  const int64_t words = gemm->k_pairs_ * gemm->n_pad_;
  gemm->packed_.reset(static_cast<uint32_t*>(
      std::aligned_alloc(64, static_cast<size_t>(RoundUp(std::max<int64_t>(words, 1) * 4, 64)))));
  if (gemm->packed_ == nullptr) {
    return absl::ResourceExhaustedError("AVX512-BF16 GEMM: out of memory");
  }
  uint32_t* packed = gemm->packed_.get();
  const int64_t k_pairs = gemm->k_pairs_, panels = gemm->n_pad_ / kPanel;
  ParallelFor(k_pairs, 16, [&](int64_t begin, int64_t end) {
    std::vector<uint16_t> lo(n), hi(n);
    for (int64_t p = begin; p < end; ++p) {
      Bf16Matmul::RoundToBf16(b + 2 * p * n, n, lo.data());
      if (2 * p + 1 < k) {
        Bf16Matmul::RoundToBf16(b + (2 * p + 1) * n, n, hi.data());
      } else {
        std::fill(hi.begin(), hi.end(), uint16_t{0});
      }
      for (int64_t q = 0; q < panels; ++q) {
        uint32_t* dst = packed + (q * k_pairs + p) * kPanel;
        for (int64_t col = 0; col < kPanel; ++col) {
          const int64_t j = q * kPanel + col;
          // Low half: row 2p (the lane's even bf16), high half: row 2p + 1.
          dst[col] = j < n ? (static_cast<uint32_t>(hi[j]) << 16) | lo[j] : 0u;
        }
      }
    }
  });
  gemm->SetBf16ColumnNorms(b, k, n);
  return gemm;
}

void Avx512Bf16Gemm::MultiplyPanels(const void* a_words, int64_t lda_words, int64_t m, float* c,
                                    int64_t ldc, int64_t panel_begin, int64_t panel_end) const {
  const PairWord* a = static_cast<const PairWord*>(a_words);
  for (int64_t q = panel_begin; q < panel_end; ++q) {
    const uint32_t* panel = packed_.get() + q * k_pairs_ * kPanel;
    const int64_t j0 = q * kPanel;
    const int cols = static_cast<int>(std::min(kPanel, n_ - j0));
    for (int64_t i0 = 0; i0 < m; i0 += kRows) {
      const int64_t rows = std::min(kRows, m - i0);
      kTiles[rows](a + i0 * lda_words, lda_words, panel, k_pairs_, c + i0 * ldc + j0, ldc, cols);
    }
  }
}

void Avx512Bf16Gemm::Multiply(const void* encoded, int64_t m, float* c, int64_t ldc) const {
  const uint16_t* a_bf16 = static_cast<const uint16_t*>(encoded);
  if (m <= 0) return;
  std::vector<uint16_t> padded;  // only for an odd k: each row gets a zero k-th element
  const uint16_t* rows = a_bf16;
  if (k_ % 2 != 0) {
    padded.assign(static_cast<size_t>(m * 2 * k_pairs_), uint16_t{0});
    for (int64_t i = 0; i < m; ++i) {
      std::memcpy(padded.data() + i * 2 * k_pairs_, a_bf16 + i * k_, k_ * sizeof(uint16_t));
    }
    rows = padded.data();
  }
  // A bf16 row of even length is k_pairs 32-bit words, (x[2p], x[2p+1]) in
  // word p's low and high halves.
  const PairWord* words = reinterpret_cast<const PairWord*>(rows);
  const int64_t panels = n_pad_ / kPanel;
  const int threads = Parallelism();
  ParallelFor(
      panels, std::max<int64_t>(1, panels / (4 * threads)),
      [&](int64_t begin, int64_t end) { MultiplyPanels(words, k_pairs_, m, c, ldc, begin, end); });
}

}  // namespace saedict::engine
