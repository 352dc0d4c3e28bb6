// CompareDictionaries and Evaluate over the wire, against a real in-process
// SaedictServer (real RocksDB directory, real batcher): the stream's shape
// (progress, one summary, per-feature matches in batches), the answers on
// cases whose result is known (a dictionary against itself, a permuted
// copy, a corpus both were ingested on), and every error code a client can
// get. The algorithms are tested in depth by tests/compare/.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "formats/codecs/json.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/server/corpus_test_util.h"
#include "tests/server/grpc_test_fixture.h"
#include "tests/test_util/status_matchers.h"
#include "wire/tensor_wire.h"
#include "wire/wire_codec.h"

namespace saedict::testing {
namespace {

using ::testing::HasSubstr;

struct CompareStream {
  grpc::Status status;
  int progress = 0;
  int summaries = 0;
  bool summary_before_matches = true;
  v1::CompareSummary summary;
  std::vector<v1::FeatureMatch> a, b;
  int match_messages = 0;
};

class GrpcCompareTest : public GrpcServerTest {
 protected:
  CompareStream Compare(const v1::CompareDictionariesRequest& r) {
    CompareStream out;
    auto ctx = Ctx();
    std::unique_ptr<grpc::ClientReader<v1::CompareDictionariesResponse>> reader =
        stub_->CompareDictionaries(ctx.get(), r);
    v1::CompareDictionariesResponse m;
    while (reader->Read(&m)) {
      if (m.has_progress()) {
        ++out.progress;
        EXPECT_GE(m.progress().fraction(), 0);
        EXPECT_LE(m.progress().fraction(), 1);
      } else if (m.has_summary()) {
        ++out.summaries;
        out.summary = m.summary();
      } else if (m.has_matches()) {
        if (out.summaries == 0) out.summary_before_matches = false;
        ++out.match_messages;
        auto& list = m.matches().side() == v1::COMPARE_SIDE_A ? out.a : out.b;
        if (m.matches().side() == v1::COMPARE_SIDE_A) {
          EXPECT_TRUE(out.b.empty()) << "A before B";
        }
        for (const v1::FeatureMatch& f : m.matches().matches()) list.push_back(f);
      }
    }
    out.status = reader->Finish();
    return out;
  }

  // Writes `d` as a SAELens folder at `rel` and loads it as `id`.
  void LoadDictionary(const std::string& id, const std::string& rel, const engine::Dictionary& d) {
    ASSERT_TRUE(WriteSaeLensFolder(root_ / rel, d).ok());
    ASSERT_THAT(Load(id, rel), GrpcOk());
  }

  grpc::Status Evaluate(const std::vector<v1::EvaluateRequest>& requests,
                        v1::EvaluateResponse* out) {
    auto ctx = Ctx();
    std::unique_ptr<grpc::ClientWriter<v1::EvaluateRequest>> writer =
        stub_->Evaluate(ctx.get(), out);
    for (const v1::EvaluateRequest& r : requests) {
      if (!writer->Write(r)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }
};

v1::CompareDictionariesRequest DecoderRequest(const std::string& a, const std::string& b) {
  v1::CompareDictionariesRequest r;
  r.set_dictionary_a(a);
  r.set_dictionary_b(b);
  r.set_method(v1::COMPARE_METHOD_DECODER);
  return r;
}

// `d` with its features reordered: new feature i is old feature perm[i].
engine::Dictionary Permuted(const engine::Dictionary& d, const std::vector<int64_t>& perm) {
  engine::Dictionary out = d;
  const int64_t n = d.config.d_sae, din = d.config.d_in;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < din; ++j) {
      out.w_dec[i * din + j] = d.w_dec[perm[i] * din + j];
      out.w_enc[j * n + i] = d.w_enc[j * n + perm[i]];
    }
    if (!d.b_enc.empty()) out.b_enc[i] = d.b_enc[perm[i]];
  }
  return out;
}

TEST_F(GrpcCompareTest, DecoderSelfComparisonStreamsSummaryThenMatches) {
  LoadDictionary("a", "a", RandomDictionary(engine::Architecture::kTopK, kDIn, kDSae, kK, 3));
  v1::CompareDictionariesRequest r = DecoderRequest("a", "a");
  r.set_matches_per_message(10);
  const CompareStream s = Compare(r);
  ASSERT_THAT(s.status, GrpcOk());
  EXPECT_GE(s.progress, 1);
  EXPECT_EQ(s.summaries, 1);
  EXPECT_TRUE(s.summary_before_matches);
  EXPECT_EQ(s.match_messages, 2 * 7);  // 64 features in batches of 10, each side
  EXPECT_NEAR(s.summary.mean_max_a_to_b(), 1.0, 1e-9);
  EXPECT_NEAR(s.summary.mean_max_b_to_a(), 1.0, 1e-9);
  EXPECT_EQ(s.summary.frac_matched_a(), 1.0);
  EXPECT_TRUE(s.summary.has_assignment());
  EXPECT_NEAR(s.summary.assignment_mean(), 1.0, 1e-9);
  EXPECT_EQ(s.summary.assigned_pairs(), kDSae);
  EXPECT_EQ(s.summary.unmatched_a(), 0);
  EXPECT_EQ(s.summary.match_threshold(), 0.7);
  EXPECT_FALSE(s.summary.weights_sha256_a().empty());
  ASSERT_EQ(s.a.size(), static_cast<size_t>(kDSae));
  ASSERT_EQ(s.b.size(), static_cast<size_t>(kDSae));
  for (int64_t i = 0; i < kDSae; ++i) {
    EXPECT_EQ(s.a[i].feature(), i);
    EXPECT_EQ(s.a[i].best_partner(), i);
    EXPECT_EQ(s.a[i].assigned_partner(), i);
    EXPECT_TRUE(s.a[i].matched());
  }
  r.set_skip_matches(true);
  r.set_skip_assignment(true);
  const CompareStream summary_only = Compare(r);
  ASSERT_THAT(summary_only.status, GrpcOk());
  EXPECT_EQ(summary_only.match_messages, 0);
  EXPECT_FALSE(summary_only.summary.has_assignment());
}

TEST_F(GrpcCompareTest, DecoderAssignmentRecoversAPermutation) {
  const engine::Dictionary d = RandomDictionary(engine::Architecture::kTopK, kDIn, kDSae, kK, 5);
  std::vector<int64_t> perm(kDSae);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937(9));
  LoadDictionary("a", "a", d);
  LoadDictionary("p", "p", Permuted(d, perm));
  const CompareStream s = Compare(DecoderRequest("p", "a"));
  ASSERT_THAT(s.status, GrpcOk());
  ASSERT_EQ(s.a.size(), static_cast<size_t>(kDSae));
  for (int64_t i = 0; i < kDSae; ++i) {
    EXPECT_EQ(s.a[i].assigned_partner(), perm[i]) << "feature " << i;
    EXPECT_NEAR(s.a[i].assigned_similarity(), 1.0, 1e-9);
    EXPECT_EQ(s.b[perm[i]].assigned_partner(), i);
  }
}

TEST_F(GrpcCompareTest, CompareErrors) {
  LoadDictionary("a", "a", RandomDictionary(engine::Architecture::kTopK, kDIn, kDSae, kK, 3));
  LoadDictionary("wide", "wide",
                 RandomDictionary(engine::Architecture::kTopK, kDIn * 2, kDSae, kK, 4));
  EXPECT_THAT(Compare(DecoderRequest("a", "ghost")).status,
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("ghost")));
  EXPECT_THAT(Compare(DecoderRequest("", "a")).status,
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("dictionary_a")));
  EXPECT_THAT(Compare(DecoderRequest("a", "")).status,
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("dictionary_b")));
  EXPECT_THAT(Compare(DecoderRequest("a", "wide")).status,
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("activation method")));
  v1::CompareDictionariesRequest r = DecoderRequest("a", "a");
  r.set_method(v1::COMPARE_METHOD_UNSPECIFIED);
  EXPECT_THAT(Compare(r).status,
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("method")));
  r = DecoderRequest("a", "a");
  r.set_match_threshold(1.5);
  EXPECT_THAT(Compare(r).status,
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("match_threshold: 1.5")));
  r.set_match_threshold(std::nan(""));
  EXPECT_THAT(Compare(r).status,
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("match_threshold")));
  r = DecoderRequest("a", "a");
  r.set_matches_per_message(70000);
  EXPECT_THAT(Compare(r).status,
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("matches_per_message")));
  r = DecoderRequest("a", "wide");
  r.set_method(v1::COMPARE_METHOD_ACTIVATION);
  EXPECT_THAT(Compare(r).status,
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("corpus")));
  r.set_corpus("never-ingested");
  EXPECT_THAT(Compare(r).status,
              GrpcStatusIs(grpc::StatusCode::FAILED_PRECONDITION, HasSubstr("share no")));
}

TEST_F(GrpcCompareTest, ActivationMethodOverAStoredCorpus) {
  // The same weights under two ids: identical stored codes, so every feature
  // that fires correlates 1 with itself.
  LoadDictionary("a", "a", RandomDictionary(engine::Architecture::kTopK, kDIn, kDSae, kK, 3));
  LoadDictionary("self", "self", RandomDictionary(engine::Architecture::kTopK, kDIn, kDSae, kK, 3));
  const std::vector<TestDoc> docs = MakeDocs(12, 5, 40, kDIn, 21);
  int64_t tokens = 0;
  for (const TestDoc& d : docs) tokens += static_cast<int64_t>(d.tokens.size());
  ASSERT_THAT(RunIngest(*stub_, {MakeIngestRequest("a", "c", docs)}).status, GrpcOk());
  ASSERT_THAT(RunIngest(*stub_, {MakeIngestRequest("self", "c", docs)}).status, GrpcOk());
  v1::CompareDictionariesRequest r = DecoderRequest("a", "self");
  r.set_method(v1::COMPARE_METHOD_ACTIVATION);
  r.set_corpus("c");
  const CompareStream s = Compare(r);
  ASSERT_THAT(s.status, GrpcOk());
  EXPECT_EQ(s.summary.tokens(), tokens);
  EXPECT_GE(s.summary.passes(), 1);
  EXPECT_GT(s.summary.alive_a(), 0);
  EXPECT_NEAR(s.summary.mean_max_a_to_b(), 1.0, 1e-9);  // the same weights: identical codes
  EXPECT_NEAR(s.summary.svcca(), 1.0, 1e-6);
  ASSERT_EQ(s.a.size(), static_cast<size_t>(kDSae));
  for (const v1::FeatureMatch& m : s.a) {
    if (m.best_partner() < 0) continue;  // never fired on these docs
    EXPECT_NEAR(m.best_similarity(), 1.0, 1e-9) << "feature " << m.feature();
  }
}

// A rotated copy: A' = A in a rotated basis (W_enc' = R^T W_enc, W_dec' =
// W_dec R, b_dec' = b_dec R), fed the rotated activations x R. Its codes
// equal A's, so the activation method pairs every feature with itself at
// correlation ~1, while the decoder method, comparing directions in one
// basis, finds no good matches.
TEST_F(GrpcCompareTest, ARotatedCopyMatchesByActivationNotByDecoder) {
  const engine::Dictionary a = RandomDictionary(engine::Architecture::kTopK, kDIn, kDSae, kK, 3);
  // A random orthogonal R (Gram-Schmidt of Gaussian columns), float64.
  std::mt19937_64 rng(17);
  std::normal_distribution<double> g;
  std::vector<double> r(kDIn * kDIn);
  for (double& v : r) v = g(rng);
  for (int64_t c = 0; c < kDIn; ++c) {
    for (int64_t p = 0; p < c; ++p) {
      double dot = 0;
      for (int64_t i = 0; i < kDIn; ++i) dot += r[i * kDIn + c] * r[i * kDIn + p];
      for (int64_t i = 0; i < kDIn; ++i) r[i * kDIn + c] -= dot * r[i * kDIn + p];
    }
    double norm = 0;
    for (int64_t i = 0; i < kDIn; ++i) norm += r[i * kDIn + c] * r[i * kDIn + c];
    for (int64_t i = 0; i < kDIn; ++i) r[i * kDIn + c] /= std::sqrt(norm);
  }
  auto rotate_rows = [&](const std::vector<float>& m, int64_t rows) {  // m [rows, d] -> m R
    std::vector<float> out(m.size());
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < kDIn; ++j) {
        double v = 0;
        for (int64_t k = 0; k < kDIn; ++k) v += double{m[i * kDIn + k]} * r[k * kDIn + j];
        out[i * kDIn + j] = static_cast<float>(v);
      }
    }
    return out;
  };
  engine::Dictionary rotated = a;
  rotated.w_dec = rotate_rows(a.w_dec, kDSae);
  rotated.b_dec = rotate_rows(a.b_dec, 1);
  for (int64_t j = 0; j < kDIn; ++j) {  // W_enc' = R^T W_enc: row j = sum_k R[k][j] W_enc[k]
    for (int64_t f = 0; f < kDSae; ++f) {
      double v = 0;
      for (int64_t k = 0; k < kDIn; ++k) v += r[k * kDIn + j] * a.w_enc[k * kDSae + f];
      rotated.w_enc[j * kDSae + f] = static_cast<float>(v);
    }
  }
  LoadDictionary("a", "a", a);
  LoadDictionary("rot", "rot", rotated);
  std::vector<TestDoc> docs = MakeDocs(16, 20, 60, kDIn, 5);
  ASSERT_THAT(RunIngest(*stub_, {MakeIngestRequest("a", "c", docs)}).status, GrpcOk());
  for (TestDoc& d : docs) {
    d.activations = rotate_rows(d.activations, static_cast<int64_t>(d.tokens.size()));
  }
  ASSERT_THAT(RunIngest(*stub_, {MakeIngestRequest("rot", "c", docs)}).status, GrpcOk());

  v1::CompareDictionariesRequest by_act = DecoderRequest("a", "rot");
  by_act.set_method(v1::COMPARE_METHOD_ACTIVATION);
  by_act.set_corpus("c");
  const CompareStream act = Compare(by_act);
  ASSERT_THAT(act.status, GrpcOk());
  int alive = 0, self = 0;
  for (const v1::FeatureMatch& m : act.a) {
    if (m.best_partner() < 0) continue;
    ++alive;
    self += m.best_partner() == m.feature() && m.best_similarity() > 0.99;
  }
  ASSERT_GT(alive, kDSae / 2);
  EXPECT_GE(self, alive - 2) << "near-ties at the top-k boundary may move a token or two";
  EXPECT_GT(act.summary.mean_max_a_to_b(), 0.98);

  const CompareStream dec = Compare(DecoderRequest("a", "rot"));
  ASSERT_THAT(dec.status, GrpcOk());
  EXPECT_LT(dec.summary.mean_max_a_to_b(), 0.8);
  int decoder_self = 0;
  for (const v1::FeatureMatch& m : dec.a) decoder_self += m.best_partner() == m.feature();
  EXPECT_LT(decoder_self, kDSae / 4);
}

TEST_F(GrpcCompareTest, EvaluateSentActivations) {
  const WrittenSae a = WriteSae("a", engine::Architecture::kTopK, v1::SOURCE_FORMAT_SAELENS, 3);
  ASSERT_THAT(Load("a", a.path), GrpcOk());
  const int64_t n = 300;
  const std::vector<float> x = RandomActivations(n, kDIn, 8);
  // Two chunks, the first ending a prompt.
  std::vector<v1::EvaluateRequest> requests(2);
  requests[0].set_dictionary_id("a");
  requests[0].mutable_options()->set_per_token_error_norms(true);
  requests[0].set_eval_id("run-1");
  *requests[0].mutable_activations() =
      wire::EncodeTensor(std::vector<float>(x.begin(), x.begin() + 100 * kDIn), {100, kDIn});
  requests[0].set_end_of_prompt(true);
  *requests[1].mutable_activations() =
      wire::EncodeTensor(std::vector<float>(x.begin() + 100 * kDIn, x.end()), {n - 100, kDIn});
  v1::EvaluateResponse out;
  ASSERT_THAT(Evaluate(requests, &out), GrpcOk());
  EXPECT_EQ(out.tokens(), n);
  EXPECT_FALSE(out.weights_sha256().empty());
  EXPECT_THAT(out.absent_metrics(), ::testing::Contains(HasSubstr("ce_loss")));

  // MSE and per-row error norms recomputed from Encode's reconstruction.
  v1::EncodeOptions options;
  options.set_return_reconstruction(true);
  v1::EncodeResponse enc;
  ASSERT_THAT(EncodeRows("a", x, n, kDIn, &enc, options), GrpcOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<float> xhat,
                               wire::TensorToFloats(enc.reconstruction(), "reconstruction"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<float> norms,
                               wire::TensorToFloats(out.per_token_error_norms(), "norms"));
  ASSERT_EQ(norms.size(), static_cast<size_t>(n));
  double se = 0;
  for (int64_t t = 0; t < n; ++t) {
    double row = 0;
    for (int64_t j = 0; j < kDIn; ++j) {
      const double e = double{x[t * kDIn + j]} - xhat[t * kDIn + j];
      row += e * e;
    }
    se += row;
    EXPECT_NEAR(norms[t], std::sqrt(row), 1e-5 * (1 + std::sqrt(row))) << "row " << t;
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(google::protobuf::Struct report,
                               formats::ParseJsonObject(out.saebench_json(), "report"));
  EXPECT_EQ(report.fields().at("eval_type_id").string_value(), "core");
  EXPECT_EQ(report.fields().at("eval_id").string_value(), "run-1");
  const auto& metrics = report.fields().at("eval_result_metrics").struct_value().fields();
  const double mse =
      metrics.at("reconstruction_quality").struct_value().fields().at("mse").number_value();
  EXPECT_NEAR(mse, se / (n * kDIn), 1e-9 * (1 + mse));
  EXPECT_NEAR(metrics.at("sparsity").struct_value().fields().at("l0").number_value(), kK, 1e-9);
}

TEST_F(GrpcCompareTest, EvaluateStoredCorpus) {
  const WrittenSae a = WriteSae("a", engine::Architecture::kTopK, v1::SOURCE_FORMAT_SAELENS, 3);
  ASSERT_THAT(Load("a", a.path), GrpcOk());
  const std::vector<TestDoc> docs = MakeDocs(5, 3, 30, kDIn, 4);
  int64_t tokens = 0;
  for (const TestDoc& d : docs) tokens += static_cast<int64_t>(d.tokens.size());
  ASSERT_THAT(RunIngest(*stub_, {MakeIngestRequest("a", "c", docs)}).status, GrpcOk());
  v1::EvaluateRequest r;
  r.set_dictionary_id("a");
  r.set_corpus("c");
  v1::EvaluateResponse out;
  ASSERT_THAT(Evaluate({r}, &out), GrpcOk());
  EXPECT_EQ(out.tokens(), tokens);
  EXPECT_EQ(out.prompts(), 5);
  EXPECT_THAT(out.absent_metrics(), ::testing::Contains(HasSubstr("explained_variance")));
  r.set_corpus("nope");
  EXPECT_THAT(Evaluate({r}, &out),
              GrpcStatusIs(grpc::StatusCode::FAILED_PRECONDITION, HasSubstr("nope")));
}

TEST_F(GrpcCompareTest, EvaluateErrors) {
  const WrittenSae a = WriteSae("a", engine::Architecture::kTopK, v1::SOURCE_FORMAT_SAELENS, 3);
  ASSERT_THAT(Load("a", a.path), GrpcOk());
  v1::EvaluateResponse out;
  EXPECT_THAT(Evaluate({}, &out),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("no message")));
  v1::EvaluateRequest r;
  EXPECT_THAT(Evaluate({r}, &out),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("dictionary_id")));
  r.set_dictionary_id("ghost");
  EXPECT_THAT(Evaluate({r}, &out), GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("ghost")));
  r.set_dictionary_id("a");
  EXPECT_THAT(Evaluate({r}, &out),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("no rows")));
  *r.mutable_activations() = wire::EncodeTensor(std::vector<float>(kDIn + 1, 0.5f), {1, kDIn + 1});
  EXPECT_THAT(Evaluate({r}, &out), GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                                                HasSubstr("evaluate message 0: activations")));
  r.set_corpus("c");
  EXPECT_THAT(Evaluate({r}, &out),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("either")));
  r.clear_corpus();
  *r.mutable_activations() = wire::EncodeTensor(std::vector<float>(kDIn, 0.5f), {1, kDIn});
  v1::EvaluateRequest other = r;
  other.set_dictionary_id("b");
  EXPECT_THAT(Evaluate({r, other}, &out),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("evaluate message 1")));
  r.mutable_options()->set_context_size(-3);
  EXPECT_THAT(Evaluate({r}, &out),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("context_size: -3")));
}

}  // namespace
}  // namespace saedict::testing
