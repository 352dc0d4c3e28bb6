// Neighbour precompute: every feature's top-N nearest features within its
// own dictionary (itself excluded), by decoder (or encoder) cosine, in
// blocks of queries. On an exact index the unit rows are packed once for
// engine::InvariantGemm and each block is one GEMM followed by the exact
// selection (FeatureIndex::SelectExact), so the lists are the exact top-N by
// float64 cosine at GEMM speed (bench/index_bench measures the ratio to the
// GEMM alone); the packed copy (d_sae x d_in floats) lives for the run only.
// On an approximate index each block is one FAISS search. A feature whose
// direction is zero gets no neighbours.
//
// Thread safety: a pure function of the index; the sink runs on the
// caller's thread, block after block, in feature order.
#ifndef SAEDICT_INDEX_NEIGHBOURS_H_
#define SAEDICT_INDEX_NEIGHBOURS_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "index/feature_index.h"

namespace saedict::index {

struct NeighbourOptions {
  int top_n = 32;
  int64_t block = 256;  // features per batched search
};

// sink(first_feature, lists) receives the lists of features first_feature,
// first_feature + 1, ...; an error it returns stops the run and is returned.
// cancelled() is polled between blocks (CANCELLED when it says true).
using NeighbourSink =
    std::function<absl::Status(int64_t first_feature, std::vector<std::vector<Hit>> lists)>;
absl::Status PrecomputeNeighbours(const FeatureIndex& index, const NeighbourOptions& options,
                                  const NeighbourSink& sink,
                                  const std::function<bool()>& cancelled = nullptr);

}  // namespace saedict::index

#endif  // SAEDICT_INDEX_NEIGHBOURS_H_
