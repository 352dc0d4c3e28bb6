// EncodeStream and Intervene through a real gRPC server.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "tests/formats/sae_fixtures.h"
#include "tests/server/grpc_test_fixture.h"

namespace saedict::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using Arch = engine::Architecture;

class StreamInterveneTest : public GrpcServerTest {
 protected:
  void SetUp() override {
    GrpcServerTest::SetUp();
    topk_ = WriteSae("topk", Arch::kTopK, v1::SOURCE_FORMAT_SAELENS, 31).dictionary;
    relu_ = WriteSae("relu", Arch::kStandard, v1::SOURCE_FORMAT_SAELENS, 32).dictionary;
    ASSERT_THAT(Load("topk", "topk"), GrpcOk());
    ASSERT_THAT(Load("relu", "relu"), GrpcOk());
  }

  static v1::EncodeRequest Chunk(const std::string& id, const std::vector<float>& x, int64_t n) {
    v1::EncodeRequest r;
    r.set_dictionary_id(id);
    *r.mutable_activations() = F32Tensor(x, {n, kDIn});
    return r;
  }

  // Sends `requests` on one stream, collects the responses and the status.
  grpc::Status RunStream(const std::vector<v1::EncodeRequest>& requests,
                         std::vector<v1::EncodeResponse>* responses) {
    auto ctx = Ctx();
    auto stream = stub_->EncodeStream(ctx.get());
    for (const v1::EncodeRequest& r : requests) {
      if (!stream->Write(r)) break;  // the server ended the call early
    }
    stream->WritesDone();
    v1::EncodeResponse response;
    while (stream->Read(&response)) responses->push_back(response);
    return stream->Finish();
  }

  engine::Dictionary topk_, relu_;
};

TEST_F(StreamInterveneTest, StreamGivesOneResponsePerMessageInOrder) {
  const std::vector<int64_t> sizes = {5, 1, 17, 0, 8};
  std::vector<std::vector<float>> xs;
  std::vector<v1::EncodeRequest> requests;
  for (size_t i = 0; i < sizes.size(); ++i) {
    xs.push_back(RandomActivations(sizes[i], kDIn, 100 + i));
    // The id travels only in the first message.
    requests.push_back(Chunk(i == 0 ? "topk" : "", xs.back(), sizes[i]));
  }
  requests[2].mutable_options()->set_return_reconstruction(true);
  std::vector<v1::EncodeResponse> responses;
  ASSERT_THAT(RunStream(requests, &responses), GrpcOk());
  ASSERT_EQ(responses.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    v1::EncodeResponse unary;
    v1::EncodeRequest same = requests[i];
    same.set_dictionary_id("topk");
    ASSERT_THAT(Encode(same, &unary), GrpcOk());
    ExpectSameCodes(CodesOf(responses[i].codes()), CodesOf(unary.codes()), 0.0f,
                    "stream message " + std::to_string(i));
    EXPECT_EQ(responses[i].has_reconstruction(), i == 2);
  }
}

TEST_F(StreamInterveneTest, StreamCanSwitchDictionary) {
  const std::vector<float> x = RandomActivations(4, kDIn, 7);
  std::vector<v1::EncodeResponse> responses;
  ASSERT_THAT(RunStream({Chunk("topk", x, 4), Chunk("relu", x, 4), Chunk("", x, 4)}, &responses),
              GrpcOk());
  ASSERT_EQ(responses.size(), 3u);
  v1::EncodeResponse relu;
  ASSERT_THAT(EncodeRows("relu", x, 4, kDIn, &relu), GrpcOk());
  ExpectSameCodes(CodesOf(responses[1].codes()), CodesOf(relu.codes()), 0.0f, "switched");
  ExpectSameCodes(CodesOf(responses[2].codes()), CodesOf(relu.codes()), 0.0f, "kept the switch");
}

TEST_F(StreamInterveneTest, ErrorInALaterMessageNamesItsIndex) {
  const std::vector<float> x = RandomActivations(3, kDIn, 8);
  std::vector<v1::EncodeRequest> requests = {Chunk("topk", x, 3), Chunk("", x, 3), Chunk("", x, 3),
                                             Chunk("", x, 3)};
  requests[2].mutable_activations()->mutable_data()->resize(10);
  std::vector<v1::EncodeResponse> responses;
  EXPECT_THAT(RunStream(requests, &responses),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                           AllOf(HasSubstr("stream message 2"), HasSubstr("activations.data"),
                                 HasSubstr("10 bytes"))));
  EXPECT_EQ(responses.size(), 2u) << "the messages before the bad one were answered";
}

TEST_F(StreamInterveneTest, StreamErrors) {
  const std::vector<float> x = RandomActivations(2, kDIn, 9);
  std::vector<v1::EncodeResponse> responses;
  EXPECT_THAT(RunStream({Chunk("", x, 2)}, &responses),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                           AllOf(HasSubstr("stream message 0"), HasSubstr("dictionary_id"))));
  responses.clear();
  EXPECT_THAT(RunStream({Chunk("topk", x, 2), Chunk("unknown", x, 2)}, &responses),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND,
                           AllOf(HasSubstr("stream message 1"), HasSubstr("'unknown'"))));
  EXPECT_EQ(responses.size(), 1u);
  responses.clear();
  EXPECT_THAT(RunStream({}, &responses), GrpcOk());
  EXPECT_TRUE(responses.empty());
}

// --- Intervene -----------------------------------------------------------------

class InterveneTest : public StreamInterveneTest {
 protected:
  static constexpr int64_t kN = 6;
  void SetUp() override {
    StreamInterveneTest::SetUp();
    x_ = RandomActivations(kN, kDIn, 77);
    v1::EncodeResponse response;
    ASSERT_THAT(EncodeRows("relu", x_, kN, kDIn, &response), GrpcOk());
    codes_ = CodesOf(response.codes());
    // A feature active in row 0 (and so worth editing).
    ASSERT_GT(Row(codes_, 0).size(), 0u);
    feature_ = Row(codes_, 0)[0].first;
  }
  float Value(int64_t row, uint32_t feature) const {
    for (auto& [i, v] : Row(codes_, row)) {
      if (i == feature) return v;
    }
    return 0.0f;
  }
  v1::InterveneRequest Request(std::vector<v1::FeatureEdit> edits) const {
    v1::InterveneRequest r;
    r.set_dictionary_id("relu");
    *r.mutable_activations() = F32Tensor(x_, {kN, kDIn});
    for (auto& e : edits) *r.add_edits() = e;
    return r;
  }
  static v1::FeatureEdit Edit(uint32_t feature, v1::EditOp op, float value,
                              std::vector<int64_t> rows = {}) {
    v1::FeatureEdit e;
    e.set_feature(feature);
    e.set_op(op);
    e.set_value(value);
    for (int64_t r : rows) e.add_rows(r);
    return e;
  }
  std::vector<float> x_;
  engine::SparseCodes codes_;
  uint32_t feature_ = 0;
};

TEST_F(InterveneTest, NoEditsReturnsTheInput) {
  v1::InterveneResponse response;
  ASSERT_THAT(stub_->Intervene(Ctx().get(), Request({}), &response), GrpcOk());
  EXPECT_THAT(response.activations().shape(), ::testing::ElementsAre(kN, kDIn));
  const std::vector<float> out = FloatsOf(response.activations());
  ASSERT_EQ(out.size(), x_.size());
  for (size_t i = 0; i < x_.size(); ++i) EXPECT_NEAR(out[i], x_[i], 1e-5f) << i;
  ExpectSameCodes(CodesOf(response.codes()), codes_, 0.0f, "unedited codes");
}

TEST_F(InterveneTest, EditSemanticsPreserveTheErrorTerm) {
  struct Case {
    const char* name;
    v1::EditOp op;
    float value;
    std::function<float(float)> f_new;
  };
  const std::vector<Case> cases = {
      {"ablate", v1::EDIT_OP_ABLATE, 0.0f, [](float) { return 0.0f; }},
      {"set", v1::EDIT_OP_SET, 2.5f, [](float) { return 2.5f; }},
      {"scale", v1::EDIT_OP_SCALE, 3.0f, [](float f) { return 3.0f * f; }},
      {"add", v1::EDIT_OP_ADD, 0.75f, [](float f) { return f + 0.75f; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    for (bool only_row_0 : {false, true}) {
      SCOPED_TRACE(only_row_0 ? "rows={0}" : "every row");
      std::vector<int64_t> rows;
      if (only_row_0) rows = {0};
      v1::InterveneResponse response;
      ASSERT_THAT(
          stub_->Intervene(Ctx().get(), Request({Edit(feature_, c.op, c.value, rows)}), &response),
          GrpcOk());
      const std::vector<float> out = FloatsOf(response.activations());
      const engine::SparseCodes edited = CodesOf(response.codes());
      ASSERT_EQ(out.size(), x_.size());
      for (int64_t r = 0; r < kN; ++r) {
        const bool edited_row = !only_row_0 || r == 0;
        const float f = Value(r, feature_);
        const float f_new = edited_row ? c.f_new(f) : f;
        float got = 0.0f;
        for (auto& [i, v] : Row(edited, r)) {
          if (i == feature_) got = v;
        }
        EXPECT_NEAR(got, f_new, 1e-6f) << "edited code, row " << r;
        for (int64_t j = 0; j < kDIn; ++j) {
          const float expected = x_[r * kDIn + j] + (f_new - f) * relu_.w_dec[feature_ * kDIn + j];
          EXPECT_NEAR(out[r * kDIn + j], expected, 1e-4f) << "row " << r << " col " << j;
        }
      }
    }
  }
}

TEST_F(InterveneTest, SeveralEditsCompose) {
  // Set an inactive feature in row 1 and ablate the active one everywhere.
  uint32_t inactive = 0;
  while (Value(1, inactive) != 0.0f) ++inactive;
  v1::InterveneResponse response;
  ASSERT_THAT(stub_->Intervene(Ctx().get(),
                               Request({Edit(feature_, v1::EDIT_OP_ABLATE, 0.0f),
                                        Edit(inactive, v1::EDIT_OP_SET, 1.25f, {1})}),
                               &response),
              GrpcOk());
  const std::vector<float> out = FloatsOf(response.activations());
  for (int64_t j = 0; j < kDIn; ++j) {
    const float expected = x_[kDIn + j] - Value(1, feature_) * relu_.w_dec[feature_ * kDIn + j] +
                           1.25f * relu_.w_dec[inactive * kDIn + j];
    EXPECT_NEAR(out[kDIn + j], expected, 1e-4f) << j;
  }
}

TEST_F(InterveneTest, BadEditsAreRejected) {
  struct Case {
    const char* name;
    v1::FeatureEdit edit;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"feature == d_sae", Edit(64, v1::EDIT_OP_ABLATE, 0), {"feature 64", "64"}},
      {"huge feature", Edit(4000000000u, v1::EDIT_OP_SET, 1), {"4000000000"}},
      {"unspecified op", Edit(1, v1::EDIT_OP_UNSPECIFIED, 0), {"edits[0].op", "UNSPECIFIED"}},
      {"unknown op", Edit(1, static_cast<v1::EditOp>(42), 0), {"edits[0].op", "42"}},
      {"row == n", Edit(1, v1::EDIT_OP_ABLATE, 0, {kN}), {"row 6"}},
      {"negative row", Edit(1, v1::EDIT_OP_ABLATE, 0, {-1}), {"row -1"}},
      {"duplicate row", Edit(1, v1::EDIT_OP_ABLATE, 0, {2, 2}), {"row 2"}},
      {"NaN value", Edit(1, v1::EDIT_OP_SET, std::nanf("")), {"nan"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::InterveneResponse response;
    grpc::Status s = stub_->Intervene(Ctx().get(), Request({c.edit}), &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    for (const std::string& part : c.parts) EXPECT_THAT(s.error_message(), HasSubstr(part));
  }
  // The second edit is the bad one: the message says which.
  v1::InterveneResponse response;
  grpc::Status s = stub_->Intervene(
      Ctx().get(), Request({Edit(1, v1::EDIT_OP_ABLATE, 0), Edit(1, v1::EDIT_OP_UNSPECIFIED, 0)}),
      &response);
  EXPECT_THAT(s, GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("edits[1]")));
}

TEST_F(InterveneTest, BadRequestsAreRejected) {
  v1::InterveneResponse response;
  v1::InterveneRequest r = Request({});
  r.set_dictionary_id("nope");
  EXPECT_THAT(stub_->Intervene(Ctx().get(), r, &response),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("'nope'")));
  r = Request({});
  r.clear_dictionary_id();
  EXPECT_THAT(stub_->Intervene(Ctx().get(), r, &response),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("dictionary_id")));
  r = Request({});
  *r.mutable_activations() = F32Tensor(std::vector<float>(2 * 15), {2, 15});
  EXPECT_THAT(stub_->Intervene(Ctx().get(), r, &response),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                           AllOf(HasSubstr("activations.shape"), HasSubstr("d_in 16"))));
  r = Request({});
  r.mutable_options()->set_top_k(-2);
  EXPECT_THAT(stub_->Intervene(Ctx().get(), r, &response),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("options.top_k")));
}

}  // namespace
}  // namespace saedict::testing
