// The corpus read RPCs through a real gRPC server over a real RocksDB:
// TopActivations order equals a brute-force ranking of the stored codes,
// context windows (clipping, per-token values), quantile bins, GetFeature
// statistics, DocumentFeatures, CreateCheckpoint (restorable), and the
// error path of each.
#include <algorithm>
#include <cmath>

#include "tests/formats/sae_fixtures.h"
#include "tests/server/corpus_test_util.h"
#include "tests/server/grpc_test_fixture.h"

namespace saedict::testing {
namespace {

using ::testing::HasSubstr;
using Arch = engine::Architecture;

class CorpusQueryTest : public GrpcServerTest {
 protected:
  void SetUp() override {
    GrpcServerTest::SetUp();
    WriteSae("sae", Arch::kTopK, v1::SOURCE_FORMAT_SAELENS, 5);
    ASSERT_THAT(Load("d", "sae"), GrpcOk());
    docs_ = MakeDocs(20, 1, 60, kDIn, 42);
    std::vector<v1::IngestRequest> requests;
    for (int b = 0; b < 4; ++b) {
      requests.push_back(
          MakeIngestRequest("d", "c", {docs_.begin() + 5 * b, docs_.begin() + 5 * b + 5}));
    }
    ASSERT_THAT(RunIngest(*stub_, requests).status, GrpcOk());
    for (const TestDoc& d : docs_) ids_.push_back(d.id);
    truth_ = Recompute(*stub_, "d", "c", ids_, &codes_);
  }

  // A feature with many activations.
  uint32_t BusyFeature() {
    uint32_t best = 0;
    for (const auto& [f, t] : truth_) {
      if (t.count > truth_[best].count) best = f;
    }
    return best;
  }

  grpc::Status Top(const v1::TopActivationsRequest& r, v1::TopActivationsResponse* out) {
    return stub_->TopActivations(Ctx().get(), r, out);
  }

  // Checks an example against the stored document and codes.
  void ExpectExampleMatchesStore(const v1::Example& e, uint32_t feature, int window) {
    const TestDoc& doc = docs_[e.doc_id()];
    const engine::SparseCodes& codes = codes_[e.doc_id()];
    const int64_t n = doc.tokens.size();
    const int64_t first = std::max<int64_t>(0, e.position() - window);
    const int64_t last = std::min<int64_t>(n - 1, e.position() + window);
    ASSERT_EQ(e.context_size(), last - first + 1)
        << "doc " << e.doc_id() << " pos " << e.position();
    EXPECT_EQ(e.peak_index(), e.position() - first);
    EXPECT_EQ(e.context(e.peak_index()).value(), e.value());
    for (int i = 0; i < e.context_size(); ++i) {
      const int64_t t = first + i;
      EXPECT_EQ(e.context(i).token_id(), doc.tokens[t]);
      EXPECT_EQ(e.context(i).token(), doc.strings[t]);
      float expected = 0;
      for (const auto& [index, value] : Row(codes, t)) {
        if (index == feature) expected = value;
      }
      EXPECT_EQ(e.context(i).value(), expected) << "token " << t;
    }
  }

  std::vector<TestDoc> docs_;
  std::vector<uint64_t> ids_;
  std::map<uint32_t, RecomputedFeature> truth_;
  std::map<uint64_t, engine::SparseCodes> codes_;
};

TEST_F(CorpusQueryTest, TopActivationsEqualsBruteForceRankingWithContext) {
  for (uint32_t feature : {BusyFeature(), 0u, 7u, 63u}) {
    const RecomputedFeature& t = truth_[feature];
    v1::TopActivationsRequest r;
    r.set_dictionary_id("d");
    r.set_feature(feature);
    r.set_n(25);
    r.set_context_window(3);
    v1::TopActivationsResponse out;
    ASSERT_THAT(Top(r, &out), GrpcOk());
    ASSERT_EQ(out.top_size(), std::min<int64_t>(25, t.count)) << "feature " << feature;
    for (int i = 0; i < out.top_size(); ++i) {
      const v1::Example& e = out.top(i);
      EXPECT_EQ(e.corpus(), "c");
      EXPECT_EQ(e.value(), std::get<0>(t.entries[i])) << "rank " << i;
      EXPECT_EQ(e.doc_id(), std::get<1>(t.entries[i])) << "rank " << i;
      EXPECT_EQ(e.position(), std::get<2>(t.entries[i])) << "rank " << i;
      ExpectExampleMatchesStore(e, feature, 3);
    }
  }
}

TEST_F(CorpusQueryTest, ContextWindowDefaultsZeroAndClipping) {
  const uint32_t feature = BusyFeature();
  v1::TopActivationsRequest r;
  r.set_dictionary_id("d");
  r.set_feature(feature);
  r.set_n(1000);
  v1::TopActivationsResponse out;
  ASSERT_THAT(Top(r, &out), GrpcOk());
  EXPECT_EQ(out.top_size(), truth_[feature].count);
  for (const v1::Example& e : out.top()) ExpectExampleMatchesStore(e, feature, 8);  // default 8
  r.set_context_window(0);
  ASSERT_THAT(Top(r, &out), GrpcOk());
  for (const v1::Example& e : out.top()) {
    ASSERT_EQ(e.context_size(), 1);
    EXPECT_EQ(e.peak_index(), 0);
  }
  r.set_context_window(256);  // bigger than any document: the whole document
  ASSERT_THAT(Top(r, &out), GrpcOk());
  for (const v1::Example& e : out.top()) {
    EXPECT_EQ(e.context_size(), static_cast<int>(docs_[e.doc_id()].tokens.size()));
    ExpectExampleMatchesStore(e, feature, 256);
  }
}

TEST_F(CorpusQueryTest, QuantileBinsHoldExamplesFromTheirValueRange) {
  const uint32_t feature = BusyFeature();
  v1::TopActivationsRequest r;
  r.set_dictionary_id("d");
  r.set_feature(feature);
  r.set_n(3);
  r.set_quantile_bins(4);
  r.set_per_bin(3);
  r.set_context_window(2);
  v1::TopActivationsResponse out;
  ASSERT_THAT(Top(r, &out), GrpcOk());
  ASSERT_EQ(out.bins_size(), 4);
  const RecomputedFeature& t = truth_[feature];
  EXPECT_LE(out.bins(0).value_lower(), t.min);  // the lowest histogram bin's edge
  EXPECT_GT(out.bins(0).value_lower(), 0.0f);
  EXPECT_EQ(out.bins(3).value_upper(), t.max);
  int examples = 0;
  for (int b = 0; b < 4; ++b) {
    const v1::QuantileBin& bin = out.bins(b);
    EXPECT_DOUBLE_EQ(bin.quantile_lower(), b / 4.0);
    EXPECT_DOUBLE_EQ(bin.quantile_upper(), (b + 1) / 4.0);
    EXPECT_LE(bin.value_lower(), bin.value_upper());
    if (b > 0) {
      EXPECT_GE(bin.value_lower(), out.bins(b - 1).value_lower());
    }
    EXPECT_LE(bin.examples_size(), 3);
    for (int i = 0; i < bin.examples_size(); ++i) {
      const v1::Example& e = bin.examples(i);
      EXPECT_GE(e.value(), bin.value_lower());
      EXPECT_LE(e.value(), bin.value_upper());
      if (i > 0) {
        EXPECT_LE(e.value(), bin.examples(i - 1).value());
      }
      ExpectExampleMatchesStore(e, feature, 2);
      ++examples;
    }
  }
  EXPECT_GE(examples, 6) << "a busy feature should fill most bins";
}

// Every bin that stored activations fall into returns min(per_bin, that
// many) examples, each from inside the bin — also the low bins, whose values
// sit in documents with much higher peaks (they were once never scanned).
TEST_F(CorpusQueryTest, EveryNonEmptyBinReturnsExamplesFromInsideIt) {
  constexpr int kBins = 4, kPerBin = 3;
  int checked_bins = 0;
  for (const auto& [feature, t] : truth_) {
    if (t.count == 0) continue;
    v1::TopActivationsRequest r;
    r.set_dictionary_id("d");
    r.set_feature(feature);
    r.set_n(1);
    r.set_quantile_bins(kBins);
    r.set_per_bin(kPerBin);
    v1::TopActivationsResponse out;
    ASSERT_THAT(Top(r, &out), GrpcOk());
    ASSERT_EQ(out.bins_size(), kBins);
    for (int b = 0; b < kBins; ++b) {
      const v1::QuantileBin& bin = out.bins(b);
      const float lo = bin.value_lower(), hi = bin.value_upper();
      int64_t inside = 0;
      for (const auto& [doc, codes] : codes_) {
        for (int64_t row = 0; row < codes.num_rows; ++row) {
          for (const auto& [index, value] : Row(codes, row)) {
            if (index == feature && value >= lo &&
                (value < hi || (value == hi && (b == kBins - 1 || lo == hi)))) {
              ++inside;
            }
          }
        }
      }
      EXPECT_EQ(bin.examples_size(), std::min<int64_t>(kPerBin, inside))
          << "feature " << feature << " bin " << b << " [" << lo << ", " << hi << "] holds "
          << inside << " stored activations";
      for (const v1::Example& e : bin.examples()) {
        EXPECT_GE(e.value(), lo) << "feature " << feature << " bin " << b;
        EXPECT_LE(e.value(), hi) << "feature " << feature << " bin " << b;
      }
      checked_bins += inside > 0;
    }
  }
  EXPECT_GT(checked_bins, 100);
}

TEST_F(CorpusQueryTest, GetFeatureStatisticsAndTopExamples) {
  const uint32_t feature = BusyFeature();
  const RecomputedFeature& t = truth_[feature];
  v1::GetFeatureRequest r;
  r.set_dictionary_id("d");
  r.set_feature(feature);
  r.set_top_n(5);
  v1::GetFeatureResponse out;
  ASSERT_THAT(stub_->GetFeature(Ctx().get(), r, &out), GrpcOk());
  EXPECT_EQ(out.dictionary_id(), "d");
  EXPECT_EQ(out.feature(), feature);
  const v1::FeatureStats& s = out.stats();
  int64_t tokens = 0;
  for (const TestDoc& d : docs_) tokens += d.tokens.size();
  EXPECT_EQ(s.count(), t.count);
  EXPECT_EQ(s.total_tokens(), tokens);
  EXPECT_DOUBLE_EQ(s.density(), static_cast<double>(t.count) / tokens);
  const double mean = t.sum / t.count;
  EXPECT_NEAR(s.mean(), mean, 1e-5);
  EXPECT_NEAR(s.std(), std::sqrt(t.sum_sq / t.count - mean * mean), 1e-4);
  EXPECT_EQ(s.max(), t.max);
  int64_t in_bins = 0;
  for (int i = 0; i < s.histogram_size(); ++i) {
    const v1::HistogramBin& b = s.histogram(i);
    EXPECT_LT(b.lower(), b.upper());
    if (i > 0) {
      EXPECT_GE(b.lower(), s.histogram(i - 1).upper() * 0.9999f);
    }
    int64_t expected = 0;
    for (const auto& [v, doc, pos] : t.entries) expected += (v >= b.lower() && v < b.upper());
    EXPECT_EQ(b.count(), expected) << "bin [" << b.lower() << ", " << b.upper() << ")";
    in_bins += b.count();
  }
  EXPECT_EQ(in_bins, t.count);
  ASSERT_EQ(out.top_examples_size(), 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(out.top_examples(i).value(), std::get<0>(t.entries[i]));
    ExpectExampleMatchesStore(out.top_examples(i), feature, 8);
  }
}

TEST_F(CorpusQueryTest, DocumentFeaturesWholeDocumentAndOneToken) {
  const TestDoc& doc = docs_[3];
  const engine::SparseCodes& codes = codes_[doc.id];
  v1::DocumentFeaturesRequest r;
  r.set_dictionary_id("d");
  r.set_corpus("c");
  r.set_doc_id(doc.id);
  r.set_n(10000);
  v1::DocumentFeaturesResponse out;
  ASSERT_THAT(stub_->DocumentFeatures(Ctx().get(), r, &out), GrpcOk());
  EXPECT_EQ(out.num_tokens(), static_cast<int64_t>(doc.tokens.size()));
  std::map<uint32_t, std::pair<float, int64_t>> max_and_count;
  for (int64_t t = 0; t < codes.num_rows; ++t) {
    for (const auto& [f, v] : Row(codes, t)) {
      auto& m = max_and_count[f];
      m.first = std::max(m.first, v);
      ++m.second;
    }
  }
  ASSERT_EQ(out.features_size(), static_cast<int>(max_and_count.size()));
  for (int i = 0; i < out.features_size(); ++i) {
    const v1::FeatureActivity& a = out.features(i);
    EXPECT_EQ(a.max_value(), max_and_count[a.feature()].first);
    EXPECT_EQ(a.active_tokens(), max_and_count[a.feature()].second);
    if (i > 0) {
      EXPECT_LE(a.max_value(), out.features(i - 1).max_value());
    }
  }
  r.set_position(2);
  r.set_n(2);
  ASSERT_THAT(stub_->DocumentFeatures(Ctx().get(), r, &out), GrpcOk());
  std::vector<std::pair<uint32_t, float>> row = Row(codes, 2);
  std::sort(row.begin(), row.end(), [](auto& a, auto& b) { return a.second > b.second; });
  ASSERT_EQ(out.features_size(), std::min<int>(2, row.size()));
  for (int i = 0; i < out.features_size(); ++i) {
    EXPECT_EQ(out.features(i).feature(), row[i].first);
    EXPECT_EQ(out.features(i).max_position(), 2);
    EXPECT_EQ(out.features(i).active_tokens(), 1);
  }
}

TEST_F(CorpusQueryTest, UnseenFeatureHasZeroStatsAndNoExamples) {
  // Load a second dictionary and store nothing with it.
  WriteSae("sae2", Arch::kTopK, v1::SOURCE_FORMAT_SAELENS, 6);
  ASSERT_THAT(Load("d2", "sae2"), GrpcOk());
  v1::GetFeatureRequest r;
  r.set_dictionary_id("d2");
  r.set_feature(5);
  v1::GetFeatureResponse out;
  ASSERT_THAT(stub_->GetFeature(Ctx().get(), r, &out), GrpcOk());
  EXPECT_EQ(out.stats().count(), 0);
  EXPECT_EQ(out.stats().total_tokens(), 0);
  EXPECT_EQ(out.top_examples_size(), 0);
  v1::TopActivationsRequest t;
  t.set_dictionary_id("d2");
  t.set_feature(5);
  t.set_quantile_bins(3);
  v1::TopActivationsResponse top;
  ASSERT_THAT(Top(t, &top), GrpcOk());
  EXPECT_EQ(top.top_size(), 0);
  EXPECT_EQ(top.bins_size(), 0);
}

TEST_F(CorpusQueryTest, ErrorPaths) {
  using C = grpc::StatusCode;
  {
    v1::GetFeatureRequest r;
    v1::GetFeatureResponse out;
    r.set_dictionary_id("d");
    r.set_feature(kDSae);
    EXPECT_THAT(
        stub_->GetFeature(Ctx().get(), r, &out),
        GrpcStatusIs(C::NOT_FOUND, HasSubstr("feature 64 not found: dictionary 'd' has d_sae 64")));
    r.set_feature(1);
    r.set_top_n(1001);
    EXPECT_THAT(stub_->GetFeature(Ctx().get(), r, &out),
                GrpcStatusIs(C::INVALID_ARGUMENT, HasSubstr("top_n: 1001")));
    r.set_top_n(-1);
    EXPECT_THAT(stub_->GetFeature(Ctx().get(), r, &out),
                GrpcStatusIs(C::INVALID_ARGUMENT, HasSubstr("top_n: -1")));
    r.set_top_n(0);
    r.set_context_window(257);
    EXPECT_THAT(stub_->GetFeature(Ctx().get(), r, &out),
                GrpcStatusIs(C::INVALID_ARGUMENT, HasSubstr("context_window: 257")));
    r.set_context_window(-1);
    EXPECT_THAT(stub_->GetFeature(Ctx().get(), r, &out),
                GrpcStatusIs(C::INVALID_ARGUMENT, HasSubstr("context_window: -1")));
    r.set_dictionary_id("nope");
    EXPECT_THAT(stub_->GetFeature(Ctx().get(), r, &out),
                GrpcStatusIs(C::NOT_FOUND, HasSubstr("nope")));
    r.set_dictionary_id("");
    EXPECT_THAT(stub_->GetFeature(Ctx().get(), r, &out),
                GrpcStatusIs(C::INVALID_ARGUMENT, HasSubstr("dictionary_id: empty")));
  }
  {
    v1::TopActivationsRequest r;
    v1::TopActivationsResponse out;
    r.set_dictionary_id("d");
    r.set_feature(1);
    r.set_n(5000);
    EXPECT_THAT(Top(r, &out), GrpcStatusIs(C::INVALID_ARGUMENT, HasSubstr("n: 5000")));
    r.set_n(1);
    r.set_quantile_bins(21);
    EXPECT_THAT(Top(r, &out), GrpcStatusIs(C::INVALID_ARGUMENT, HasSubstr("quantile_bins: 21")));
    r.set_quantile_bins(2);
    r.set_per_bin(101);
    EXPECT_THAT(Top(r, &out), GrpcStatusIs(C::INVALID_ARGUMENT, HasSubstr("per_bin: 101")));
    r.set_per_bin(1);
    r.set_feature(1u << 31);
    EXPECT_THAT(Top(r, &out), GrpcStatusIs(C::NOT_FOUND, HasSubstr("feature 2147483648")));
    r.set_feature(1);
    r.set_dictionary_id("nope");
    EXPECT_THAT(Top(r, &out), GrpcStatusIs(C::NOT_FOUND, HasSubstr("nope")));
  }
  {
    v1::GetDocumentRequest r;
    v1::GetDocumentResponse out;
    r.set_corpus("c");
    r.set_doc_id(999);
    EXPECT_THAT(stub_->GetDocument(Ctx().get(), r, &out),
                GrpcStatusIs(C::NOT_FOUND, HasSubstr("document 999 of corpus 'c' not found")));
    r.set_corpus("other");
    r.set_doc_id(1);
    EXPECT_THAT(stub_->GetDocument(Ctx().get(), r, &out),
                GrpcStatusIs(C::NOT_FOUND, HasSubstr("'other'")));
    r.set_corpus("");
    EXPECT_THAT(stub_->GetDocument(Ctx().get(), r, &out),
                GrpcStatusIs(C::INVALID_ARGUMENT, HasSubstr("corpus: empty")));
  }
  {
    v1::GetActivationsRequest r;
    v1::GetActivationsResponse out;
    r.set_dictionary_id("d");
    r.set_corpus("c");
    r.set_doc_id(999);
    EXPECT_THAT(stub_->GetActivations(Ctx().get(), r, &out),
                GrpcStatusIs(C::NOT_FOUND, HasSubstr("document 999")));
    r.set_dictionary_id("nope");
    r.set_doc_id(1);
    EXPECT_THAT(stub_->GetActivations(Ctx().get(), r, &out),
                GrpcStatusIs(C::NOT_FOUND, HasSubstr("nope")));
    r.set_dictionary_id("d");
    r.set_corpus("");
    EXPECT_THAT(stub_->GetActivations(Ctx().get(), r, &out),
                GrpcStatusIs(C::INVALID_ARGUMENT, HasSubstr("corpus: empty")));
  }
  {
    v1::DocumentFeaturesRequest r;
    v1::DocumentFeaturesResponse out;
    r.set_dictionary_id("d");
    r.set_corpus("c");
    r.set_doc_id(0);
    r.set_position(static_cast<int64_t>(docs_[0].tokens.size()));
    EXPECT_THAT(stub_->DocumentFeatures(Ctx().get(), r, &out),
                GrpcStatusIs(C::INVALID_ARGUMENT, HasSubstr("position: ")));
    r.set_position(-1);
    EXPECT_THAT(stub_->DocumentFeatures(Ctx().get(), r, &out),
                GrpcStatusIs(C::INVALID_ARGUMENT, HasSubstr("position: -1")));
    r.clear_position();
    r.set_n(-3);
    EXPECT_THAT(stub_->DocumentFeatures(Ctx().get(), r, &out),
                GrpcStatusIs(C::INVALID_ARGUMENT, HasSubstr("n: -3")));
    r.set_n(0);
    r.set_doc_id(12345);
    EXPECT_THAT(stub_->DocumentFeatures(Ctx().get(), r, &out),
                GrpcStatusIs(C::NOT_FOUND, HasSubstr("12345")));
  }
}

TEST_F(CorpusQueryTest, CheckpointRestoresToTheSameAnswers) {
  v1::CreateCheckpointRequest r;
  r.set_name("snap-1");
  v1::CreateCheckpointResponse out;
  ASSERT_THAT(stub_->CreateCheckpoint(Ctx().get(), r, &out), GrpcOk());
  EXPECT_THAT(out.path(), HasSubstr("backups/snap-1"));
  EXPECT_GT(out.bytes(), 0);
  EXPECT_THAT(stub_->CreateCheckpoint(Ctx().get(), r, &out),
              GrpcStatusIs(grpc::StatusCode::ALREADY_EXISTS, HasSubstr("snap-1")));
  r.set_name("../escape");
  EXPECT_THAT(stub_->CreateCheckpoint(Ctx().get(), r, &out),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("'../escape'")));

  const uint32_t feature = BusyFeature();
  v1::GetFeatureRequest fr;
  fr.set_dictionary_id("d");
  fr.set_feature(feature);
  v1::GetFeatureResponse before;
  ASSERT_THAT(stub_->GetFeature(Ctx().get(), fr, &before), GrpcOk());
  // Changes after the checkpoint must not show up in it.
  ASSERT_THAT(
      RunIngest(*stub_, {MakeIngestRequest("d", "c", MakeDocs(3, 30, 30, kDIn, 77, 500))}).status,
      GrpcOk());
  StopServer();
  options_.data_dir = data_dir_ / "backups" / "snap-1";
  StartServer();
  v1::GetFeatureResponse after;
  ASSERT_THAT(stub_->GetFeature(Ctx().get(), fr, &after), GrpcOk());
  // The corpus part is restored; neighbours and family are rebuilt live.
  for (v1::GetFeatureResponse* r : {&before, &after}) {
    r->clear_neighbours();
    r->clear_neighbours_state();
    r->clear_family();
  }
  EXPECT_EQ(after.SerializeAsString(), before.SerializeAsString());
  EXPECT_THAT(ListIds(), ::testing::Contains("d"));
  v1::GetDocumentRequest dr;
  dr.set_corpus("c");
  dr.set_doc_id(500);
  v1::GetDocumentResponse doc;
  EXPECT_THAT(stub_->GetDocument(Ctx().get(), dr, &doc),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("500")));
}

}  // namespace
}  // namespace saedict::testing
