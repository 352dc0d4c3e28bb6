// Helpers for tests of the corpus RPCs over gRPC: random documents, ingest
// streams, and recomputation of feature statistics from stored codes (the
// ground truth the server's statistics and inverted index must match).
// Client side only (used by in-process and process-level tests).
// Thread safety: free functions; the stub may be shared between threads.
#ifndef SAEDICT_TESTS_SERVER_CORPUS_TEST_UTIL_H_
#define SAEDICT_TESTS_SERVER_CORPUS_TEST_UTIL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/sparse_codes.h"
#include "grpcpp/grpcpp.h"
#include "saedict/v1/saedict.grpc.pb.h"

namespace saedict::testing {

struct TestDoc {
  uint64_t id = 0;
  std::vector<int32_t> tokens;
  std::vector<std::string> strings;  // one per token ("t<id>")
  std::vector<float> activations;    // [tokens, d_in]
};

// `count` documents with ids first_id.., lengths in [min_len, max_len],
// token ids < 100, N(0,1) activations. Deterministic per seed.
std::vector<TestDoc> MakeDocs(int count, int min_len, int max_len, int64_t d_in, uint64_t seed,
                              uint64_t first_id = 0);

v1::IngestDocument ToWire(const TestDoc& doc);
// A request with all of `docs` (dictionary_id / corpus may be empty).
v1::IngestRequest MakeIngestRequest(const std::string& dictionary_id, const std::string& corpus,
                                    const std::vector<TestDoc>& docs,
                                    v1::ValuePrecision precision = v1::VALUE_PRECISION_F32);

struct IngestOutcome {
  grpc::Status status;
  std::vector<v1::IngestAck> acks;
};
// Sends every request on one Ingest stream and collects the acks.
IngestOutcome RunIngest(v1::Saedict::Stub& stub, const std::vector<v1::IngestRequest>& requests);

// Statistics of one feature recomputed from stored codes.
struct RecomputedFeature {
  int64_t count = 0;
  double sum = 0, sum_sq = 0;
  float max = 0, min = 0;
  // (value, doc, pos) of every activation, value descending, then doc, pos.
  std::vector<std::tuple<float, uint64_t, int64_t>> entries;
};
// GetActivations of every doc → per-feature statistics (ADD_FAILUREs on
// RPC errors). Also returns the codes by doc id.
std::map<uint32_t, RecomputedFeature> Recompute(v1::Saedict::Stub& stub,
                                                const std::string& dictionary_id,
                                                const std::string& corpus,
                                                const std::vector<uint64_t>& doc_ids,
                                                std::map<uint64_t, engine::SparseCodes>* codes = nullptr);

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_SERVER_CORPUS_TEST_UTIL_H_
