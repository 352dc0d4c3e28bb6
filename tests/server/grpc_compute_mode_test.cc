// Compute modes over gRPC: a request without compute_mode gets its
// dictionary's default (the fastest exact mode on this CPU unless the load or
// the server says otherwise), FAST_EXACT answers with the F32 codes bit for
// bit, every answer names the mode that ran, the per-dictionary default
// survives a restart, and bad modes are refused naming the field.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/server/grpc_test_fixture.h"

namespace saedict::testing {
namespace {

using ::testing::HasSubstr;
using Arch = engine::Architecture;

class ComputeModeTest : public GrpcServerTest {
 protected:
  void SetUp() override {
    GrpcServerTest::SetUp();
    WriteSae("topk", Arch::kTopK);
  }
  grpc::Status LoadWithDefault(const std::string& id, v1::ComputeMode mode,
                               v1::DictionaryInfo* info) {
    v1::LoadDictionaryRequest request;
    request.set_id(id);
    request.set_path("topk");
    request.set_default_compute_mode(mode);
    v1::LoadDictionaryResponse response;
    grpc::Status s = stub_->LoadDictionary(Ctx().get(), request, &response);
    if (info != nullptr) *info = response.dictionary();
    return s;
  }
  v1::EncodeRequest Rows(const std::string& id, int64_t n = 40) {
    v1::EncodeRequest r;
    r.set_dictionary_id(id);
    *r.mutable_activations() = F32Tensor(RandomActivations(n, kDIn, 5), {n, kDIn});
    return r;
  }
  v1::DictionaryInfo Info(const std::string& id) {
    v1::GetDictionaryRequest get;
    get.set_id(id);
    v1::GetDictionaryResponse out;
    EXPECT_THAT(stub_->GetDictionary(Ctx().get(), get, &out), GrpcOk());
    return out.dictionary();
  }
};

TEST_F(ComputeModeTest, UnsetGetsTheFastestExactModeWithTheF32Codes) {
  v1::DictionaryInfo info;
  ASSERT_THAT(Load("d", "topk", &info), GrpcOk());
  EXPECT_EQ(info.default_compute_mode(), FastestExactMode());
  EXPECT_EQ(info.fast_exact_ready(), engine::Encoder::FastExactAvailable());
  EXPECT_EQ(info.fast_exact_bytes() > 0, engine::Encoder::FastExactAvailable());
  // The screen in use, named: a bf16 one exactly where it is the default.
  if (engine::Encoder::FastExactAvailable()) {
    EXPECT_THAT(info.fast_exact_screen(),
                ::testing::AnyOf("amx-bf16", "avx512-bf16", "avx2-int16"));
    EXPECT_EQ(info.fast_exact_screen().find("bf16") != std::string::npos,
              engine::Encoder::FastExactFastest())
        << info.fast_exact_screen();
  } else {
    EXPECT_EQ(info.fast_exact_screen(), "");
  }

  v1::EncodeRequest request = Rows("d");
  v1::EncodeResponse unset, f32, fast;
  ASSERT_THAT(Encode(request, &unset), GrpcOk());
  request.mutable_options()->set_compute_mode(v1::COMPUTE_MODE_F32);
  ASSERT_THAT(Encode(request, &f32), GrpcOk());
  request.mutable_options()->set_compute_mode(v1::COMPUTE_MODE_FAST_EXACT);
  ASSERT_THAT(Encode(request, &fast), GrpcOk());
  EXPECT_EQ(unset.compute_mode(), FastestExactMode());
  EXPECT_EQ(f32.compute_mode(), v1::COMPUTE_MODE_F32);
  EXPECT_EQ(fast.compute_mode(), FastExactRunsAs()) << "FAST_EXACT without a screen runs F32";
  EXPECT_EQ(unset.codes().SerializeAsString(), f32.codes().SerializeAsString());
  EXPECT_EQ(fast.codes().SerializeAsString(), f32.codes().SerializeAsString());

  v1::InterveneRequest iv;
  iv.set_dictionary_id("d");
  *iv.mutable_activations() = request.activations();
  v1::InterveneResponse iv_out;
  ASSERT_THAT(stub_->Intervene(Ctx().get(), iv, &iv_out), GrpcOk());
  EXPECT_EQ(iv_out.compute_mode(), FastestExactMode());
}

TEST_F(ComputeModeTest, ThePerDictionaryDefaultIsKeptAcrossARestart) {
  v1::DictionaryInfo info;
  ASSERT_THAT(LoadWithDefault("exact", v1::COMPUTE_MODE_F32, &info), GrpcOk());
  EXPECT_EQ(info.default_compute_mode(), v1::COMPUTE_MODE_F32);
  ASSERT_THAT(Load("auto", "topk"), GrpcOk());
  v1::EncodeResponse response;
  ASSERT_THAT(Encode(Rows("exact"), &response), GrpcOk());
  EXPECT_EQ(response.compute_mode(), v1::COMPUTE_MODE_F32);

  RestartServer();
  EXPECT_EQ(Info("exact").default_compute_mode(), v1::COMPUTE_MODE_F32);
  EXPECT_EQ(Info("auto").default_compute_mode(), FastestExactMode());
  EXPECT_EQ(Info("auto").fast_exact_ready(), engine::Encoder::FastExactAvailable());
  ASSERT_THAT(Encode(Rows("exact"), &response), GrpcOk());
  EXPECT_EQ(response.compute_mode(), v1::COMPUTE_MODE_F32);
}

TEST_F(ComputeModeTest, IngestWithoutAModeUsesTheDefaultAndSaysSo) {
  ASSERT_THAT(Load("d", "topk"), GrpcOk());
  v1::IngestRequest request;
  request.set_dictionary_id("d");
  request.set_corpus("c");
  v1::IngestDocument* doc = request.add_documents();
  doc->set_doc_id(1);
  const std::vector<int32_t> tokens = {5, 6, 7};
  doc->set_token_ids(std::string(reinterpret_cast<const char*>(tokens.data()), 12));
  *doc->mutable_activations() = F32Tensor(RandomActivations(3, kDIn, 2), {3, kDIn});
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub_->Ingest(&ctx);
  ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  v1::IngestAck ack;
  ASSERT_TRUE(stream->Read(&ack));
  EXPECT_EQ(ack.compute_mode(), FastestExactMode());
  EXPECT_THAT(stream->Finish(), GrpcOk());
}

TEST_F(ComputeModeTest, BadModesAreRefusedNamingTheField) {
  ASSERT_THAT(Load("d", "topk"), GrpcOk());
  v1::EncodeRequest request = Rows("d");
  request.mutable_options()->set_compute_mode(static_cast<v1::ComputeMode>(7));
  v1::EncodeResponse response;
  EXPECT_THAT(Encode(request, &response),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                           HasSubstr("options.compute_mode: 7 is not a ComputeMode")));

  EXPECT_THAT(LoadWithDefault("e", static_cast<v1::ComputeMode>(9), nullptr),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                           HasSubstr("default_compute_mode: 9 is not a ComputeMode")));
  EXPECT_THAT(ListIds(), ::testing::ElementsAre("d")) << "a refused load leaves nothing";
  if (!engine::Encoder::Bf16Available()) {
    EXPECT_THAT(LoadWithDefault("b", v1::COMPUTE_MODE_BF16, nullptr),
                GrpcStatusIs(grpc::StatusCode::UNIMPLEMENTED, HasSubstr("default_compute_mode")));
  }
}

class ServerDefaultModeTest : public ComputeModeTest {
 protected:
  void Customize(server::ServerOptions* options) override {
    options->default_compute_mode = engine::ComputeMode::kF32;
  }
};

TEST_F(ServerDefaultModeTest, TheServerFlagSetsTheDefaultOfDictionariesLoadedWithoutOne) {
  v1::DictionaryInfo info;
  ASSERT_THAT(Load("d", "topk", &info), GrpcOk());
  EXPECT_EQ(info.default_compute_mode(), v1::COMPUTE_MODE_F32);
  ASSERT_THAT(LoadWithDefault("fast", v1::COMPUTE_MODE_FAST_EXACT, &info), GrpcOk());
  EXPECT_EQ(info.default_compute_mode(), v1::COMPUTE_MODE_FAST_EXACT);
  v1::EncodeResponse response;
  ASSERT_THAT(Encode(Rows("d"), &response), GrpcOk());
  EXPECT_EQ(response.compute_mode(), v1::COMPUTE_MODE_F32);
  ASSERT_THAT(Encode(Rows("fast"), &response), GrpcOk());
  EXPECT_EQ(response.compute_mode(), FastExactRunsAs());
}

class NoScreenTest : public ComputeModeTest {
 protected:
  void Customize(server::ServerOptions* options) override { options->fast_exact = false; }
};

TEST_F(NoScreenTest, WithoutTheScreenFastExactRunsF32AndHoldsNoCopy) {
  v1::DictionaryInfo info;
  ASSERT_THAT(Load("d", "topk", &info), GrpcOk());
  EXPECT_FALSE(info.fast_exact_ready());
  EXPECT_EQ(info.fast_exact_bytes(), 0);
  EXPECT_EQ(info.fast_exact_screen(), "");
  EXPECT_EQ(info.default_compute_mode(), v1::COMPUTE_MODE_F32);
  v1::EncodeRequest request = Rows("d");
  request.mutable_options()->set_compute_mode(v1::COMPUTE_MODE_FAST_EXACT);
  v1::EncodeResponse response;
  ASSERT_THAT(Encode(request, &response), GrpcOk());
  EXPECT_EQ(response.compute_mode(), v1::COMPUTE_MODE_F32);
}

}  // namespace
}  // namespace saedict::testing
