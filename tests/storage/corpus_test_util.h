// Helpers shared by the CorpusStore tests: dictionary records, documents
// and batches written out row by row, random documents, and statistics recomputed from the stored
// codes (GetCodes) to compare with what the store maintains incrementally.
#ifndef SAEDICT_TESTS_STORAGE_CORPUS_TEST_UTIL_H_
#define SAEDICT_TESTS_STORAGE_CORPUS_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "storage/store.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::storage::testing {

inline records::v1::DictionaryRecord DictRecord(const std::string& id, int64_t d_sae) {
  records::v1::DictionaryRecord r;
  r.mutable_info()->set_id(id);
  r.mutable_info()->set_d_sae(d_sae);
  return r;
}

// A document of `tokens` tokens, each with up to `max_nnz` active features
// of d_sae; values mostly positive, some negative, a few exact zeros.
// One activation list per token: (feature, value).
using Row = std::vector<std::pair<uint32_t, float>>;

// A document with the given tokens and one codes row per entry of `rows`.
inline IngestDocument Doc(uint64_t id, std::vector<int32_t> tokens, const std::vector<Row>& rows,
                          std::vector<std::string> strings = {}) {
  IngestDocument d;
  d.doc_id = id;
  d.token_ids = std::move(tokens);
  d.token_strings = std::move(strings);
  for (const Row& row : rows) {
    for (auto [idx, v] : row) {
      d.codes.indices.push_back(idx);
      d.codes.values.push_back(v);
    }
    d.codes.row_offsets.push_back(d.codes.indices.size());
    ++d.codes.num_rows;
  }
  return d;
}

inline IngestBatch Batch(const std::string& dict, const std::string& corpus,
                         std::vector<IngestDocument> docs,
                         ValuePrecision precision = ValuePrecision::kF32,
                         const std::string& weights_sha256 = "", int64_t d_sae = 64) {
  IngestBatch b;
  b.dictionary_id = dict;
  b.weights_sha256 = weights_sha256;
  b.d_sae = d_sae;
  b.corpus = corpus;
  b.precision = precision;
  b.documents = std::move(docs);
  return b;
}

inline IngestDocument RandomDocument(std::mt19937& rng, uint64_t doc_id, int tokens, uint32_t d_sae,
                                     int max_nnz, bool strings = true) {
  IngestDocument doc;
  doc.doc_id = doc_id;
  for (int t = 0; t < tokens; ++t) {
    doc.token_ids.push_back(static_cast<int32_t>(rng() % 500));
    if (strings) doc.token_strings.push_back("tok" + std::to_string(doc.token_ids.back()));
    std::vector<uint32_t> row;
    const int nnz = static_cast<int>(rng() % (max_nnz + 1));
    for (int j = 0; j < nnz; ++j) row.push_back(rng() % d_sae);
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    for (uint32_t idx : row) {
      const uint32_t kind = rng() % 20;
      float v = std::uniform_real_distribution<float>(0.01f, 8.0f)(rng);
      if (kind == 0) v = -v;
      if (kind == 1) v = 0.0f;
      if (kind == 2) v = 1.0f;  // ties
      doc.codes.indices.push_back(idx);
      doc.codes.values.push_back(v);
    }
    doc.codes.row_offsets.push_back(doc.codes.indices.size());
    ++doc.codes.num_rows;
  }
  return doc;
}

struct RecomputedFeature {
  int64_t count = 0;
  double sum = 0;
  double sum_abs = 0;
  double sum_sq = 0;
  std::optional<float> max, min;
  std::map<int32_t, int64_t> bins;
};

struct Recomputed {
  std::map<uint32_t, RecomputedFeature> features;
  DictionaryTotals totals;
};

// Statistics of dictionary `dict` over the stored codes of `docs` in `corpus`.
inline Recomputed Recompute(CorpusStore* store, const std::string& dict, const std::string& corpus,
                            const std::vector<uint64_t>& docs) {
  Recomputed out;
  for (uint64_t doc : docs) {
    auto codes = store->GetCodes(dict, corpus, doc);
    EXPECT_TRUE(codes.ok()) << codes.status();
    if (!codes.ok() || !codes->has_value()) continue;
    const DocumentCodes& c = (*codes)->codes;
    out.totals.tokens += c.num_rows;
    out.totals.documents += 1;
    for (size_t j = 0; j < c.values.size(); ++j) {
      const float v = c.values[j];
      RecomputedFeature& f = out.features[c.indices[j]];
      ++f.count;
      f.sum += v;
      f.sum_abs += std::fabs(v);
      f.sum_sq += double{v} * v;
      f.max = f.max ? std::max(*f.max, v) : v;
      f.min = f.min ? std::min(*f.min, v) : v;
      ++f.bins[HistogramBin(v)];
    }
  }
  return out;
}

// Every feature below d_sae and the totals match the recomputation.
inline void ExpectStatsMatch(CorpusStore* store, const std::string& dict, uint32_t d_sae,
                             const Recomputed& expected) {
  for (uint32_t feature = 0; feature < d_sae; ++feature) {
    SCOPED_TRACE(::testing::Message() << "feature " << feature);
    auto got = store->GetFeatureStats(dict, feature);
    ASSERT_TRUE(got.ok()) << got.status();
    auto it = expected.features.find(feature);
    if (it == expected.features.end()) {
      EXPECT_EQ(got->count, 0);
      EXPECT_FALSE(got->max.has_value());
      EXPECT_TRUE(got->bins.empty());
      continue;
    }
    const RecomputedFeature& f = it->second;
    EXPECT_EQ(got->count, f.count);
    EXPECT_NEAR(got->sum, f.sum, 1e-6 * std::max(1.0, f.sum_abs));
    EXPECT_NEAR(got->sum_sq, f.sum_sq, 1e-6 * std::max(1.0, f.sum_sq));
    EXPECT_EQ(got->max, f.max);
    std::vector<std::pair<int32_t, int64_t>> bins(f.bins.begin(), f.bins.end());
    EXPECT_EQ(got->bins, bins);
  }
  auto totals = store->GetDictionaryTotals(dict);
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->tokens, expected.totals.tokens);
  EXPECT_EQ(totals->documents, expected.totals.documents);
}

}  // namespace saedict::storage::testing

#endif  // SAEDICT_TESTS_STORAGE_CORPUS_TEST_UTIL_H_
