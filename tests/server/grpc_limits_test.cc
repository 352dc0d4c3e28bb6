// The per-request limits of a real SaedictServer: tokens per request
// (Encode, Intervene, an Ingest message), open streams per client, and the
// default deadline of calls that bring none.
#include <random>

#include "tests/server/corpus_test_util.h"
#include "tests/server/grpc_test_fixture.h"

namespace saedict::testing {
namespace {

using ::testing::HasSubstr;

std::vector<float> Rows(int64_t n) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(n * GrpcServerTest::kDIn));
  for (float& v : x) v = normal(rng);
  return x;
}

class GrpcLimitsTest : public GrpcServerTest {
 protected:
  void Customize(server::ServerOptions* options) override {
    options->max_request_tokens = 8;
    options->max_streams_per_client = 2;
  }
  void SetUp() override {
    GrpcServerTest::SetUp();
    WriteSae("sae", engine::Architecture::kTopK);
    ASSERT_THAT(Load("d", "sae"), GrpcOk());
  }
};

TEST_F(GrpcLimitsTest, EncodeAndInterveneRowsPerRequest) {
  v1::EncodeResponse response;
  EXPECT_THAT(EncodeRows("d", Rows(8), 8, kDIn, &response), GrpcOk());
  EXPECT_THAT(EncodeRows("d", Rows(9), 9, kDIn, &response),
              GrpcStatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED,
                           HasSubstr("activations: 9 rows > 8 per request")));
  v1::InterveneRequest intervene;
  intervene.set_dictionary_id("d");
  *intervene.mutable_activations() = F32Tensor(Rows(9), {9, kDIn});
  v1::InterveneResponse out;
  EXPECT_THAT(
      stub_->Intervene(Ctx().get(), intervene, &out),
      GrpcStatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, HasSubstr("--max_request_tokens")));
}

TEST_F(GrpcLimitsTest, IngestTokensPerMessageAndNothingStored) {
  const std::vector<TestDoc> docs = MakeDocs(3, 3, 3, kDIn, 1);  // 9 tokens
  IngestOutcome big = RunIngest(*stub_, {MakeIngestRequest("d", "c", docs)});
  EXPECT_THAT(big.status, GrpcStatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                       HasSubstr("more than 8 tokens in one message")));
  EXPECT_TRUE(big.acks.empty());
  v1::GetDocumentRequest get;
  get.set_corpus("c");
  get.set_doc_id(0);
  v1::GetDocumentResponse doc;
  EXPECT_EQ(stub_->GetDocument(Ctx().get(), get, &doc).error_code(), grpc::StatusCode::NOT_FOUND);
  // Two messages of 6 and 3 tokens pass.
  IngestOutcome split = RunIngest(*stub_, {MakeIngestRequest("d", "c", {docs[0], docs[1]}),
                                           MakeIngestRequest("", "", {docs[2]})});
  EXPECT_THAT(split.status, GrpcOk());
  EXPECT_EQ(split.acks.size(), 2u);
}

TEST_F(GrpcLimitsTest, OpenStreamsPerClient) {
  auto open_stream = [&](grpc::ClientContext* ctx) {
    auto stream = stub_->EncodeStream(ctx);
    v1::EncodeRequest request;
    request.set_dictionary_id("d");
    *request.mutable_activations() = F32Tensor(Rows(1), {1, kDIn});
    stream->Write(request);
    return stream;
  };
  auto c1 = Ctx(), c2 = Ctx(), c3 = Ctx();
  auto s1 = open_stream(c1.get());
  auto s2 = open_stream(c2.get());
  v1::EncodeResponse r;
  ASSERT_TRUE(s1->Read(&r));  // both admitted and running
  ASSERT_TRUE(s2->Read(&r));
  auto s3 = open_stream(c3.get());
  EXPECT_FALSE(s3->Read(&r));
  EXPECT_THAT(s3->Finish(), GrpcStatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                         HasSubstr("already has 2 streaming calls open")));
  // Unary calls are not capped.
  v1::EncodeResponse unary;
  EXPECT_THAT(EncodeRows("d", Rows(1), 1, kDIn, &unary), GrpcOk());
  s1->WritesDone();
  EXPECT_THAT(s1->Finish(), GrpcOk());
  auto c4 = Ctx();
  auto s4 = open_stream(c4.get());
  EXPECT_TRUE(s4->Read(&r)) << "a closed stream frees its slot";
  s4->WritesDone();
  EXPECT_THAT(s4->Finish(), GrpcOk());
  s2->WritesDone();
  EXPECT_THAT(s2->Finish(), GrpcOk());
}

class GrpcDefaultDeadlineTest : public GrpcServerTest {
 protected:
  void Customize(server::ServerOptions* options) override {
    options->default_deadline = absl::Milliseconds(300);
    options->batcher.max_queue_delay = absl::Seconds(20);  // a lone request waits for company
    options->batcher.max_batch_tokens = 1 << 16;
  }
};

TEST_F(GrpcDefaultDeadlineTest, ACallWithoutDeadlineGetsTheServersDefault) {
  WriteSae("sae", engine::Architecture::kTopK);
  ASSERT_THAT(Load("d", "sae"), GrpcOk());
  v1::EncodeRequest request;
  request.set_dictionary_id("d");
  *request.mutable_activations() = F32Tensor(Rows(1), {1, kDIn});
  grpc::ClientContext no_deadline;
  v1::EncodeResponse response;
  const absl::Time start = absl::Now();
  EXPECT_THAT(stub_->Encode(&no_deadline, request, &response),
              GrpcStatusIs(grpc::StatusCode::DEADLINE_EXCEEDED, HasSubstr("encode queue")));
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(10)) << "the default deadline, not the 20 s queue delay";
}

}  // namespace
}  // namespace saedict::testing
