#include "tests/server/corpus_test_util.h"

#include <algorithm>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/server/grpc_test_util.h"

namespace saedict::testing {

std::vector<TestDoc> MakeDocs(int count, int min_len, int max_len, int64_t d_in, uint64_t seed,
                              uint64_t first_id) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> len(min_len, max_len), token(0, 99);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<TestDoc> docs(count);
  for (int i = 0; i < count; ++i) {
    TestDoc& d = docs[i];
    d.id = first_id + i;
    const int n = len(rng);
    for (int t = 0; t < n; ++t) {
      d.tokens.push_back(token(rng));
      d.strings.push_back(absl::StrCat("t", d.tokens.back()));
    }
    d.activations.resize(static_cast<size_t>(n * d_in));
    for (float& v : d.activations) v = normal(rng);
  }
  return docs;
}

v1::IngestDocument ToWire(const TestDoc& doc) {
  v1::IngestDocument out;
  out.set_doc_id(doc.id);
  out.set_token_ids(Bytes(doc.tokens));
  for (const std::string& s : doc.strings) out.add_token_strings(s);
  const int64_t n = static_cast<int64_t>(doc.tokens.size());
  const int64_t d_in = n == 0 ? 0 : static_cast<int64_t>(doc.activations.size()) / n;
  *out.mutable_activations() = F32Tensor(doc.activations, {n, d_in});
  return out;
}

v1::IngestRequest MakeIngestRequest(const std::string& dictionary_id, const std::string& corpus,
                                    const std::vector<TestDoc>& docs,
                                    v1::ValuePrecision precision) {
  v1::IngestRequest r;
  r.set_dictionary_id(dictionary_id);
  r.set_corpus(corpus);
  r.set_value_precision(precision);
  for (const TestDoc& d : docs) *r.add_documents() = ToWire(d);
  return r;
}

IngestOutcome RunIngest(v1::Saedict::Stub& stub, const std::vector<v1::IngestRequest>& requests) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto stream = stub.Ingest(&ctx);
  IngestOutcome out;
  std::thread writer([&] {
    for (const v1::IngestRequest& r : requests) {
      if (!stream->Write(r)) break;
    }
    stream->WritesDone();
  });
  v1::IngestAck ack;
  while (stream->Read(&ack)) out.acks.push_back(ack);
  writer.join();
  out.status = stream->Finish();
  return out;
}

std::map<uint32_t, RecomputedFeature> Recompute(v1::Saedict::Stub& stub,
                                                const std::string& dictionary_id,
                                                const std::string& corpus,
                                                const std::vector<uint64_t>& doc_ids,
                                                std::map<uint64_t, engine::SparseCodes>* codes_out) {
  std::map<uint32_t, RecomputedFeature> out;
  for (uint64_t id : doc_ids) {
    grpc::ClientContext ctx;
    v1::GetActivationsRequest req;
    req.set_dictionary_id(dictionary_id);
    req.set_corpus(corpus);
    req.set_doc_id(id);
    v1::GetActivationsResponse resp;
    grpc::Status s = stub.GetActivations(&ctx, req, &resp);
    if (!s.ok()) {
      ADD_FAILURE() << "GetActivations doc " << id << ": " << s.error_message();
      continue;
    }
    engine::SparseCodes codes = CodesOf(resp.codes());
    for (int64_t t = 0; t < codes.num_rows; ++t) {
      for (uint64_t e = codes.row_offsets[t]; e < codes.row_offsets[t + 1]; ++e) {
        RecomputedFeature& f = out[codes.indices[e]];
        const float v = codes.values[e];
        if (f.count == 0 || v > f.max) f.max = v;
        if (f.count == 0 || v < f.min) f.min = v;
        ++f.count;
        f.sum += v;
        f.sum_sq += static_cast<double>(v) * v;
        f.entries.emplace_back(v, id, t);
      }
    }
    if (codes_out != nullptr) (*codes_out)[id] = std::move(codes);
  }
  for (auto& [feature, f] : out) {
    std::sort(f.entries.begin(), f.entries.end(), [](const auto& a, const auto& b) {
      if (std::get<0>(a) != std::get<0>(b)) return std::get<0>(a) > std::get<0>(b);
      return std::make_pair(std::get<1>(a), std::get<2>(a)) <
             std::make_pair(std::get<1>(b), std::get<2>(b));
    });
  }
  return out;
}

}  // namespace saedict::testing
