// Tests of the corpus methods of client::Client (Ingest and the unary
// corpus RPCs) against the real service core (identity test SAE d4, latents
// in the in-memory store; core_test_server.h) on a real gRPC server at
// 127.0.0.1 (port 0): request contents, ack ordering and checking, error
// propagation. A server that fails a stream or sends wrong acks is
// FaultyIngestService (misbehaving_services.h), over the same core.
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/saedict_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/core_test_server.h"
#include "tests/client/misbehaving_services.h"
#include "tests/test_util/status_matchers.h"
#include "wire/tensor_wire.h"

namespace saedict::client {
namespace {

using ::saedict::testing::CoreTestServer;
using ::saedict::testing::FaultyIngestService;
using ::saedict::testing::IngestFault;
using ::saedict::testing::IsOk;
using ::saedict::testing::LocalGrpcServer;
using ::saedict::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A document of `tokens` tokens with ids 100 + p, strings "t<p>" and rows
// x[p] = (p + 1, -1, 0, p) (the identity topk SAE keeps features 0 and, from
// p = 1, 3).
v1::IngestDocument Doc(uint64_t id, int64_t tokens) {
  v1::IngestDocument doc;
  doc.set_doc_id(id);
  std::vector<int32_t> ids;
  std::vector<float> x;
  for (int64_t p = 0; p < tokens; ++p) {
    ids.push_back(static_cast<int32_t>(100 + p));
    doc.add_token_strings(absl::StrCat("t", p));
    x.insert(x.end(), {static_cast<float>(p + 1), -1.0f, 0.0f, static_cast<float>(p)});
  }
  doc.set_token_ids(std::string(reinterpret_cast<const char*>(ids.data()), ids.size() * 4));
  const int64_t shape[2] = {tokens, 4};
  *doc.mutable_activations() = wire::FloatsToTensor(x, shape, v1::DTYPE_F32).value();
  return doc;
}

class ClientCorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SAEDICT_ASSERT_OK_AND_ASSIGN(server_, CoreTestServer::Start());
    ASSERT_THAT(server_->AddDictionary("d4", 4), IsOk());
    SAEDICT_ASSERT_OK_AND_ASSIGN(client_, Client::Connect(server_->target()));
  }

  // A server at `fault` over the same core, and a client connected to it.
  void StartFaulty(IngestFault fault) {
    faulty_client_.reset();
    faulty_server_.reset();
    faulty_ = std::make_unique<FaultyIngestService>(server_->core(), std::move(fault));
    SAEDICT_ASSERT_OK_AND_ASSIGN(faulty_server_, LocalGrpcServer::Start(faulty_.get()));
    SAEDICT_ASSERT_OK_AND_ASSIGN(faulty_client_, Client::Connect(faulty_server_->target()));
  }

  // Ingests `batches` (documents per batch, as token counts) into corpus c.
  absl::Status IngestBatches(const std::vector<std::vector<int64_t>>& batches,
                             std::vector<v1::IngestAck>* acks, const std::string& dict = "d4",
                             Client* client = nullptr) {
    size_t next = 0;
    uint64_t doc_id = 0;
    return (client != nullptr ? client : client_.get())
        ->Ingest(
            [&]() -> absl::StatusOr<std::optional<v1::IngestRequest>> {
              if (next == batches.size()) return std::optional<v1::IngestRequest>();
              v1::IngestRequest req;
              req.set_dictionary_id(dict);
              req.set_corpus("c");
              for (int64_t tokens : batches[next]) *req.add_documents() = Doc(doc_id++, tokens);
              ++next;
              return std::optional<v1::IngestRequest>(std::move(req));
            },
            [&](const v1::IngestAck& ack) {
              acks->push_back(ack);
              return absl::OkStatus();
            });
  }

  std::unique_ptr<CoreTestServer> server_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<FaultyIngestService> faulty_;
  std::unique_ptr<LocalGrpcServer> faulty_server_;
  std::unique_ptr<Client> faulty_client_;
};

TEST_F(ClientCorpusTest, IngestAcksEveryBatchInOrder) {
  std::vector<v1::IngestAck> acks;
  ASSERT_THAT(IngestBatches({{3, 2}, {4}, {1, 1, 1}}, &acks), IsOk());
  ASSERT_EQ(acks.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(acks[i].batch(), i);
  EXPECT_EQ(acks[0].documents(), 2);
  EXPECT_EQ(acks[0].tokens(), 5);
  EXPECT_EQ(acks[2].total_documents(), 6);
  EXPECT_EQ(acks[2].total_tokens(), 12);
  EXPECT_EQ(server_->requests().Count("Ingest"), 3);
  SAEDICT_ASSERT_OK_AND_ASSIGN(storage::DictionaryTotals totals,
                               server_->store().corpus()->GetDictionaryTotals("d4"));
  EXPECT_EQ(totals.documents, 6);
  EXPECT_EQ(totals.tokens, 12);

  // Re-ingesting document 0 replaces it.
  acks.clear();
  ASSERT_THAT(IngestBatches({{2}}, &acks), IsOk());
  EXPECT_EQ(acks.at(0).replaced_documents(), 1);
}

TEST_F(ClientCorpusTest, ReadsBackDocumentsCodesAndFeatures) {
  std::vector<v1::IngestAck> acks;
  ASSERT_THAT(IngestBatches({{3, 2}}, &acks), IsOk());

  v1::GetDocumentRequest get_doc;
  get_doc.set_corpus("c");
  get_doc.set_doc_id(0);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetDocumentResponse doc, client_->GetDocument(get_doc));
  EXPECT_THAT(doc.document().token_ids(), ElementsAre(100, 101, 102));
  EXPECT_THAT(doc.document().token_strings(), ElementsAre("t0", "t1", "t2"));
  get_doc.set_doc_id(9);
  EXPECT_THAT(client_->GetDocument(get_doc),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("document 9")));

  v1::GetActivationsRequest get_acts;
  get_acts.set_dictionary_id("d4");
  get_acts.set_corpus("c");
  get_acts.set_doc_id(0);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetActivationsResponse acts, client_->GetActivations(get_acts));
  SAEDICT_ASSERT_OK_AND_ASSIGN(wire::CsrCodes codes, wire::CsrFromProto(acts.codes()));
  EXPECT_THAT(codes.row_offsets, ElementsAre(0, 1, 3, 5));
  EXPECT_THAT(codes.values, ElementsAre(1, 2, 1, 3, 2));

  v1::GetFeatureRequest feature;
  feature.set_dictionary_id("d4");
  feature.set_feature(3);
  feature.set_context_window(1);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetFeatureResponse f, client_->GetFeature(feature));
  EXPECT_EQ(f.stats().count(), 3);  // positions 1, 2 of doc 0 and 1 of doc 1
  EXPECT_EQ(f.stats().total_tokens(), 5);
  ASSERT_EQ(f.top_examples_size(), 3);
  EXPECT_EQ(f.top_examples(0).value(), 2);
  EXPECT_EQ(f.top_examples(0).context_size(), 2);  // window 1 at the last token
  feature.set_feature(4);
  EXPECT_EQ(client_->GetFeature(feature).status().code(), absl::StatusCode::kNotFound);

  v1::TopActivationsRequest top;
  top.set_dictionary_id("d4");
  top.set_feature(0);
  top.set_n(2);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::TopActivationsResponse t, client_->TopActivations(top));
  ASSERT_EQ(t.top_size(), 2);
  EXPECT_GE(t.top(0).value(), t.top(1).value());

  v1::DocumentFeaturesRequest df;
  df.set_dictionary_id("d4");
  df.set_corpus("c");
  df.set_doc_id(0);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::DocumentFeaturesResponse features,
                               client_->DocumentFeatures(df));
  EXPECT_EQ(features.num_tokens(), 3);
  ASSERT_EQ(features.features_size(), 2);
  EXPECT_EQ(features.features(0).feature(), 0);
  EXPECT_EQ(features.features(0).max_value(), 3);

  v1::CreateCheckpointRequest cp;
  cp.set_name("b1");
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::CreateCheckpointResponse made, client_->CreateCheckpoint(cp));
  EXPECT_EQ(made.path(), (server_->data_dir() / "backups" / "b1").string());
  EXPECT_GT(made.bytes(), 0);
  EXPECT_THAT(client_->CreateCheckpoint(cp),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("b1")));
}

TEST_F(ClientCorpusTest, ServerErrorEndsTheStreamAfterEarlierAcks) {
  StartFaulty({IngestFault::Kind::kFailAt, 1,
               grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "document 2: activations: bad")});
  std::vector<v1::IngestAck> acks;
  EXPECT_THAT(IngestBatches({{1}, {1}, {1}}, &acks, "d4", faulty_client_.get()),
              StatusIs(absl::StatusCode::kInvalidArgument, "document 2: activations: bad"));
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].batch(), 0);
  EXPECT_EQ(server_->store().corpus()->GetDictionaryTotals("d4")->documents, 1);

  acks.clear();
  EXPECT_THAT(IngestBatches({{1}}, &acks, "nope"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'nope'")));
  EXPECT_TRUE(acks.empty());
}

TEST_F(ClientCorpusTest, MisbehavingAcksAreInternalErrors) {
  using Kind = IngestFault::Kind;
  struct Case {
    Kind fault;
    const char* message;
  };
  for (const Case& c : {
           Case{Kind::kWrongBatch, "Ingest: expected the ack of batch 1, got one for batch 2"},
           Case{Kind::kWrongCounts,
                "Ingest: ack of batch 1 counts 2 documents and 2 tokens, sent 1 documents and 2 "
                "tokens"},
           Case{Kind::kSkipAck, "Ingest: server sent 1 acks for 2 batches"},
           Case{Kind::kExtraAck,
                "Ingest: server sent an ack for batch 1 beyond the 2 batches sent"},
       }) {
    StartFaulty({c.fault, 1, grpc::Status::OK});
    std::vector<v1::IngestAck> acks;
    EXPECT_THAT(IngestBatches({{1}, {2}}, &acks, "d4", faulty_client_.get()),
                StatusIs(absl::StatusCode::kInternal, c.message))
        << static_cast<int>(c.fault);
    // Batch 0 is acknowledged (and with kExtraAck, batch 1 the first time).
    EXPECT_EQ(acks.size(), c.fault == Kind::kExtraAck ? 2u : 1u);
  }
}

TEST_F(ClientCorpusTest, CallbackErrorsCancelTheStream) {
  int produced = 0;
  absl::Status s = client_->Ingest(
      [&]() -> absl::StatusOr<std::optional<v1::IngestRequest>> {
        if (++produced > 1000) return std::optional<v1::IngestRequest>();
        v1::IngestRequest req;
        req.set_dictionary_id("d4");
        req.set_corpus("c");
        *req.add_documents() = Doc(produced, 1);
        return std::optional<v1::IngestRequest>(std::move(req));
      },
      [](const v1::IngestAck&) { return absl::DataLossError("disk full"); });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss, "disk full"));

  s = client_->Ingest(
      []() -> absl::StatusOr<std::optional<v1::IngestRequest>> {
        return absl::InvalidArgumentError("docs.jsonl:3: bad");
      },
      [](const v1::IngestAck&) { return absl::OkStatus(); });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, "docs.jsonl:3: bad"));
}

TEST_F(ClientCorpusTest, EmptyStreamIsOk) {
  std::vector<v1::IngestAck> acks;
  EXPECT_THAT(IngestBatches({}, &acks), IsOk());
  EXPECT_TRUE(acks.empty());
}

}  // namespace
}  // namespace saedict::client
