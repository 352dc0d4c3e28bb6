// Tests of client::Client against the real service core (identity test
// SAEs, in-memory store; core_test_server.h) on a real gRPC server at
// 127.0.0.1 (port 0): every RPC, status conversion, deadlines (against a
// GetDictionary double that stalls) and EncodeStream.
#include "client/saedict_client.h"

#include <atomic>
#include <optional>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/client/core_test_server.h"
#include "tests/client/misbehaving_services.h"
#include "tests/test_util/status_matchers.h"
#include "wire/tensor_wire.h"

namespace saedict::client {
namespace {

using ::saedict::testing::CoreTestServer;
using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SAEDICT_ASSERT_OK_AND_ASSIGN(server_, CoreTestServer::Start());
    ASSERT_THAT(server_->AddDictionary("d4", 4), IsOk());
    SAEDICT_ASSERT_OK_AND_ASSIGN(client_, Client::Connect(server_->target()));
  }

  v1::EncodeRequest EncodeRequestFor(const std::vector<float>& x, int64_t rows) {
    v1::EncodeRequest req;
    req.set_dictionary_id("d4");
    const int64_t shape[2] = {rows, 4};
    *req.mutable_activations() = wire::FloatsToTensor(x, shape, v1::DTYPE_F32).value();
    return req;
  }

  std::unique_ptr<CoreTestServer> server_;
  std::unique_ptr<Client> client_;
};

TEST(FromGrpcStatusTest, KeepsCodeAndMessage) {
  const absl::Status s =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full (64)"));
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kResourceExhausted, "queue full (64)"));
  EXPECT_THAT(FromGrpcStatus(grpc::Status::OK), IsOk());
  // A code outside 0..16 (31: the largest value grpc::StatusCode can hold
  // without undefined behaviour, which UBSan caught for 99).
  EXPECT_EQ(FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(31), "x")).code(),
            absl::StatusCode::kUnknown);
}

TEST(ConnectTest, RejectsBadOptions) {
  EXPECT_THAT(Client::Connect(""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  ClientOptions options;
  options.timeout = absl::ZeroDuration();
  EXPECT_THAT(Client::Connect("localhost:1", options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("timeout")));
}

TEST(ConnectTest, ConnectTimeoutReportsUnavailable) {
  ClientOptions options;
  options.connect_timeout = absl::Milliseconds(200);
  // Port 1 on loopback: nothing listens there.
  EXPECT_THAT(Client::Connect("127.0.0.1:1", options),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot connect to 127.0.0.1:1")));
}

TEST(ConnectTest, LazyClientReportsUnavailableOnCall) {
  ClientOptions options;
  options.timeout = absl::Seconds(5);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto client, Client::Connect("127.0.0.1:1", options));
  EXPECT_EQ(client->ListDictionaries({}).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ClientTest, DictionaryLifecycle) {
  v1::LoadDictionaryRequest load;
  load.set_id("sae");
  load.set_path("gemma/d8");
  load.set_format(v1::SOURCE_FORMAT_GEMMA_SCOPE);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::LoadDictionaryResponse loaded, client_->LoadDictionary(load));
  EXPECT_EQ(loaded.dictionary().d_sae(), 8);
  EXPECT_EQ(loaded.dictionary().source_format(), v1::SOURCE_FORMAT_GEMMA_SCOPE);
  EXPECT_THAT(loaded.dictionary().weights_sha256(), SizeIs(64));
  EXPECT_EQ(server_->requests().Last<v1::LoadDictionaryRequest>("LoadDictionary").format(),
            v1::SOURCE_FORMAT_GEMMA_SCOPE);
  EXPECT_THAT(client_->LoadDictionary(load),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       "dictionary 'sae' already exists; set replace to overwrite it"));

  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::ListDictionariesResponse list, client_->ListDictionaries({}));
  ASSERT_EQ(list.dictionaries_size(), 2);
  EXPECT_EQ(list.dictionaries(1).id(), "sae");

  v1::GetDictionaryRequest get;
  get.set_id("sae");
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetDictionaryResponse info, client_->GetDictionary(get));
  EXPECT_EQ(info.dictionary().source_path(), "gemma/d8");
  EXPECT_TRUE(server_->requests().last_call_had_deadline());  // the client's default timeout

  v1::DeleteDictionaryRequest del;
  del.set_id("sae");
  EXPECT_THAT(client_->DeleteDictionary(del), IsOk());
  EXPECT_THAT(client_->GetDictionary(get),
              StatusIs(absl::StatusCode::kNotFound, "dictionary 'sae' not found"));
}

TEST_F(ClientTest, EncodeDecodeIntervene) {
  v1::EncodeRequest req = EncodeRequestFor({1, -1, 3, 0, 0, 2, -5, 4}, 2);
  req.mutable_options()->set_return_reconstruction(true);
  req.mutable_options()->set_return_error(true);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::EncodeResponse enc, client_->Encode(req));
  SAEDICT_ASSERT_OK_AND_ASSIGN(wire::CsrCodes codes, wire::CsrFromProto(enc.codes()));
  EXPECT_THAT(codes.row_offsets, ElementsAre(0, 2, 4));
  EXPECT_THAT(codes.indices, ElementsAre(0, 2, 1, 3));
  EXPECT_THAT(wire::TensorToFloats(enc.row_error()).value(), ElementsAre(1.0f, 25.0f));

  v1::DecodeRequest dec;
  dec.set_dictionary_id("d4");
  *dec.mutable_codes() = enc.codes();
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::DecodeResponse decoded, client_->Decode(dec));
  EXPECT_THAT(wire::TensorToFloats(decoded.activations()).value(),
              ElementsAre(1, 0, 3, 0, 0, 2, 0, 4));

  v1::InterveneRequest iv;
  iv.set_dictionary_id("d4");
  *iv.mutable_activations() = req.activations();
  v1::FeatureEdit* edit = iv.add_edits();
  edit->set_feature(2);
  edit->set_op(v1::EDIT_OP_ABLATE);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::InterveneResponse edited, client_->Intervene(iv));
  EXPECT_THAT(wire::TensorToFloats(edited.activations()).value(),
              ElementsAre(1, -1, 0, 0, 0, 2, -5, 4));
}

TEST_F(ClientTest, ServerErrorsKeepCodeAndMessage) {
  v1::EncodeRequest req = EncodeRequestFor({1, 2, 3, 4}, 1);
  req.mutable_activations()->set_shape(1, 3);
  req.mutable_activations()->add_shape(1);
  absl::StatusOr<v1::EncodeResponse> resp = client_->Encode(req);
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kInvalidArgument);
  req = EncodeRequestFor({1, 2, 3, 4}, 1);
  req.set_dictionary_id("nope");
  EXPECT_THAT(client_->Encode(req),
              StatusIs(absl::StatusCode::kNotFound, "dictionary 'nope' not found"));
}

// Against a server that does not answer before the deadline.
TEST(ClientDeadlineTest, DeadlineExceeded) {
  ::saedict::testing::StallingService stalling;
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<::saedict::testing::LocalGrpcServer> server,
                               ::saedict::testing::LocalGrpcServer::Start(&stalling));
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client, Client::Connect(server->target()));
  v1::GetDictionaryRequest get;
  get.set_id("slow");
  CallOptions call;
  call.timeout = absl::Milliseconds(100);
  const absl::Time start = absl::Now();
  EXPECT_EQ(client->GetDictionary(get, call).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(ClientTest, EncodeStreamKeepsOrder) {
  int next = 0;
  std::vector<float> firsts;
  absl::Status s = client_->EncodeStream(
      [&]() -> absl::StatusOr<std::optional<v1::EncodeRequest>> {
        if (next == 5) return std::optional<v1::EncodeRequest>();
        const float v = static_cast<float>(++next);
        return std::optional<v1::EncodeRequest>(EncodeRequestFor({v, 0, 0, 0}, 1));
      },
      [&](v1::EncodeResponse&& resp) {
        absl::StatusOr<wire::CsrCodes> codes = wire::CsrFromProto(resp.codes());
        if (!codes.ok()) return codes.status();
        firsts.push_back(codes->values.at(0));
        return absl::OkStatus();
      });
  EXPECT_THAT(s, IsOk());
  EXPECT_THAT(firsts, ElementsAre(1, 2, 3, 4, 5));
  EXPECT_EQ(server_->requests().Count("EncodeStream"), 5);
}

TEST_F(ClientTest, EncodeStreamCallbackErrorsCancel) {
  std::atomic<int> produced{0};
  absl::Status s = client_->EncodeStream(
      [&]() -> absl::StatusOr<std::optional<v1::EncodeRequest>> {
        if (++produced > 1000) return std::optional<v1::EncodeRequest>();
        return std::optional<v1::EncodeRequest>(EncodeRequestFor({1, 0, 0, 0}, 1));
      },
      [&](v1::EncodeResponse&&) { return absl::DataLossError("disk full"); });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss, "disk full"));

  s = client_->EncodeStream(
      []() -> absl::StatusOr<std::optional<v1::EncodeRequest>> {
        return absl::InvalidArgumentError("bad input row 7");
      },
      [](v1::EncodeResponse&&) { return absl::OkStatus(); });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, "bad input row 7"));
}

TEST_F(ClientTest, EncodeStreamServerError) {
  bool sent = false;
  absl::Status s = client_->EncodeStream(
      [&]() -> absl::StatusOr<std::optional<v1::EncodeRequest>> {
        if (sent) return std::optional<v1::EncodeRequest>();
        sent = true;
        v1::EncodeRequest req = EncodeRequestFor({1, 2, 3, 4}, 1);
        req.set_dictionary_id("nope");
        return std::optional<v1::EncodeRequest>(req);
      },
      [](v1::EncodeResponse&&) { return absl::OkStatus(); });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound, HasSubstr("'nope'")));
}

}  // namespace
}  // namespace saedict::client
