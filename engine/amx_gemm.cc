// AmxBf16Gemm (see amx_gemm.h).
#include "engine/amx_gemm.h"

#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cpuid.h>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/bf16_matmul.h"
#include "engine/parallel.h"

namespace saedict::engine {
namespace {

constexpr int64_t kTile = 16;           // rows of a tile, and columns of a C / B tile
constexpr int64_t kBlockK = 32;         // k per tile (32 bf16 = 64 bytes a row)
constexpr int64_t kPanel = 32;          // columns per B panel (two B tiles)
constexpr int64_t kRowBlock = 32;       // rows per A block (two A tiles)
constexpr int64_t kTileElems = 512;     // bf16 elements in one 1 KiB tile
constexpr int kArchReqXcompPerm = 0x1023;
constexpr int kXfeatureXtiledata = 18;

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

bool CpuHasAmxBf16() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool amx_bf16 = (edx >> 22) & 1, amx_tile = (edx >> 24) & 1;
  return amx_bf16 && amx_tile;
}

int64_t RoundUp(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

uint16_t* AllocBf16(int64_t count) {
  const size_t bytes = static_cast<size_t>(RoundUp(std::max<int64_t>(count, 1) * 2, 64));
  return static_cast<uint16_t*>(std::aligned_alloc(64, bytes));
}

// One (32-row block, 32-column panel): C = A_block · B_panel over k_blocks.
__attribute__((target("amx-tile,amx-bf16"))) void Block(const uint16_t* a, const uint16_t* b,
                                                         int64_t k_blocks, float* c,
                                                         int64_t ldc_bytes) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t kb = 0; kb < k_blocks; ++kb) {
    const uint16_t* at = a + kb * 2 * kTileElems;
    const uint16_t* bt = b + kb * 2 * kTileElems;
    _tile_loadd(4, at, 64);
    _tile_loadd(5, at + kTileElems, 64);
    _tile_loadd(6, bt, 64);
    _tile_loadd(7, bt + kTileElems, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  const int64_t row16 = kTile * (ldc_bytes / 4);
  _tile_stored(0, c, ldc_bytes);
  _tile_stored(1, c + kTile, ldc_bytes);
  _tile_stored(2, c + row16, ldc_bytes);
  _tile_stored(3, c + row16 + kTile, ldc_bytes);
}

__attribute__((target("amx-tile,amx-bf16"))) void ConfigureTiles() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = kTile;
    config.colsb[t] = 64;
  }
  _tile_loadconfig(&config);
}

__attribute__((target("amx-tile"))) void ReleaseTiles() { _tile_release(); }

}  // namespace

void AmxBf16Gemm::FreeDeleter::operator()(uint16_t* p) const { std::free(p); }

bool AmxBf16Gemm::Available() {
  static const bool available = [] {
    if (EnvironmentSwitchSet("SAEDICT_NO_AMX")) return false;
    if (!CpuHasAmxBf16()) return false;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return available;
}

AmxBf16Gemm::AmxBf16Gemm(int64_t k, int64_t n)
    : Bf16ScreenGemm(k), k_(k), n_(n), k_pad_(RoundUp(k, kBlockK)), n_pad_(RoundUp(n, kPanel)) {}

AmxBf16Gemm::~AmxBf16Gemm() = default;

absl::StatusOr<std::unique_ptr<AmxBf16Gemm>> AmxBf16Gemm::Create(const float* b, int64_t k,
                                                                 int64_t n) {
  if (b == nullptr || k <= 0 || n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("AMX bf16 GEMM: bad weights (", k, "x", n, ", null: ", b == nullptr, ")"));
  }
  if (!Available()) {
    return absl::UnimplementedError("AMX bf16 GEMM: this CPU has no AMX-BF16 (or the kernel "
                                    "does not grant the AMX tile state)");
  }
  std::unique_ptr<AmxBf16Gemm> gemm(new AmxBf16Gemm(k, n));
  gemm->packed_.reset(AllocBf16(gemm->k_pad_ * gemm->n_pad_));
  if (gemm->packed_ == nullptr) return absl::ResourceExhaustedError("AMX bf16 GEMM: out of memory");
  uint16_t* packed = gemm->packed_.get();
  const int64_t k_blocks = gemm->k_pad_ / kBlockK, panels = gemm->n_pad_ / kPanel;
  ParallelFor(k_blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<uint16_t> rows(kBlockK * n);
    for (int64_t kb = begin; kb < end; ++kb) {
      std::fill(rows.begin(), rows.end(), uint16_t{0});
      const int64_t k0 = kb * kBlockK, depth = std::min(kBlockK, k - k0);
      Bf16Matmul::RoundToBf16(b + k0 * n, depth * n, rows.data());
      for (int64_t q = 0; q < panels; ++q) {
        // Tile t of (panel q, block kb): row r holds the pairs (k0+2r, k0+2r+1)
        // of its 16 columns, interleaved (VNNI).
        uint16_t* dst = packed + (q * k_blocks + kb) * 2 * kTileElems;
        for (int64_t t = 0; t < 2; ++t) {
          for (int64_t r = 0; r < kTile; ++r) {
            for (int64_t col = 0; col < kTile; ++col) {
              const int64_t j = q * kPanel + t * kTile + col;
              for (int64_t e = 0; e < 2; ++e) {
                const int64_t p = 2 * r + e;
                dst[t * kTileElems + r * 32 + col * 2 + e] =
                    j < n && p < depth ? rows[p * n + j] : uint16_t{0};
              }
            }
          }
        }
      }
    }
  });
  gemm->SetBf16ColumnNorms(b, k, n);
  return gemm;
}

void AmxBf16Gemm::MultiplyPanels(const uint16_t* a_packed, int64_t m, int64_t m_pad, float* c,
                                 int64_t ldc, int64_t panel_begin, int64_t panel_end) const {
  const int64_t k_blocks = k_pad_ / kBlockK;
  alignas(64) float edge[kRowBlock * kPanel];
  ConfigureTiles();
  for (int64_t q = panel_begin; q < panel_end; ++q) {
    const uint16_t* b = packed_.get() + q * k_blocks * 2 * kTileElems;
    const int64_t j0 = q * kPanel, cols = std::min(kPanel, n_ - j0);
    for (int64_t i0 = 0; i0 < m_pad; i0 += kRowBlock) {
      const uint16_t* a = a_packed + (i0 / kRowBlock) * k_blocks * 2 * kTileElems;
      const int64_t rows = std::min(kRowBlock, m - i0);
      if (rows == kRowBlock && cols == kPanel) {
        Block(a, b, k_blocks, c + i0 * ldc + j0, ldc * 4);
        continue;
      }
      Block(a, b, k_blocks, edge, kPanel * 4);  // a partial block: only its valid part is kept
      for (int64_t r = 0; r < rows; ++r) {
        std::memcpy(c + (i0 + r) * ldc + j0, edge + r * kPanel, cols * sizeof(float));
      }
    }
  }
  ReleaseTiles();
}

void AmxBf16Gemm::Multiply(const void* encoded, int64_t m, float* c, int64_t ldc) const {
  const uint16_t* a_bf16 = static_cast<const uint16_t*>(encoded);
  if (m <= 0) return;
  const int64_t m_pad = RoundUp(m, kRowBlock), k_blocks = k_pad_ / kBlockK;
  std::unique_ptr<uint16_t[], FreeDeleter> a_packed(AllocBf16(m_pad * k_pad_));
  // A in tile order: block i/32, k block, tile t (rows 16t..16t+15), 64-byte rows.
  ParallelFor(m_pad / kRowBlock, 1, [&](int64_t begin, int64_t end) {
    for (int64_t ib = begin; ib < end; ++ib) {
      uint16_t* dst = a_packed.get() + ib * k_blocks * 2 * kTileElems;
      for (int64_t kb = 0; kb < k_blocks; ++kb) {
        for (int64_t r = 0; r < kRowBlock; ++r) {
          uint16_t* out = dst + kb * 2 * kTileElems + r * 32;  // r / 16 picks the tile
          const int64_t i = ib * kRowBlock + r, p0 = kb * kBlockK;
          const int64_t depth = i < m ? std::max<int64_t>(0, std::min(kBlockK, k_ - p0)) : 0;
          if (depth > 0) std::memcpy(out, a_bf16 + i * k_ + p0, depth * sizeof(uint16_t));
          std::fill(out + depth, out + kBlockK, uint16_t{0});
        }
      }
    }
  });
  const int64_t panels = n_pad_ / kPanel;
  const int threads = Parallelism();
  ParallelFor(panels, std::max<int64_t>(1, panels / (4 * threads)), [&](int64_t begin, int64_t end) {
    MultiplyPanels(a_packed.get(), m, m_pad, c, ldc, begin, end);
  });
}

}  // namespace saedict::engine
