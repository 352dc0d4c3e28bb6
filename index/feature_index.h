// FeatureIndex: cosine search over one dictionary's decoder (or encoder)
// directions, backed by a FAISS index chosen by a factory string.
//
// Which path serves a query (measured: Debian's libfaiss.a is compiled for
// baseline x86-64, so its own distance loops are SSE-only; see README):
//   - exact index ("Flat", the default up to IndexConfig::auto_flat_max_elements):
//     FAISS holds and persists the float32 unit vectors. One to
//     kGemmMinQueries-1 queries: a half-precision scan (HalfRows, half the
//     bytes of float32) ranks every row within a proven error bound, and
//     every row that could still be in the answer is rescored exactly.
//     Batches: one OpenBLAS sgemm over FAISS's stored vectors per block of
//     queries, same candidate rule with the float32 bound.
//   - approximate index (any other factory string, e.g. "IVF1024,Flat",
//     "HNSW32"): FAISS search for 2 top_n + 8 candidates, rescored exactly.
// Every score returned is the float64 cosine from the dictionary's raw
// weights (Directions::ExactCosine), and results are ordered by score
// descending, then feature ascending. For the exact index the returned set
// is the exact top-N; for an approximate one it is what FAISS found.
//
// Persistence: Save writes the FAISS index with faiss::write_index and a
// small text manifest beside it (weights SHA-256, kind, factory, shape and
// the SHA-256 of the index file); Load accepts the file only when all of
// them match, so a stale or damaged file is never served (the caller
// rebuilds). FAISS exceptions become absl::Status here and nowhere else.
//
// Thread safety: Build/Load produce an immutable object; Search may run
// concurrently from any number of threads.
#ifndef SAEDICT_INDEX_FEATURE_INDEX_H_
#define SAEDICT_INDEX_FEATURE_INDEX_H_

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "index/directions.h"

namespace faiss {
struct Index;
}

namespace saedict::index {

struct IndexConfig {
  // A FAISS factory string ("Flat", "IVF1024,Flat", "HNSW32", "IVF256,PQ32",
  // ...), or "auto": "Flat" while d_sae * d_in <= auto_flat_max_elements
  // (measured: the exact single-query scan streams its half-precision rows
  // at ~19 GB/s from DRAM on 2 cores, so 40 Mi elements = 84 MB answer in
  // ~4.4 ms, inside the 5 ms target; 16384 x 2304 took 3.9 ms),
  // else "IVF<n>,Flat" with n = 2 sqrt(d_sae) rounded up to a power of two.
  std::string factory = "auto";
  int64_t auto_flat_max_elements = int64_t{40} << 20;  // 16384 x 2304 = 37.7M is exact
  int ivf_nprobe = 0;       // 0: max(8, nlist / 64)
  int hnsw_ef_search = 0;   // 0: 128
};

// The factory string `config` picks for a dictionary of n directions of d.
std::string ResolveFactory(const IndexConfig& config, int64_t n, int64_t d);

struct Hit {
  uint32_t feature = 0;
  double cosine = 0;
};

struct SearchOptions {
  int top_n = 10;  // >= 1
  double min_cosine = -std::numeric_limits<double>::infinity();
};

class FeatureIndex {
 public:
  // Queries from this many on go through one sgemm per block (exact index).
  static constexpr int kGemmMinQueries = 8;

  // Builds the index; progress(fraction) is called now and then.
  // INVALID_ARGUMENT for a factory string FAISS rejects (with FAISS's message).
  static absl::StatusOr<std::unique_ptr<FeatureIndex>> Build(
      std::shared_ptr<const engine::Dictionary> dictionary, DirectionKind kind,
      const IndexConfig& config, const std::function<void(double)>& progress = nullptr);

  // Reads what Save wrote under `path_prefix`. NOT_FOUND when a file is
  // missing; FAILED_PRECONDITION when the manifest names other weights,
  // another kind or factory; DATA_LOSS when a file is damaged (bad manifest,
  // checksum mismatch, FAISS cannot read it, wrong shape).
  static absl::StatusOr<std::unique_ptr<FeatureIndex>> Load(
      const std::filesystem::path& path_prefix,
      std::shared_ptr<const engine::Dictionary> dictionary, DirectionKind kind,
      const IndexConfig& config, const std::string& weights_sha256);

  // Writes <prefix>.faiss and <prefix>.manifest (each through a temporary
  // file and a rename). UNAVAILABLE on I/O errors.
  absl::Status Save(const std::filesystem::path& path_prefix,
                    const std::string& weights_sha256) const;

  ~FeatureIndex();

  // unit_queries: each of dim() components with norm 1 (UnitQuery).
  // exclude[q] (when given, one per query): a feature left out of query q's
  // answer (the query feature itself), or -1.
  absl::StatusOr<std::vector<std::vector<Hit>>> Search(
      const std::vector<std::vector<double>>& unit_queries, const SearchOptions& options,
      const std::vector<int64_t>& exclude = {}) const;

  // The exact top-N of one query from approximate scores of every row
  // (|scores[i] - cos| <= bound): keeps each row that could still be in the
  // answer, rescores those exactly (float64). What the exact paths share;
  // public for the neighbour precompute's own GEMM.
  std::vector<Hit> SelectExact(const std::vector<double>& unit_query, const float* scores,
                               double bound, const SearchOptions& options, int64_t exclude) const;
  // Bound of a float32 FMA dot product of two float32-rounded unit vectors of d.
  static double Float32Bound(int64_t d);

  bool exact() const { return exact_; }
  const std::string& factory() const { return factory_; }
  int64_t size() const { return directions_.size(); }
  int64_t dim() const { return directions_.dim(); }
  const Directions& directions() const { return directions_; }
  // Memory held by the index, bytes: FAISS's (its file size once saved or
  // loaded, which is what it holds in memory for Flat and IVF-Flat; size x
  // dim x 4 before) plus the half copy of the exact index.
  int64_t memory_bytes() const;

 private:
  FeatureIndex(Directions directions, std::string factory, std::unique_ptr<faiss::Index> index);
  void Configure(const IndexConfig& config);
  absl::StatusOr<std::vector<std::vector<Hit>>> SearchExactGemm(
      const std::vector<std::vector<double>>& unit_queries, const SearchOptions& options,
      const std::vector<int64_t>& exclude) const;
  absl::StatusOr<std::vector<std::vector<Hit>>> SearchApproximate(
      const std::vector<std::vector<double>>& unit_queries, const SearchOptions& options,
      const std::vector<int64_t>& exclude) const;

  Directions directions_;
  std::string factory_;
  bool exact_ = false;
  std::unique_ptr<faiss::Index> index_;
  std::unique_ptr<class HalfRows> half_;  // exact index only
  mutable std::atomic<int64_t> file_bytes_{0};  // set by Save / Load
};

}  // namespace saedict::index

#endif  // SAEDICT_INDEX_FEATURE_INDEX_H_
