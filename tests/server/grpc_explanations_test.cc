// The explanation RPCs over a real server: set / list / search / delete /
// import through the stub, their errors mapped to gRPC codes with the
// server's message, and GetFeature carrying the explanations.
#include "tests/server/grpc_test_fixture.h"

namespace saedict::testing {
namespace {

using ::testing::HasSubstr;

class GrpcExplanationsTest : public GrpcServerTest {
 protected:
  void SetUp() override {
    GrpcServerTest::SetUp();
    WriteSae("sae", engine::Architecture::kTopK);
    ASSERT_THAT(Load("a", "sae"), GrpcOk());
  }
  grpc::Status Set(uint32_t feature, const std::string& text, v1::SetExplanationResponse* out) {
    v1::SetExplanationRequest r;
    r.set_dictionary_id("a");
    r.set_feature(feature);
    r.set_text(text);
    return stub_->SetExplanation(Ctx().get(), r, out);
  }
};

TEST_F(GrpcExplanationsTest, SetSearchListDeleteAndTheFeaturePage) {
  v1::SetExplanationResponse set;
  ASSERT_THAT(Set(5, "mentions of the moon", &set), GrpcOk());
  ASSERT_THAT(Set(6, "the sun and the moon", &set), GrpcOk());
  v1::SearchExplanationsRequest search;
  search.set_query("moon");
  v1::SearchExplanationsResponse found;
  ASSERT_THAT(stub_->SearchExplanations(Ctx().get(), search, &found), GrpcOk());
  ASSERT_EQ(found.hits_size(), 2);
  EXPECT_EQ(found.hits(0).explanation().feature(), 5u);  // shorter text first
  EXPECT_EQ(found.hits(0).snippet(), "mentions of the [[moon]]");

  v1::GetFeatureRequest page;
  page.set_dictionary_id("a");
  page.set_feature(6);
  v1::GetFeatureResponse feature;
  ASSERT_THAT(stub_->GetFeature(Ctx().get(), page, &feature), GrpcOk());
  ASSERT_EQ(feature.explanations_size(), 1);
  EXPECT_EQ(feature.explanations(0).id(), set.explanation().id());

  v1::DeleteExplanationRequest del;
  del.set_dictionary_id("a");
  del.set_feature(6);
  del.set_explanation_id(set.explanation().id());
  v1::DeleteExplanationResponse deleted;
  ASSERT_THAT(stub_->DeleteExplanation(Ctx().get(), del, &deleted), GrpcOk());
  v1::ListExplanationsRequest list;
  list.set_dictionary_id("a");
  list.set_feature(6);
  v1::ListExplanationsResponse listed;
  ASSERT_THAT(stub_->ListExplanations(Ctx().get(), list, &listed), GrpcOk());
  EXPECT_EQ(listed.explanations_size(), 0);
  RestartServer();
  ASSERT_THAT(stub_->SearchExplanations(Ctx().get(), search, &found), GrpcOk());
  ASSERT_EQ(found.hits_size(), 1);
}

TEST_F(GrpcExplanationsTest, ErrorsKeepTheirCodeAndMessage) {
  v1::SetExplanationResponse set;
  EXPECT_THAT(Set(kDSae, "x", &set),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("feature: 64")));
  EXPECT_THAT(Set(0, "", &set), GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                                             HasSubstr("text: empty")));
  v1::SearchExplanationsRequest search;
  search.set_query("...");
  v1::SearchExplanationsResponse found;
  EXPECT_THAT(stub_->SearchExplanations(Ctx().get(), search, &found),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("no words")));
  search.set_query("x");
  search.add_dictionary_ids("nope");
  EXPECT_THAT(stub_->SearchExplanations(Ctx().get(), search, &found),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("dictionary_ids[0]")));
  v1::DeleteExplanationRequest del;
  del.set_dictionary_id("a");
  del.set_explanation_id("not-hex");
  v1::DeleteExplanationResponse deleted;
  EXPECT_THAT(stub_->DeleteExplanation(Ctx().get(), del, &deleted),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("'not-hex'")));
  v1::ListExplanationsRequest list;
  list.set_dictionary_id("b");
  v1::ListExplanationsResponse listed;
  EXPECT_THAT(stub_->ListExplanations(Ctx().get(), list, &listed),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("'b'")));
}

TEST_F(GrpcExplanationsTest, ImportStreamsFilesAndReportsRows) {
  v1::ImportExplanationsResponse resp;
  {
    auto ctx = Ctx();
    auto writer = stub_->ImportExplanations(ctx.get(), &resp);
    v1::ImportExplanationsRequest m;
    m.mutable_header()->set_format(v1::EXPLANATION_FORMAT_NEURONPEDIA);
    m.mutable_header()->set_default_dictionary_id("a");
    m.set_file_name("batch-0.jsonl");
    m.set_data(R"({"modelId":"m","layer":"0","index":"1","description":"firs)");
    ASSERT_TRUE(writer->Write(m));
    v1::ImportExplanationsRequest rest;
    rest.set_file_name("batch-0.jsonl");
    rest.set_data("t words\"}\n{\"modelId\":\"m\"}\n");
    ASSERT_TRUE(writer->Write(rest));
    writer->WritesDone();
    ASSERT_THAT(writer->Finish(), GrpcOk());
  }
  EXPECT_EQ(resp.imported(), 1);
  EXPECT_EQ(resp.rejected(), 1);
  ASSERT_EQ(resp.problems_size(), 1);
  EXPECT_EQ(resp.problems(0).line(), 2);
  // A stream without a header fails as a whole.
  auto ctx = Ctx();
  auto writer = stub_->ImportExplanations(ctx.get(), &resp);
  v1::ImportExplanationsRequest m;
  m.set_file_name("x.jsonl");
  writer->Write(m);
  writer->WritesDone();
  EXPECT_THAT(writer->Finish(),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("header: missing")));
}

}  // namespace
}  // namespace saedict::testing
