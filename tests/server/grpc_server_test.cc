// The server as a whole: the standard health service, message-size and
// queue limits (RESOURCE_EXHAUSTED), persistence across restarts, the demo
// dictionary, and concurrent callers through the dynamic batcher.
#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/server/grpc_test_fixture.h"
#include "tests/server/protos/health.grpc.pb.h"
#include "tests/test_util/dictionary_info_compare.h"
#include "wire/wire_codec.h"

namespace saedict::testing {
namespace {

namespace fs = std::filesystem;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using Arch = engine::Architecture;

TEST_F(GrpcServerTest, HealthCheckIsServing) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_THAT(health->Check(Ctx().get(), request, &response), GrpcOk());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  request.set_service("no.such.Service");
  EXPECT_THAT(health->Check(Ctx().get(), request, &response),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, ::testing::_));
}

class LimitsTest : public GrpcServerTest {
 protected:
  void Customize(server::ServerOptions* options) override {
    options->max_message_bytes = 64 << 10;
    options->batcher.max_batch_tokens = 64;
    options->batcher.max_queued_tokens = 100;
  }
  void SetUp() override {
    GrpcServerTest::SetUp();
    WriteSae("topk", Arch::kTopK);
    ASSERT_THAT(Load("d", "topk"), GrpcOk());
  }
};

TEST_F(LimitsTest, RequestBiggerThanMaxMessageBytesIsResourceExhausted) {
  const int64_t n = 1100;  // 1100 × 16 × 4 = 70,400 bytes > 65,536
  v1::EncodeResponse response;
  EXPECT_THAT(EncodeRows("d", RandomActivations(n, kDIn, 1), n, kDIn, &response),
              GrpcStatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, HasSubstr("larger than max")));
  // The same rows as a stream of 100-row messages (each under both limits) go through.
  auto ctx = Ctx();
  auto stream = stub_->EncodeStream(ctx.get());
  for (int i = 0; i < 11; ++i) {
    v1::EncodeRequest r;
    if (i == 0) r.set_dictionary_id("d");
    *r.mutable_activations() = F32Tensor(RandomActivations(100, kDIn, i), {100, kDIn});
    ASSERT_TRUE(stream->Write(r));
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.codes().num_rows(), 100);
  }
  stream->WritesDone();
  EXPECT_THAT(stream->Finish(), GrpcOk());
}

TEST_F(LimitsTest, ResponseBiggerThanMaxMessageBytesIsResourceExhausted) {
  // A small Decode request whose answer is not small: 1200 empty rows decode
  // to 1200 × 16 × 4 = 76,800 bytes > 65,536.
  v1::DecodeRequest request;
  request.set_dictionary_id("d");
  engine::SparseCodes codes;
  codes.num_rows = 1200;
  codes.num_features = kDSae;
  codes.row_offsets.assign(1201, 0);
  *request.mutable_codes() = wire::EncodeCodes(codes);
  ASSERT_LT(request.ByteSizeLong(), size_t{64 << 10});
  v1::DecodeResponse response;
  EXPECT_THAT(stub_->Decode(Ctx().get(), request, &response),
              GrpcStatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, HasSubstr("larger than max")));
}

TEST_F(LimitsTest, RequestBiggerThanTheQueueIsResourceExhausted) {
  v1::EncodeResponse response;
  EXPECT_THAT(EncodeRows("d", RandomActivations(100, kDIn, 2), 100, kDIn, &response), GrpcOk());
  EXPECT_THAT(EncodeRows("d", RandomActivations(101, kDIn, 2), 101, kDIn, &response),
              GrpcStatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED,
                           AllOf(HasSubstr("101"), HasSubstr("max_queued_tokens 100"))));
}

TEST_F(GrpcServerTest, DictionariesSurviveARestart) {
  WriteSae("topk", Arch::kTopK, v1::SOURCE_FORMAT_SAELENS, 41);
  WriteSae("jr", Arch::kJumpReLU, v1::SOURCE_FORMAT_SAELENS, 42);
  WriteSae("gated", Arch::kGated, v1::SOURCE_FORMAT_SAELENS, 43);
  WriteSae("gs.npz", Arch::kJumpReLU, v1::SOURCE_FORMAT_GEMMA_SCOPE, 44);
  v1::DictionaryInfo topk_info, gs_info, gated_info;
  ASSERT_THAT(Load("topk", "topk", &topk_info), GrpcOk());
  ASSERT_THAT(Load("gone", "jr"), GrpcOk());
  ASSERT_THAT(Load("gated", "topk"), GrpcOk());
  ASSERT_THAT(Load("gated", "gated", &gated_info, /*replace=*/true), GrpcOk());
  ASSERT_THAT(Load("gs", "gs.npz", &gs_info), GrpcOk());
  v1::DeleteDictionaryRequest del;
  del.set_id("gone");
  v1::DeleteDictionaryResponse deleted;
  ASSERT_THAT(stub_->DeleteDictionary(Ctx().get(), del, &deleted), GrpcOk());

  const int64_t n = 25;
  const std::vector<float> x = RandomActivations(n, kDIn, 45);
  v1::EncodeOptions options;
  options.set_return_reconstruction(true);
  std::map<std::string, v1::EncodeResponse> before;
  for (const std::string id : {"topk", "gated", "gs"}) {
    ASSERT_THAT(EncodeRows(id, x, n, kDIn, &before[id], options), GrpcOk());
  }
  // The restarted server must not need the source files.
  fs::remove_all(root_);
  fs::create_directories(root_);
  RestartServer();

  v1::ListDictionariesResponse list;
  ASSERT_THAT(stub_->ListDictionaries(Ctx().get(), {}, &list), GrpcOk());
  std::map<std::string, v1::DictionaryInfo> listed;
  for (const auto& info : list.dictionaries()) listed[info.id()] = info;
  EXPECT_EQ(listed.size(), 3u);
  EXPECT_TRUE(::saedict::testing::SameStoredInfo(listed["topk"], topk_info))
      << listed["topk"].DebugString();
  EXPECT_TRUE(::saedict::testing::SameStoredInfo(listed["gated"], gated_info))
      << listed["gated"].DebugString();
  EXPECT_TRUE(::saedict::testing::SameStoredInfo(listed["gs"], gs_info))
      << listed["gs"].DebugString();
  for (const std::string id : {"topk", "gated", "gs"}) {
    v1::EncodeResponse after;
    ASSERT_THAT(EncodeRows(id, x, n, kDIn, &after, options), GrpcOk());
    ExpectSameCodes(CodesOf(after.codes()), CodesOf(before[id].codes()), 0.0f, id);
    EXPECT_EQ(after.reconstruction().data(), before[id].reconstruction().data()) << id;
  }
  v1::GetDictionaryRequest get;
  get.set_id("gone");
  v1::GetDictionaryResponse got;
  EXPECT_THAT(stub_->GetDictionary(Ctx().get(), get, &got),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("'gone'")));
  // A delete after the restart persists too.
  del.set_id("topk");
  ASSERT_THAT(stub_->DeleteDictionary(Ctx().get(), del, &deleted), GrpcOk());
  RestartServer();
  EXPECT_THAT(ListIds(), UnorderedElementsAre("gated", "gs"));
}

TEST_F(GrpcServerTest, FailedLoadLeavesNothingAfterRestart) {
  WriteSae("bad", Arch::kTopK);
  fs::resize_file(root_ / "bad" / "sae_weights.safetensors", 50);
  EXPECT_THAT(Load("bad", "bad"), GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, ::testing::_));
  RestartServer();
  EXPECT_THAT(ListIds(), ::testing::IsEmpty());
}

TEST_F(GrpcServerTest, DemoDictionaryIsCreatedWhenAbsent) {
  options_.demo = true;
  RestartServer();
  v1::GetDictionaryRequest get;
  get.set_id("demo");
  v1::GetDictionaryResponse got;
  ASSERT_THAT(stub_->GetDictionary(Ctx().get(), get, &got), GrpcOk());
  EXPECT_EQ(got.dictionary().d_in(), 64);
  EXPECT_EQ(got.dictionary().d_sae(), 512);
  EXPECT_EQ(got.dictionary().architecture(), v1::ARCHITECTURE_TOPK);
  EXPECT_EQ(got.dictionary().k(), 16);
  v1::EncodeResponse response;
  ASSERT_THAT(EncodeRows("demo", RandomActivations(3, 64, 1), 3, 64, &response), GrpcOk());
  EXPECT_EQ(CodesOf(response.codes()).nnz(), 3 * 16);
  // A restart keeps the same one (same loaded_at), not a second copy.
  RestartServer();
  v1::GetDictionaryResponse again;
  ASSERT_THAT(stub_->GetDictionary(Ctx().get(), get, &again), GrpcOk());
  EXPECT_TRUE(::saedict::testing::SameStoredInfo(again.dictionary(), got.dictionary()));
  EXPECT_THAT(ListIds(), ElementsAre("demo"));
}

float MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  float max_diff = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    max_diff = std::max(max_diff, std::abs(a[i] - b[i]));
  }
  return max_diff;
}

// What differs between two code batches, for failure messages.
std::string Describe(const engine::SparseCodes& got, const engine::SparseCodes& want) {
  if (got.row_offsets != want.row_offsets) return "row lengths differ";
  if (got.indices != want.indices) {
    for (int64_t r = 0; r < got.num_rows; ++r) {
      if (Row(got, r) != Row(want, r)) {
        return absl::StrCat("indices differ first in row ", r, ": got ",
                            ::testing::PrintToString(Row(got, r)), " want ",
                            ::testing::PrintToString(Row(want, r)));
      }
    }
  }
  return absl::StrCat("same indices, values differ by up to ", MaxDiff(got.values, want.values));
}

class ConcurrencyTest : public GrpcServerTest {
 protected:
  void Customize(server::ServerOptions* options) override {
    options->batcher.max_batch_tokens = 64;  // small: batches merge and split
    options->batcher.max_queue_delay = absl::Milliseconds(3);
    options->batcher.num_batch_threads = 2;
  }
};

// F32 encode is batch-invariant (engine/encoder.h): a request merged with
// others gets exactly the bits of a lone encode.
TEST_F(ConcurrencyTest, ConcurrentCallersGetTheUnbatchedResult) {
  WriteSae("topk", Arch::kTopK, v1::SOURCE_FORMAT_SAELENS, 51);
  WriteSae("jr", Arch::kJumpReLU, v1::SOURCE_FORMAT_SAELENS, 52);
  ASSERT_THAT(Load("topk", "topk"), GrpcOk());
  ASSERT_THAT(Load("jr", "jr"), GrpcOk());
  const std::shared_ptr<const engine::Encoder> reference[] = {ReferenceEncoder("topk"),
                                                              ReferenceEncoder("jr")};
  const char* ids[] = {"topk", "jr"};
  constexpr int kThreads = 8, kCalls = 12;
  std::atomic<int> mismatches{0}, errors{0};
  absl::Mutex mu;
  std::string first_error, first_mismatch;
  auto note = [&](const std::string& e) {
    ++errors;
    absl::MutexLock lock(&mu);
    if (first_error.empty()) first_error = e;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int c = 0; c < kCalls; ++c) {
        const int which = (t + c) % 2;
        const int64_t n = 1 + rng() % 50;
        const std::vector<float> x = RandomActivations(n, kDIn, 1000 * t + c);
        v1::EncodeRequest request;
        request.set_dictionary_id(ids[which]);
        *request.mutable_activations() = F32Tensor(x, {n, kDIn});
        request.mutable_options()->set_top_k(c % 3 == 0 ? 3 : 0);  // mixed options
        v1::EncodeResponse response;
        grpc::Status s = stub_->Encode(Ctx().get(), request, &response);
        if (!s.ok()) {
          note(absl::StrCat(ids[which], " n=", n, ": ", s.error_message()));
          continue;
        }
        engine::EncodeOptions options;
        options.top_k = request.options().top_k();
        auto expected = reference[which]->Encode(x, n, options);
        if (!expected.ok()) {
          note(expected.status().ToString());
          continue;
        }
        auto got = wire::DecodeCodes(response.codes(), kDSae);
        if (!got.ok() || got->row_offsets != expected->codes.row_offsets ||
            got->indices != expected->codes.indices || got->values != expected->codes.values) {
          ++mismatches;
          absl::MutexLock lock(&mu);
          if (first_mismatch.empty()) {
            first_mismatch = absl::StrCat(ids[which], " n=", n, " top_k=", options.top_k, ": ",
                                          Describe(*got, expected->codes));
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0) << "first: " << first_error;
  EXPECT_EQ(mismatches.load(), 0) << "batched results differ from unbatched engine encodes; "
                                  << "first: " << first_mismatch;
}

}  // namespace
}  // namespace saedict::testing
