// Bf16Matmul on oneDNN's matmul primitive (see bf16_matmul.h).
//
// Layout of the work: B is reordered once into the bf16 blocked layout the
// matmul picks for a kMaxTileRows-row problem (format_tag::any). Run walks A
// in tiles of up to kMaxTileRows rows; a tile's row count is rounded up to
// a multiple of kRowQuantum so at most kMaxTileRows / kRowQuantum primitives
// are ever created (cached per row count). The tile is converted to bf16
// into a per-call buffer (zero rows pad a rounded-up tile), and the
// primitive writes C in place, or into a per-call buffer for a padded tile.
// Every call owns its stream, memory objects and scratchpad
// (scratchpad_mode::user), which is what makes concurrent execution of one
// primitive safe in oneDNN 2.x.
#include "engine/bf16_matmul.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "util/half.h"

#ifdef SAEDICT_HAVE_DNNL
#include <immintrin.h>

#include <oneapi/dnnl/dnnl.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#endif

namespace saedict::engine {
namespace {

constexpr int64_t kMaxTileRows = 512;
// Keep single buffers (bf16 B, one C tile) far below what size_t can hold.
constexpr int64_t kMaxElements = int64_t{1} << 40;

// Create's argument checks, the same with and without oneDNN.
absl::Status CheckWeights(const float* b, int64_t k, int64_t n) {
  if (b == nullptr) return absl::InvalidArgumentError("BF16 matmul: weights pointer is null");
  if (k <= 0 || n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("BF16 matmul: weights shape must be positive, got ", k, "x", n));
  }
  if (k > kMaxElements / n || kMaxTileRows * n > kMaxElements) {
    return absl::InvalidArgumentError(
        absl::StrCat("BF16 matmul: weights shape ", k, "x", n, " is too large"));
  }
  return absl::OkStatus();
}

}  // namespace

#ifdef SAEDICT_HAVE_DNNL

namespace {

constexpr int64_t kRowQuantum = 16;

using dnnl::memory;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// 64-byte aligned, uninitialised storage for `count` elements of T.
template <typename T>
std::unique_ptr<T[], FreeDeleter> AllocAligned(int64_t count) {
  size_t bytes = static_cast<size_t>(count) * sizeof(T);
  bytes = (bytes + 63) / 64 * 64;
  if (bytes == 0) bytes = 64;
  return std::unique_ptr<T[], FreeDeleter>(static_cast<T*>(std::aligned_alloc(64, bytes)));
}

bool CpuHasAvx512Bf16() { return __builtin_cpu_supports("avx512bf16"); }

// Round-to-nearest-even float -> bf16, 16 lanes at a time.
__attribute__((target("avx512f,avx512bf16"))) void ConvertAvx512Bf16(const float* src,
                                                                     int64_t count, uint16_t* dst) {
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), (__m256i)v);
  }
  for (; i < count; ++i) dst[i] = FloatToBf16(src[i]);
}

void ConvertScalar(const float* src, int64_t count, uint16_t* dst) {
  for (int64_t i = 0; i < count; ++i) dst[i] = FloatToBf16(src[i]);
}

absl::Status DnnlError(const char* what, const dnnl::error& e) {
  return absl::InternalError(absl::StrCat("BF16 matmul: oneDNN failed to ", what, ": ", e.what(),
                                          " (status ", static_cast<int>(e.status), ")"));
}

// One matmul primitive for a fixed row count.
struct TilePrimitive {
  dnnl::matmul matmul;
  memory::desc src_md;
  memory::desc dst_md;
  memory::desc scratchpad_md;
  memory::desc weights_md;  // the layout this primitive reads B in
};

}  // namespace

struct Bf16Matmul::Impl {
  int64_t k = 0;
  int64_t n = 0;
  dnnl::engine engine;
  memory::desc weights_md;  // bf16, blocked
  memory weights;           // owns the converted B

  mutable absl::Mutex mu;
  mutable absl::flat_hash_map<int64_t, std::shared_ptr<const TilePrimitive>> tiles
      ABSL_GUARDED_BY(mu);

  // Builds the matmul for `rows` rows; weights_md any (at Create) or fixed.
  static absl::StatusOr<std::shared_ptr<const TilePrimitive>> Build(const dnnl::engine& engine,
                                                                    int64_t rows, int64_t k,
                                                                    int64_t n,
                                                                    const memory::desc& weights) {
    try {
      auto tile = std::make_shared<TilePrimitive>();
      tile->src_md = memory::desc({rows, k}, memory::data_type::bf16, memory::format_tag::ab);
      tile->dst_md = memory::desc({rows, n}, memory::data_type::f32, memory::format_tag::ab);
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(tile->src_md, weights, tile->dst_md), attr,
                                      engine);
      tile->scratchpad_md = pd.scratchpad_desc();
      tile->weights_md = pd.weights_desc();
      tile->matmul = dnnl::matmul(pd);
      return tile;
    } catch (const dnnl::error& e) {
      return DnnlError(absl::StrCat("create a ", rows, "x", k, "x", n, " bf16 matmul").c_str(), e);
    }
  }

  absl::StatusOr<std::shared_ptr<const TilePrimitive>> Tile(int64_t rows) const {
    {
      absl::MutexLock lock(&mu);
      auto it = tiles.find(rows);
      if (it != tiles.end()) return it->second;
    }
    // Built outside the lock: two racing callers build twice, one wins.
    auto tile = Build(engine, rows, k, n, weights_md);
    if (!tile.ok()) return tile.status();
    absl::MutexLock lock(&mu);
    return tiles.try_emplace(rows, *std::move(tile)).first->second;
  }

  void Convert(const float* src, int64_t count, uint16_t* dst) const {
    RoundToBf16(src, count, dst);
  }
};

void Bf16Matmul::RoundToBf16(const float* src, int64_t count, uint16_t* dst) {
  static const bool avx512_bf16 = CpuHasAvx512Bf16();
  if (avx512_bf16) {
    ConvertAvx512Bf16(src, count, dst);
  } else {
    ConvertScalar(src, count, dst);
  }
}

Bf16Matmul::Bf16Matmul(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Bf16Matmul::~Bf16Matmul() = default;
int64_t Bf16Matmul::k() const { return impl_->k; }
int64_t Bf16Matmul::n() const { return impl_->n; }

bool Bf16Matmul::Available() {
  static const bool available = [] {
    try {
      const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
      const auto need = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
      return (isa & need) == need;  // ISA values are nested bit sets; AMX includes this
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return available;
}

absl::StatusOr<std::unique_ptr<Bf16Matmul>> Bf16Matmul::Create(const float* b, int64_t k,
                                                               int64_t n) {
  if (absl::Status s = CheckWeights(b, k, n); !s.ok()) return s;
  if (!Available()) {
    return absl::UnimplementedError(
        "BF16 matmul: this CPU has neither AVX512-BF16 nor AMX (or ONEDNN_MAX_CPU_ISA "
        "forbids them)");
  }
  auto impl = std::make_unique<Impl>();
  impl->k = k;
  impl->n = n;
  try {
    impl->engine = dnnl::engine(dnnl::engine::kind::cpu, 0);
  } catch (const dnnl::error& e) {
    return DnnlError("create the CPU engine", e);
  }
  // Let the full-tile primitive choose the weights layout, then pin it.
  const memory::desc any_weights({k, n}, memory::data_type::bf16, memory::format_tag::any);
  auto full = Impl::Build(impl->engine, kMaxTileRows, k, n, any_weights);
  if (!full.ok()) return full.status();
  try {
    impl->weights_md = (*full)->weights_md;
    impl->weights = memory(impl->weights_md, impl->engine);
    // Rounded by RoundToBf16 first, so the blocked copy holds exactly the
    // bits RoundToBf16 gives (the reorder itself only moves them).
    std::unique_ptr<uint16_t[], FreeDeleter> rounded = AllocAligned<uint16_t>(k * n);
    if (rounded == nullptr) return absl::ResourceExhaustedError("BF16 matmul: out of memory");
    RoundToBf16(b, k * n, rounded.get());
    memory source({{k, n}, memory::data_type::bf16, memory::format_tag::ab}, impl->engine,
                  rounded.get());
    dnnl::stream stream(impl->engine);
    dnnl::reorder(source, impl->weights).execute(stream, source, impl->weights);
    stream.wait();
  } catch (const dnnl::error& e) {
    return DnnlError("convert the weights to bf16", e);
  }
  {
    absl::MutexLock lock(&impl->mu);
    impl->tiles.emplace(kMaxTileRows, *std::move(full));
  }
  return std::unique_ptr<Bf16Matmul>(new Bf16Matmul(std::move(impl)));
}

absl::Status Bf16Matmul::Run(const float* a, int64_t m, float* c) const {
  return RunImpl(a, nullptr, m, c);
}

absl::Status Bf16Matmul::RunBf16(const uint16_t* a_bf16, int64_t m, float* c) const {
  return RunImpl(nullptr, a_bf16, m, c);
}

absl::Status Bf16Matmul::RunImpl(const float* a, const uint16_t* a_rounded, int64_t m,
                                 float* c) const {
  if (m < 0) return absl::InvalidArgumentError(absl::StrCat("BF16 matmul: m = ", m, " < 0"));
  if (m == 0) return absl::OkStatus();
  if ((a == nullptr && a_rounded == nullptr) || c == nullptr) {
    return absl::InvalidArgumentError("BF16 matmul: input or output pointer is null");
  }
  const Impl& impl = *impl_;
  const int64_t k = impl.k;
  const int64_t n = impl.n;
  const int64_t max_rows =
      m < kMaxTileRows ? (m + kRowQuantum - 1) / kRowQuantum * kRowQuantum : kMaxTileRows;
  auto a_bf16 = AllocAligned<uint16_t>(max_rows * k);
  std::unique_ptr<float[], FreeDeleter> c_pad;  // only for a rounded-up tile
  std::unique_ptr<uint8_t[], FreeDeleter> scratchpad;
  size_t scratchpad_bytes = 0;
  if (a_bf16 == nullptr) return absl::ResourceExhaustedError("BF16 matmul: out of memory");
  try {
    dnnl::stream stream(impl.engine);
    memory weights(impl.weights_md, impl.engine, impl.weights.get_data_handle());
    for (int64_t row0 = 0; row0 < m; row0 += kMaxTileRows) {
      const int64_t rows = std::min(kMaxTileRows, m - row0);
      const int64_t tile_rows = (rows + kRowQuantum - 1) / kRowQuantum * kRowQuantum;
      auto tile_or = impl.Tile(tile_rows);
      if (!tile_or.ok()) return tile_or.status();
      const TilePrimitive& tile = **tile_or;

      if (a_rounded != nullptr) {
        std::memcpy(a_bf16.get(), a_rounded + row0 * k, rows * k * sizeof(uint16_t));
      } else {
        impl.Convert(a + row0 * k, rows * k, a_bf16.get());
      }
      if (tile_rows != rows) {
        std::memset(a_bf16.get() + rows * k, 0, (tile_rows - rows) * k * sizeof(uint16_t));
      }
      float* dst = c + row0 * n;
      if (tile_rows != rows) {
        if (c_pad == nullptr) c_pad = AllocAligned<float>(tile_rows * n);
        if (c_pad == nullptr) return absl::ResourceExhaustedError("BF16 matmul: out of memory");
        dst = c_pad.get();
      }
      const size_t need = tile.scratchpad_md.get_size();
      if (need > scratchpad_bytes) {
        scratchpad = AllocAligned<uint8_t>(static_cast<int64_t>(need));
        if (scratchpad == nullptr) {
          return absl::ResourceExhaustedError("BF16 matmul: out of memory");
        }
        scratchpad_bytes = need;
      }
      memory src(tile.src_md, impl.engine, a_bf16.get());
      memory out(tile.dst_md, impl.engine, dst);
      memory scratch(tile.scratchpad_md, impl.engine, scratchpad.get());
      tile.matmul.execute(stream, {{DNNL_ARG_SRC, src},
                                   {DNNL_ARG_WEIGHTS, weights},
                                   {DNNL_ARG_DST, out},
                                   {DNNL_ARG_SCRATCHPAD, scratch}});
      stream.wait();
      if (dst != c + row0 * n) std::memcpy(c + row0 * n, dst, rows * n * sizeof(float));
    }
  } catch (const dnnl::error& e) {
    return DnnlError("execute the bf16 matmul", e);
  }
  return absl::OkStatus();
}

#else  // !SAEDICT_HAVE_DNNL

struct Bf16Matmul::Impl {};

Bf16Matmul::Bf16Matmul(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Bf16Matmul::~Bf16Matmul() = default;
int64_t Bf16Matmul::k() const { return 0; }
int64_t Bf16Matmul::n() const { return 0; }

bool Bf16Matmul::Available() { return false; }

absl::StatusOr<std::unique_ptr<Bf16Matmul>> Bf16Matmul::Create(const float* b, int64_t k,
                                                               int64_t n) {
  if (absl::Status s = CheckWeights(b, k, n); !s.ok()) return s;
  return absl::UnimplementedError("BF16 matmul: this build has no oneDNN");
}

absl::Status Bf16Matmul::Run(const float*, int64_t, float*) const {
  return absl::UnimplementedError("BF16 matmul: this build has no oneDNN");
}

absl::Status Bf16Matmul::RunBf16(const uint16_t*, int64_t, float*) const {
  return absl::UnimplementedError("BF16 matmul: this build has no oneDNN");
}

absl::Status Bf16Matmul::RunImpl(const float*, const uint16_t*, int64_t, float*) const {
  return absl::UnimplementedError("BF16 matmul: this build has no oneDNN");
}

void Bf16Matmul::RoundToBf16(const float* src, int64_t count, uint16_t* dst) {
  for (int64_t i = 0; i < count; ++i) dst[i] = FloatToBf16(src[i]);
}

#endif  // SAEDICT_HAVE_DNNL

}  // namespace saedict::engine
