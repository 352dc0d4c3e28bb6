// Ingest through a real gRPC server into a real RocksDB directory: per-batch
// acks, round trips of documents and codes (equal to the engine's encode),
// f16 storage, re-ingest and concurrent streams keeping statistics equal to
// a recomputation from the stored codes, delete/replace of the dictionary,
// restart persistence, and every malformed message rejected with nothing of
// it stored.
#include <algorithm>
#include <cmath>
#include <random>
#include <thread>

#include "tests/formats/sae_fixtures.h"
#include "tests/server/corpus_test_util.h"
#include "tests/server/grpc_test_fixture.h"

namespace saedict::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using Arch = engine::Architecture;

class IngestTest : public GrpcServerTest {
 protected:
  void SetUp() override {
    GrpcServerTest::SetUp();
    WriteSae("sae", Arch::kTopK, v1::SOURCE_FORMAT_SAELENS, 5);
    ASSERT_THAT(Load("d", "sae"), GrpcOk());
    reference_ = ReferenceEncoder("sae");
  }

  grpc::Status GetDocument(const std::string& corpus, uint64_t id, v1::GetDocumentResponse* out) {
    v1::GetDocumentRequest r;
    r.set_corpus(corpus);
    r.set_doc_id(id);
    return stub_->GetDocument(Ctx().get(), r, out);
  }
  grpc::Status GetActivations(uint64_t id, v1::GetActivationsResponse* out,
                              const std::string& dict = "d", const std::string& corpus = "c") {
    v1::GetActivationsRequest r;
    r.set_dictionary_id(dict);
    r.set_corpus(corpus);
    r.set_doc_id(id);
    return stub_->GetActivations(Ctx().get(), r, out);
  }
  v1::FeatureStats Stats(uint32_t feature, const std::string& dict = "d") {
    v1::GetFeatureRequest r;
    r.set_dictionary_id(dict);
    r.set_feature(feature);
    v1::GetFeatureResponse out;
    grpc::Status s = stub_->GetFeature(Ctx().get(), r, &out);
    EXPECT_THAT(s, GrpcOk());
    return out.stats();
  }
  int64_t TotalTokens() { return Stats(0).total_tokens(); }

  // Every feature's stored statistics equal those recomputed from the codes.
  void ExpectStatsMatchCodes(const std::vector<uint64_t>& ids) {
    std::map<uint32_t, RecomputedFeature> truth = Recompute(*stub_, "d", "c", ids);
    int64_t tokens = 0;
    for (uint64_t id : ids) {
      v1::GetActivationsResponse a;
      ASSERT_THAT(GetActivations(id, &a), GrpcOk());
      tokens += a.codes().num_rows();
    }
    for (uint32_t f = 0; f < kDSae; ++f) {
      const v1::FeatureStats s = Stats(f);
      const RecomputedFeature& t = truth[f];
      EXPECT_EQ(s.total_tokens(), tokens);
      ASSERT_EQ(s.count(), t.count) << "feature " << f;
      if (t.count == 0) continue;
      EXPECT_NEAR(s.mean(), t.sum / t.count, 1e-5) << "feature " << f;
      EXPECT_EQ(s.max(), t.max) << "feature " << f;
      int64_t in_bins = 0;
      for (const v1::HistogramBin& b : s.histogram()) in_bins += b.count();
      EXPECT_EQ(in_bins, t.count) << "feature " << f;
    }
  }

  std::shared_ptr<const engine::Encoder> reference_;
};

TEST_F(IngestTest, AcksEveryBatchAndStoresDocumentsAndCodes) {
  const std::vector<TestDoc> docs = MakeDocs(6, 1, 40, kDIn, 1);
  std::vector<v1::IngestRequest> requests;
  for (int b = 0; b < 3; ++b) {
    requests.push_back(
        MakeIngestRequest(b == 0 ? "d" : "", b == 0 ? "c" : "", {docs[2 * b], docs[2 * b + 1]}));
  }
  IngestOutcome out = RunIngest(*stub_, requests);
  ASSERT_THAT(out.status, GrpcOk());
  ASSERT_EQ(out.acks.size(), 3u);
  int64_t total = 0;
  for (int b = 0; b < 3; ++b) {
    const int64_t tokens = docs[2 * b].tokens.size() + docs[2 * b + 1].tokens.size();
    total += tokens;
    EXPECT_EQ(out.acks[b].batch(), b);
    EXPECT_EQ(out.acks[b].documents(), 2);
    EXPECT_EQ(out.acks[b].tokens(), tokens);
    EXPECT_EQ(out.acks[b].replaced_documents(), 0);
    EXPECT_EQ(out.acks[b].total_tokens(), total);
    EXPECT_EQ(out.acks[b].total_documents(), 2 * (b + 1));
  }
  for (const TestDoc& doc : docs) {
    v1::GetDocumentResponse got;
    ASSERT_THAT(GetDocument("c", doc.id, &got), GrpcOk());
    EXPECT_EQ(got.document().corpus(), "c");
    EXPECT_EQ(got.document().doc_id(), doc.id);
    EXPECT_EQ(
        std::vector<int32_t>(got.document().token_ids().begin(), got.document().token_ids().end()),
        doc.tokens);
    EXPECT_EQ(std::vector<std::string>(got.document().token_strings().begin(),
                                       got.document().token_strings().end()),
              doc.strings);
    v1::GetActivationsResponse codes;
    ASSERT_THAT(GetActivations(doc.id, &codes), GrpcOk());
    EXPECT_EQ(codes.stored_precision(), v1::VALUE_PRECISION_F32);
    auto expected = reference_->Encode(doc.activations, doc.tokens.size());
    ASSERT_TRUE(expected.ok());
    ExpectSameCodes(CodesOf(codes.codes()), expected->codes, 0.0f, "stored vs engine");
  }
  EXPECT_EQ(TotalTokens(), total);
  std::vector<uint64_t> ids;
  for (const TestDoc& d : docs) ids.push_back(d.id);
  ExpectStatsMatchCodes(ids);
}

// Batch invariance through Ingest: the same documents ingested as one
// message, one message per document, and in shuffled groups (into three
// dictionaries with the same weights) store bit-identical codes, equal to
// what Encode returns for each document alone.
TEST_F(IngestTest, StoredCodesDoNotDependOnTheBatchComposition) {
  ASSERT_THAT(Load("one", "sae"), GrpcOk());
  ASSERT_THAT(Load("shuffled", "sae"), GrpcOk());
  const std::vector<TestDoc> docs = MakeDocs(24, 1, 70, kDIn, 77);
  ASSERT_THAT(RunIngest(*stub_, {MakeIngestRequest("d", "c", docs)}).status, GrpcOk());
  std::vector<v1::IngestRequest> singles;
  for (const TestDoc& doc : docs) singles.push_back(MakeIngestRequest("", "", {doc}));
  singles[0].set_dictionary_id("one");
  singles[0].set_corpus("c");
  ASSERT_THAT(RunIngest(*stub_, singles).status, GrpcOk());
  std::vector<TestDoc> order = docs;
  std::mt19937 rng(5);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<v1::IngestRequest> groups;
  for (size_t i = 0; i < order.size(); i += 5) {
    groups.push_back(MakeIngestRequest(
        "", "", {order.begin() + i, order.begin() + std::min(order.size(), i + 5)}));
  }
  groups[0].set_dictionary_id("shuffled");
  groups[0].set_corpus("c");
  ASSERT_THAT(RunIngest(*stub_, groups).status, GrpcOk());
  for (const TestDoc& doc : docs) {
    auto expected = reference_->Encode(doc.activations, doc.tokens.size());
    ASSERT_TRUE(expected.ok()) << expected.status();
    for (const char* dict : {"d", "one", "shuffled"}) {
      v1::GetActivationsResponse got;
      ASSERT_THAT(GetActivations(doc.id, &got, dict), GrpcOk());
      ExpectSameCodes(CodesOf(got.codes()), expected->codes, 0.0f,
                      std::string(dict) + " doc " + std::to_string(doc.id));
    }
  }
}

TEST_F(IngestTest, F16ValuesAreStoredInHalfPrecision) {
  const std::vector<TestDoc> docs = MakeDocs(2, 20, 20, kDIn, 2);
  IngestOutcome out =
      RunIngest(*stub_, {MakeIngestRequest("d", "c", docs, v1::VALUE_PRECISION_F16)});
  ASSERT_THAT(out.status, GrpcOk());
  v1::GetActivationsResponse codes;
  ASSERT_THAT(GetActivations(docs[0].id, &codes), GrpcOk());
  EXPECT_EQ(codes.stored_precision(), v1::VALUE_PRECISION_F16);
  auto expected = reference_->Encode(docs[0].activations, 20);
  ASSERT_TRUE(expected.ok());
  const engine::SparseCodes got = CodesOf(codes.codes());
  ASSERT_EQ(got.indices, expected->codes.indices);
  for (size_t e = 0; e < got.values.size(); ++e) {
    EXPECT_NEAR(got.values[e], expected->codes.values[e],
                std::abs(expected->codes.values[e]) * 1e-3 + 1e-6);
  }
}

TEST_F(IngestTest, ReingestReplacesCodesAndStatistics) {
  std::vector<TestDoc> docs = MakeDocs(4, 10, 30, kDIn, 3);
  ASSERT_THAT(RunIngest(*stub_, {MakeIngestRequest("d", "c", docs)}).status, GrpcOk());
  // Same ids: doc 1 with new activations, doc 2 with new tokens too.
  std::vector<TestDoc> again = MakeDocs(2, 10, 30, kDIn, 4, /*first_id=*/1);
  IngestOutcome out = RunIngest(*stub_, {MakeIngestRequest("d", "c", again)});
  ASSERT_THAT(out.status, GrpcOk());
  ASSERT_EQ(out.acks.size(), 1u);
  EXPECT_EQ(out.acks[0].replaced_documents(), 2);
  for (const TestDoc& doc : again) {
    v1::GetActivationsResponse codes;
    ASSERT_THAT(GetActivations(doc.id, &codes), GrpcOk());
    auto expected = reference_->Encode(doc.activations, doc.tokens.size());
    ASSERT_TRUE(expected.ok());
    ExpectSameCodes(CodesOf(codes.codes()), expected->codes, 0.0f, "re-ingested");
    v1::GetDocumentResponse got;
    ASSERT_THAT(GetDocument("c", doc.id, &got), GrpcOk());
    EXPECT_EQ(got.document().token_ids_size(), static_cast<int>(doc.tokens.size()));
  }
  ExpectStatsMatchCodes({0, 1, 2, 3});
}

TEST_F(IngestTest, ConcurrentStreamsOverOverlappingDocumentsStayConsistent) {
  constexpr int kStreams = 4;
  std::vector<std::thread> threads;
  std::vector<grpc::Status> statuses(kStreams);
  for (int s = 0; s < kStreams; ++s) {
    threads.emplace_back([&, s] {
      // Each stream sends docs 0..11 (overlapping) in 4 batches, own activations.
      std::vector<TestDoc> docs = MakeDocs(12, 5, 25, kDIn, 100 + s);
      std::vector<v1::IngestRequest> requests;
      for (int b = 0; b < 4; ++b) {
        requests.push_back(
            MakeIngestRequest("d", "c", {docs.begin() + 3 * b, docs.begin() + 3 * b + 3}));
      }
      statuses[s] = RunIngest(*stub_, requests).status;
    });
  }
  for (std::thread& t : threads) t.join();
  for (const grpc::Status& s : statuses) EXPECT_THAT(s, GrpcOk());
  std::vector<uint64_t> ids;
  for (uint64_t i = 0; i < 12; ++i) ids.push_back(i);
  ExpectStatsMatchCodes(ids);
}

// Streams into two dictionaries run alongside (a writer lock per
// dictionary) while commits touching the same document still serialise: the
// same documents into both stay consistent, and conflicting tokens are
// refused for one of them, never stored half and half.
TEST_F(IngestTest, ConcurrentStreamsIntoTwoDictionariesStayConsistent) {
  ASSERT_THAT(Load("e", "sae"), GrpcOk());
  const std::vector<TestDoc> same = MakeDocs(12, 5, 25, kDIn, 300);
  {
    std::vector<std::thread> threads;
    std::vector<grpc::Status> statuses(4);
    for (int s = 0; s < 4; ++s) {
      threads.emplace_back([&, s] {
        std::vector<v1::IngestRequest> requests;
        for (int b = 0; b < 4; ++b) {
          requests.push_back(MakeIngestRequest(s % 2 ? "e" : "d", "c",
                                               {same.begin() + 3 * b, same.begin() + 3 * b + 3}));
        }
        statuses[s] = RunIngest(*stub_, requests).status;
      });
    }
    for (std::thread& t : threads) t.join();
    for (const grpc::Status& st : statuses) EXPECT_THAT(st, GrpcOk());
  }
  std::vector<uint64_t> ids;
  for (const TestDoc& d : same) ids.push_back(d.id);
  ExpectStatsMatchCodes(ids);
  EXPECT_EQ(Stats(0, "e").total_tokens(), Stats(0, "d").total_tokens());

  // Other tokens for the same ids into "d" and "e" at once, into a new corpus.
  const std::vector<TestDoc> a = MakeDocs(12, 5, 25, kDIn, 400);
  const std::vector<TestDoc> b = MakeDocs(12, 5, 25, kDIn, 500);
  grpc::Status status_a, status_b;
  std::thread ta([&] {
    std::vector<v1::IngestRequest> r;
    for (const TestDoc& doc : a) r.push_back(MakeIngestRequest("d", "k", {doc}));
    status_a = RunIngest(*stub_, r).status;
  });
  std::thread tb([&] {
    std::vector<v1::IngestRequest> r;
    for (const TestDoc& doc : b) r.push_back(MakeIngestRequest("e", "k", {doc}));
    status_b = RunIngest(*stub_, r).status;
  });
  ta.join();
  tb.join();
  EXPECT_FALSE(status_a.ok() && status_b.ok())
      << "some document was claimed with two tokenizations";
  int stored = 0;
  for (uint64_t id = 0; id < 12; ++id) {
    v1::GetDocumentResponse doc;
    if (!GetDocument("k", id, &doc).ok()) continue;
    const std::vector<int32_t> tokens(doc.document().token_ids().begin(),
                                      doc.document().token_ids().end());
    // "d" holds codes only of a's tokens and "e" only of b's: a dictionary
    // holding codes for this document must have sent the tokens stored.
    for (const auto& [dict, source] : {std::pair{"d", &a}, std::pair{"e", &b}}) {
      v1::GetActivationsResponse codes;
      if (!GetActivations(id, &codes, dict, "k").ok()) continue;
      ++stored;
      EXPECT_EQ(tokens, (*source)[id].tokens)
          << "doc " << id << " stores other tokens than " << dict << " encoded";
    }
  }
  EXPECT_GT(stored, 0);
}

TEST_F(IngestTest, SurvivesRestart) {
  const std::vector<TestDoc> docs = MakeDocs(3, 10, 10, kDIn, 5);
  ASSERT_THAT(RunIngest(*stub_, {MakeIngestRequest("d", "c", docs)}).status, GrpcOk());
  const v1::FeatureStats before = Stats(3);
  RestartServer();
  const v1::FeatureStats after = Stats(3);
  EXPECT_EQ(after.SerializeAsString(), before.SerializeAsString());
  EXPECT_EQ(after.total_tokens(), 30);
  v1::GetDocumentResponse got;
  EXPECT_THAT(GetDocument("c", 2, &got), GrpcOk());
}

TEST_F(IngestTest, DeletingTheDictionaryRemovesItsRecordsButNotDocuments) {
  const std::vector<TestDoc> docs = MakeDocs(3, 10, 10, kDIn, 6);
  ASSERT_THAT(RunIngest(*stub_, {MakeIngestRequest("d", "c", docs)}).status, GrpcOk());
  v1::DeleteDictionaryRequest del;
  del.set_id("d");
  v1::DeleteDictionaryResponse del_out;
  ASSERT_THAT(stub_->DeleteDictionary(Ctx().get(), del, &del_out), GrpcOk());
  v1::GetActivationsResponse codes;
  EXPECT_THAT(GetActivations(0, &codes),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("'d'")));
  ASSERT_THAT(Load("d", "sae"), GrpcOk());
  EXPECT_EQ(TotalTokens(), 0);
  for (uint32_t f = 0; f < kDSae; ++f) ASSERT_EQ(Stats(f).count(), 0) << f;
  EXPECT_THAT(GetActivations(0, &codes),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("has no codes")));
  v1::GetDocumentResponse got;
  EXPECT_THAT(GetDocument("c", 0, &got), GrpcOk());
}

TEST_F(IngestTest, ReplacingTheDictionaryDropsCodesOfTheOldWeights) {
  ASSERT_THAT(RunIngest(*stub_, {MakeIngestRequest("d", "c", MakeDocs(2, 8, 8, kDIn, 7))}).status,
              GrpcOk());
  ASSERT_THAT(Load("d", "sae", nullptr, /*replace=*/true), GrpcOk());
  EXPECT_EQ(TotalTokens(), 0);
  v1::GetActivationsResponse codes;
  EXPECT_THAT(GetActivations(0, &codes),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("has no codes")));
}

// A replace while a stream runs: the stream fails on its next batch, nothing
// encoded with the old weights survives under the new ones, acks name the
// weights that encoded them.
TEST_F(IngestTest, ReplaceDuringAnIngestFailsTheStreamAndNeverMixesWeights) {
  WriteSae("sae2", Arch::kTopK, v1::SOURCE_FORMAT_SAELENS, 6);
  v1::GetDictionaryRequest get;
  get.set_id("d");
  v1::GetDictionaryResponse before;
  ASSERT_THAT(stub_->GetDictionary(Ctx().get(), get, &before), GrpcOk());
  ASSERT_EQ(before.dictionary().weights_sha256().size(), 64u);

  const std::vector<TestDoc> docs = MakeDocs(4, 5, 9, kDIn, 31);
  auto ctx = Ctx();
  auto stream = stub_->Ingest(ctx.get());
  ASSERT_TRUE(stream->Write(MakeIngestRequest("d", "c", {docs[0], docs[1]})));
  v1::IngestAck ack;
  ASSERT_TRUE(stream->Read(&ack));
  EXPECT_EQ(ack.weights_sha256(), before.dictionary().weights_sha256());
  EXPECT_EQ(ack.compute_mode(), FastestExactMode());

  ASSERT_THAT(Load("d", "sae2", nullptr, /*replace=*/true), GrpcOk());
  v1::GetDictionaryResponse after;
  ASSERT_THAT(stub_->GetDictionary(Ctx().get(), get, &after), GrpcOk());
  EXPECT_NE(after.dictionary().weights_sha256(), before.dictionary().weights_sha256());

  stream->Write(MakeIngestRequest("", "", {docs[2], docs[3]}));
  stream->WritesDone();
  while (stream->Read(&ack)) ADD_FAILURE() << "no batch may be acknowledged after the replace";
  EXPECT_THAT(stream->Finish(), GrpcStatusIs(grpc::StatusCode::FAILED_PRECONDITION,
                                             AllOf(HasSubstr("stream message 1"),
                                                   HasSubstr("replaced during the ingest"))));
  // The replace dropped batch 0 (old weights); batch 1 was never stored.
  for (const TestDoc& doc : docs) {
    v1::GetActivationsResponse codes;
    EXPECT_THAT(GetActivations(doc.id, &codes),
                GrpcStatusIs(grpc::StatusCode::NOT_FOUND,
                             ::testing::AnyOf(HasSubstr("has no codes"), HasSubstr("not found"))))
        << "doc " << doc.id;
  }
  EXPECT_EQ(TotalTokens(), 0);
  // A new stream ingests under the new weights and says so.
  IngestOutcome out = RunIngest(*stub_, {MakeIngestRequest("d", "c", {docs[2]})});
  ASSERT_THAT(out.status, GrpcOk());
  ASSERT_EQ(out.acks.size(), 1u);
  EXPECT_EQ(out.acks[0].weights_sha256(), after.dictionary().weights_sha256());
}

TEST_F(IngestTest, DocumentWithOtherTokensUsedByAnotherDictionaryIsRefused) {
  WriteSae("sae2", Arch::kTopK, v1::SOURCE_FORMAT_SAELENS, 6);
  ASSERT_THAT(Load("d2", "sae2"), GrpcOk());
  std::vector<TestDoc> docs = MakeDocs(1, 8, 8, kDIn, 8);
  ASSERT_THAT(RunIngest(*stub_, {MakeIngestRequest("d", "c", docs)}).status, GrpcOk());
  ASSERT_THAT(RunIngest(*stub_, {MakeIngestRequest("d2", "c", docs)}).status, GrpcOk());
  docs[0].tokens[3] += 1;
  IngestOutcome out = RunIngest(*stub_, {MakeIngestRequest("d", "c", docs)});
  EXPECT_THAT(out.status, GrpcStatusIs(grpc::StatusCode::FAILED_PRECONDITION, HasSubstr("0")));
  EXPECT_TRUE(out.acks.empty());
}

// --- malformed messages: the stream fails and nothing of the message is stored ---

struct BadCase {
  const char* name;
  grpc::StatusCode code;
  const char* message;
  std::function<void(v1::IngestRequest&)> mutate;
};
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class IngestRejectTest : public IngestTest, public ::testing::WithParamInterface<BadCase> {};

TEST_P(IngestRejectTest, RejectsWithNothingStored) {
  // One good batch first: it is acknowledged and stays.
  const std::vector<TestDoc> good = MakeDocs(2, 6, 6, kDIn, 9);
  std::vector<TestDoc> bad = MakeDocs(2, 6, 6, kDIn, 10, /*first_id=*/100);
  v1::IngestRequest bad_request = MakeIngestRequest("", "", bad);
  GetParam().mutate(bad_request);
  IngestOutcome out = RunIngest(*stub_, {MakeIngestRequest("d", "c", good), bad_request});
  EXPECT_THAT(out.status, GrpcStatusIs(GetParam().code, HasSubstr(GetParam().message)));
  EXPECT_THAT(out.status.error_message(), HasSubstr("stream message 1"));
  ASSERT_EQ(out.acks.size(), 1u);
  EXPECT_EQ(TotalTokens(), 12);
  v1::GetDocumentResponse got;
  EXPECT_THAT(GetDocument("c", 100, &got),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("100")));
  EXPECT_THAT(GetDocument("c", 0, &got), GrpcOk());
  ExpectStatsMatchCodes({0, 1});
}

INSTANTIATE_TEST_SUITE_P(
    Cases, IngestRejectTest,
    ::testing::Values(
        BadCase{"OtherDictionary", grpc::StatusCode::INVALID_ARGUMENT, "differs from 'd'",
                [](v1::IngestRequest& r) { r.set_dictionary_id("other"); }},
        BadCase{"OtherCorpus", grpc::StatusCode::INVALID_ARGUMENT, "differs from 'c'",
                [](v1::IngestRequest& r) { r.set_corpus("c2"); }},
        BadCase{"NoDocuments", grpc::StatusCode::INVALID_ARGUMENT, "documents: empty",
                [](v1::IngestRequest& r) { r.clear_documents(); }},
        BadCase{"WrongDIn", grpc::StatusCode::INVALID_ARGUMENT,
                "documents[1] (doc_id 101).activations",
                [](v1::IngestRequest& r) {
                  *r.mutable_documents(1)->mutable_activations() =
                      F32Tensor(std::vector<float>(6 * (GrpcServerTest::kDIn + 1), 0.5f),
                                {6, GrpcServerTest::kDIn + 1});
                }},
        BadCase{"FewerRowsThanTokens", grpc::StatusCode::INVALID_ARGUMENT, "5 rows for 6 token ids",
                [](v1::IngestRequest& r) {
                  *r.mutable_documents(1)->mutable_activations() =
                      F32Tensor(std::vector<float>(5 * GrpcServerTest::kDIn, 0.5f),
                                {5, GrpcServerTest::kDIn});
                }},
        BadCase{"NaNActivation", grpc::StatusCode::INVALID_ARGUMENT, "documents[0] (doc_id 100)",
                [](v1::IngestRequest& r) {
                  std::vector<float> x(6 * GrpcServerTest::kDIn, 0.5f);
                  x[7] = std::nanf("");
                  *r.mutable_documents(0)->mutable_activations() =
                      F32Tensor(x, {6, GrpcServerTest::kDIn});
                }},
        BadCase{"TokenBytesNotInt32", grpc::StatusCode::INVALID_ARGUMENT, "token_ids: 23 bytes",
                [](v1::IngestRequest& r) {
                  r.mutable_documents(1)->set_token_ids(std::string(23, 'a'));
                }},
        BadCase{"NoTokens", grpc::StatusCode::INVALID_ARGUMENT, "token_ids: 0 bytes",
                [](v1::IngestRequest& r) { r.mutable_documents(1)->clear_token_ids(); }},
        BadCase{"StringsCount", grpc::StatusCode::INVALID_ARGUMENT,
                "token_strings: 7 strings for 6",
                [](v1::IngestRequest& r) { r.mutable_documents(0)->add_token_strings("x"); }},
        BadCase{"DuplicateDocId", grpc::StatusCode::INVALID_ARGUMENT, "100",
                [](v1::IngestRequest& r) { r.mutable_documents(1)->set_doc_id(100); }},
        BadCase{"BadPrecision", grpc::StatusCode::INVALID_ARGUMENT, "value_precision: 7",
                [](v1::IngestRequest& r) {
                  r.set_value_precision(static_cast<v1::ValuePrecision>(7));
                }},
        BadCase{
            "BadComputeMode", grpc::StatusCode::INVALID_ARGUMENT, "compute_mode: 9",
            [](v1::IngestRequest& r) { r.set_compute_mode(static_cast<v1::ComputeMode>(9)); }}));

TEST_F(IngestTest, FirstMessageErrors) {
  const std::vector<TestDoc> docs = MakeDocs(1, 4, 4, GrpcServerTest::kDIn, 11);
  IngestOutcome out = RunIngest(*stub_, {MakeIngestRequest("nope", "c", docs)});
  EXPECT_THAT(out.status, GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("nope")));
  out = RunIngest(*stub_, {MakeIngestRequest("", "c", docs)});
  EXPECT_THAT(out.status,
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("dictionary_id")));
  out = RunIngest(*stub_, {MakeIngestRequest("d", "bad corpus/..", docs)});
  EXPECT_THAT(out.status,
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                           HasSubstr("corpus: 'bad corpus/..' is not a valid corpus name")));
  out = RunIngest(*stub_, {MakeIngestRequest("d", "", docs)});
  EXPECT_THAT(out.status, GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("corpus")));
  EXPECT_EQ(TotalTokens(), 0);
  v1::GetDocumentResponse got;
  EXPECT_THAT(GetDocument("c", 0, &got), GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("0")));
}

TEST_F(IngestTest, EmptyStreamIsOk) {
  IngestOutcome out = RunIngest(*stub_, {});
  EXPECT_THAT(out.status, GrpcOk());
  EXPECT_TRUE(out.acks.empty());
}

}  // namespace
}  // namespace saedict::testing
