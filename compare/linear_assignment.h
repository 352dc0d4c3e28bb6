// Exact linear assignment: the one-to-one matching of the rows and columns
// of a dense similarity matrix with the largest total similarity (the
// problem scipy.optimize.linear_sum_assignment(maximize=True) solves).
//
// Algorithm: Jonker-Volgenant on the cost -similarity in float64, with the
// column potentials v and the row potentials implicit (u_i = min_j c_ij - v_j
// for an assigned row). Square matrices get the full JV initialisation:
// column reduction, reduction transfer, then two passes of augmenting row
// reduction (within a budget of 8 row scans per row); rectangular ones
// start from v = 0 with augmenting row reduction only (column reduction
// would give unassigned columns potentials the rectangular optimality
// conditions forbid). Every row still free is then assigned by a shortest
// augmenting path (Dijkstra over the reduced costs, preferring a free
// column among equally near ones; each step scans one full row). On cosine
// matrices with a clear best partner for most rows the initialisation
// assigns nearly everything and the run stays far below the O(n^3) worst
// case; the cost is in the rows without one (a random-like sub-problem),
// the more so the wider the matrix. bench/compare_bench measures a
// 16384 x 16384 cosine matrix with a quarter of such rows, and a purely
// random 4096 x 4096 one.
//
// Exactness: the result is an optimum of the float64 problem; the dual
// certificate is built in float64 from the float32 entries, so the total
// is the optimum up to float64 rounding (~1e-12 relative), not an
// approximation. Ties may be broken either way (any optimum may come back).
//
// Memory: O(rows + cols) besides the input; when rows > cols the problem is
// solved transposed on a float32 copy of the matrix (rows x cols x 4 bytes).
//
// Thread safety: a pure function; it runs on the caller's thread.
#ifndef SAEDICT_COMPARE_LINEAR_ASSIGNMENT_H_
#define SAEDICT_COMPARE_LINEAR_ASSIGNMENT_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace saedict::compare {

struct Assignment {
  std::vector<int64_t> row_to_col;  // rows entries; -1 = row left unmatched (rows > cols)
  std::vector<int64_t> col_to_row;  // cols entries; -1 = column left unmatched
  double total = 0;                 // sum of similarity[r][row_to_col[r]] over matched rows (float64)
};

// Maximum-total-similarity one-to-one assignment of a dense rows x cols
// similarity matrix (row-major float32), exact: matches min(rows, cols)
// pairs and no other assignment has a larger total (float64 arithmetic
// inside; see the header comment).
//
// Errors: INVALID_ARGUMENT when rows or cols <= 0, when similarity.size()
// != rows * cols, or when an entry is not finite (naming its row and
// column); CANCELLED when cancelled() says true. cancelled (may be null) is
// polled at the start, every 256 rows of the initialisation and every few
// hundred steps of the augmenting-path search.
absl::StatusOr<Assignment> MaxSimilarityAssignment(absl::Span<const float> similarity,
                                                   int64_t rows, int64_t cols,
                                                   const std::function<bool()>& cancelled = nullptr);

}  // namespace saedict::compare

#endif  // SAEDICT_COMPARE_LINEAR_ASSIGNMENT_H_
