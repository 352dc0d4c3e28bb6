// HalfRows: unit directions stored in IEEE half precision, and a scan that
// scores all of them against one query with half the memory traffic of a
// float32 matrix-vector product (the scan is memory bound: 16384 x 2304
// halves are 75 MB against 151 MB as float32).
//
// Score(q)[i] = sum_j q[j] * half(u_i[j]), accumulated in float32 (AVX2 +
// F16C + FMA when the CPU has them, chosen at run time; a portable loop
// otherwise). For unit rows and a unit query, |Score(q)[i] - cos(q, u_i)|
// <= ErrorBound(), with cos computed exactly: that bound is what lets the
// exact search keep every row that could still be in the answer and
// recompute only those exactly (see feature_index.h).
//
// Thread safety: immutable after construction; Score is const and splits
// rows across engine::ParallelFor's pool.
#ifndef SAEDICT_INDEX_HALF_ROWS_H_
#define SAEDICT_INDEX_HALF_ROWS_H_

#include <cstdint>
#include <vector>

namespace saedict::index {

class HalfRows {
 public:
  // unit_rows: [n, d] row-major float32 unit vectors (or zero rows).
  HalfRows(const std::vector<float>& unit_rows, int64_t n, int64_t d);

  int64_t size() const { return n_; }
  int64_t dim() const { return d_; }
  int64_t bytes() const { return static_cast<int64_t>(halves_.size() * sizeof(uint16_t)); }

  // scores[i] for every row i in [0, size()); `query` has dim() floats.
  void Score(const float* query, float* scores) const;

  // Bound on |Score(q)[i] - q.u_i| (exact dot of the float64 unit vectors
  // the float32 ones were rounded from) for unit q and u_i: half rounding
  // (2^-11 relative, 2^-25 absolute for half subnormals), float32
  // accumulation over d terms, and the float32 rounding of both unit vectors.
  double ErrorBound() const;

  // "avx2+f16c" or "portable": the kernel this CPU runs.
  static const char* KernelName();

 private:
  int64_t n_ = 0;
  int64_t d_ = 0;
  int64_t stride_ = 0;  // d rounded up to 32; padding is zero
  std::vector<uint16_t> halves_;
};

}  // namespace saedict::index

#endif  // SAEDICT_INDEX_HALF_ROWS_H_
