// InvariantGemm: C = A · B with a fixed reduction order, for batch-invariant
// encode (DESIGN.md §2 "Reproducibility").
//
// Contract: every output element is the same float32 FMA chain, whatever the
// number of rows, the row's position, the thread count or the CPU's vector
// width:
//
//   acc = +0.0f;  for p = 0 .. k-1:  acc = fma(a[i][p], b[p][j], acc);  c[i][j] = acc
//
// so a row's result depends on that row and B alone. BLAS gives no such
// guarantee (OpenBLAS splits and blocks the k loop differently for different
// m, so `A[:m] @ B` and `(A @ B)[:m]` differ in the last bits). Because the
// chain is specified exactly and FMA is correctly rounded, the AVX-512, the
// AVX2 and the portable kernels return bit-identical results; callers may
// still not rely on identity across CPU models (another build may pick
// another kernel in future), and the engine's header does not promise it.
//
// B is packed once at Create into column panels of the kernel's width (a
// copy of B: k × n floats rounded up to the panel width). Multiply splits
// the panels across ParallelFor's pool; each output element is computed by
// exactly one thread, so threads cannot change a result.
//
// Thread safety: immutable after Create; Multiply is const and may be called
// concurrently from any number of threads.
#ifndef SAEDICT_ENGINE_INVARIANT_GEMM_H_
#define SAEDICT_ENGINE_INVARIANT_GEMM_H_

#include <cstdint>
#include <memory>
#include <string_view>

namespace saedict::engine {

class InvariantGemm {
 public:
  enum class Layout {
    kKByN,  // b is [k, n] row-major (W_enc [d_in, d_sae])
    kNByK,  // b is [n, k] row-major, multiplied transposed (W_dec [d_sae, d_in])
  };
  enum class Kernel { kAuto, kAvx512, kAvx2, kPortable };

  // Packs b. kAuto picks the widest kernel this CPU runs; asking for a kernel
  // the CPU lacks falls back to kPortable (see kernel()). k, n >= 1.
  static std::unique_ptr<InvariantGemm> Create(const float* b, int64_t k, int64_t n, Layout layout,
                                               Kernel kernel = Kernel::kAuto);
  ~InvariantGemm();

  // c[i * ldc + j] for i < m, j < n, as the contract above; a[i * lda + p].
  // REQUIRES: lda >= k, ldc >= n, no overlap between a and c.
  void Multiply(const float* a, int64_t m, int64_t lda, float* c, int64_t ldc) const;

  // Columns per block of MultiplyBlock; every kernel's panel width is a
  // multiple of it.
  static constexpr int64_t kBlockWidth = 8;
  int64_t num_blocks() const { return (n_ + kBlockWidth - 1) / kBlockWidth; }

  // The columns [8·block, 8·block + 8) of C for scattered rows, one
  // stretch of the chain at a time: c_rows[r] holds 8 floats, the chain of
  // each of the block's columns through p_begin (+0.0f for p_begin = 0), and
  // on return through p_end, for the row a_rows[r] (k floats). Run over
  // consecutive ranges covering [0, k) it leaves exactly what Multiply writes
  // for that row and column (lanes past n hold 0). For the fast exact
  // encode: a few columns of many rows, the p range split so the rows'
  // slices stay in cache. REQUIRES: 0 <= block < num_blocks(),
  // 0 <= p_begin <= p_end <= k, num_rows >= 0.
  void MultiplyBlock(const float* const* a_rows, int64_t num_rows, int64_t block, int64_t p_begin,
                     int64_t p_end, float* const* c_rows) const;

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  Kernel kernel() const { return kernel_; }
  std::string_view kernel_name() const;
  // Bytes held by the packed copy of B.
  int64_t packed_bytes() const;

  // The kernel kAuto picks on this CPU.
  static Kernel BestKernel();

 private:
  InvariantGemm(int64_t k, int64_t n, Kernel kernel);

  // Computes the column panels [panel_begin, panel_end) for rows [0, m).
  void MultiplyPanels(const float* a, int64_t m, int64_t lda, float* c, int64_t ldc,
                      int64_t panel_begin, int64_t panel_end) const;

  int64_t k_;
  int64_t n_;
  Kernel kernel_;
  int64_t panel_width_;  // columns per packed panel
  int64_t num_panels_;
  struct AlignedFree {
    void operator()(float* p) const;
  };
  std::unique_ptr<float[], AlignedFree> packed_;  // num_panels_ × k_ × panel_width_
};

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_INVARIANT_GEMM_H_
