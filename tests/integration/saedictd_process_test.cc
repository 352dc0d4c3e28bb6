// The real saedictd binary end to end: start on port 0, load over gRPC,
// SIGTERM drains and exits 0, restarts keep dictionaries (also after kill -9
// once a load was acknowledged), the demo dictionary, the data-dir lock, and
// the standard health and reflection services.
//
// This binary links no server code: it must not link libgrpc++_reflection,
// whose generated descriptors clash with tests/server/protos/reflection.proto.
#include "tests/integration/saedictd_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "saedict/config/v1/server_config.pb.h"
#include "saedict/v1/saedict.grpc.pb.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/server/grpc_test_util.h"
#include "tests/server/protos/health.grpc.pb.h"
#include "tests/server/protos/reflection.grpc.pb.h"
#include "tests/test_util/test_env.h"
#include "util/sha256.h"

namespace saedict::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr int64_t kDIn = 16, kDSae = 64;

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return ctx;
}

class SaedictdProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = scratch_.path() / "root";
    fs::create_directories(root_);
    ASSERT_TRUE(WriteSaeLensFolder(root_ / "topk",
                                   RandomDictionary(engine::Architecture::kTopK, kDIn, kDSae, 4, 5))
                    .ok());
    ASSERT_TRUE(WriteSaeLensFolder(root_ / "relu", RandomDictionary(engine::Architecture::kStandard,
                                                                    kDIn, kDSae, 0, 6))
                    .ok());
  }

  // Starts saedictd on the scratch data dir; ASSERTs.
  void Start(std::vector<std::string> extra_flags = {}) {
    SaedictdProcess::Options options;
    options.data_dir = scratch_.path() / "data";
    options.dictionary_root = root_;
    options.port_file = scratch_.path() / "port";
    options.extra_flags = std::move(extra_flags);
    absl::StatusOr<std::unique_ptr<SaedictdProcess>> process = SaedictdProcess::Start(options);
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = *std::move(process);
    channel_ = process_->Connect();
    stub_ = v1::Saedict::NewStub(channel_);
  }

  // SIGTERM → drained exit with status 0 (idle client connections do not
  // hold it: IdleConnectedClientsDoNotHoldTheDrain).
  void StopGracefully(bool keep_channel = false) {
    if (!keep_channel) {
      stub_.reset();
      channel_.reset();
    }
    std::optional<int> status = process_->SignalAndWait(SIGTERM, absl::Seconds(30));
    ASSERT_TRUE(status.has_value()) << "saedictd did not exit within 30 s of SIGTERM";
    EXPECT_TRUE(WIFEXITED(*status)) << "wait status " << *status;
    EXPECT_EQ(WEXITSTATUS(*status), 0);
    process_.reset();
  }

  void KillNine() {
    std::optional<int> status = process_->SignalAndWait(SIGKILL, absl::Seconds(30));
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFSIGNALED(*status));
    process_.reset();
  }

  grpc::Status Load(const std::string& id, const std::string& path, bool replace = false) {
    v1::LoadDictionaryRequest request;
    request.set_id(id);
    request.set_path(path);
    request.set_replace(replace);
    v1::LoadDictionaryResponse response;
    return stub_->LoadDictionary(Ctx().get(), request, &response);
  }

  std::vector<std::string> ListIds() {
    v1::ListDictionariesResponse response;
    grpc::Status s = stub_->ListDictionaries(Ctx().get(), {}, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> ids;
    for (const auto& info : response.dictionaries()) ids.push_back(info.id());
    return ids;
  }

  engine::SparseCodes EncodeCodes(const std::string& id, const std::vector<float>& x, int64_t n,
                                  int64_t d_in = kDIn) {
    v1::EncodeRequest request;
    request.set_dictionary_id(id);
    *request.mutable_activations() = F32Tensor(x, {n, d_in});
    v1::EncodeResponse response;
    grpc::Status s = stub_->Encode(Ctx().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return CodesOf(response.codes());
  }

  ScratchDir scratch_;
  fs::path root_;
  std::unique_ptr<SaedictdProcess> process_;  // killed and reaped by its destructor
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Saedict::Stub> stub_;
};

// --config: a text-format ServerConfig sets flags, the command line wins,
// a bad file stops saedictd with exit 2, and the config message has a field
// for every saedictd flag (so the two cannot drift apart).
TEST_F(SaedictdProcessTest, ConfigFileSetsFlagsAndTheCommandLineWins) {
  const fs::path config = scratch_.path() / "saedictd.textproto";
  std::ofstream(config) << "# from a file\ndemo: false\nhttp_port: -1\n";
  Start({"--config=" + config.string()});
  EXPECT_THAT(ListIds(), ::testing::IsEmpty()) << "demo: false from the file";
  StopGracefully();
  Start({"--config=" + config.string(), "--demo=true", "--demo_corpus=false"});
  EXPECT_THAT(ListIds(), ::testing::ElementsAre("demo")) << "--demo=true on the command line wins";
  StopGracefully();

  std::ofstream(config) << "demo: maybe\n";
  std::optional<int> bad = RunSaedictd({"--config=" + config.string()}, absl::Seconds(60));
  ASSERT_TRUE(bad.has_value());
  EXPECT_TRUE(WIFEXITED(*bad) && WEXITSTATUS(*bad) == 2) << "wait status " << *bad;

  FILE* help = popen((SaedictdBinary().string() + " --helpfull 2>&1").c_str(), "r");
  ASSERT_NE(help, nullptr);
  std::string text;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, help)) text.append(buffer, n);
  pclose(help);
  std::set<std::string> flags;
  bool in_main = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, "Flags from ")) in_main = absl::StrContains(line, "saedictd_main.cc");
    if (in_main && absl::StartsWith(line, "    --")) {
      line.remove_prefix(6);
      flags.insert(std::string(line.substr(0, line.find_first_of(" ("))));
    }
  }
  flags.erase("config");
  std::set<std::string> fields;
  const google::protobuf::Descriptor* d = config::v1::ServerConfig::descriptor();
  for (int i = 0; i < d->field_count(); ++i) fields.insert(d->field(i)->name());
  EXPECT_GE(flags.size(), 30u) << text;
  EXPECT_EQ(flags, fields);
}

TEST_F(SaedictdProcessTest, SigtermExitsZeroAndRestartKeepsDictionaries) {
  Start();
  EXPECT_THAT(ListIds(), Contains("demo")) << "--demo defaults to true";
  ASSERT_THAT(Load("mine", "topk"), GrpcOk());
  const std::vector<float> x = RandomActivations(12, kDIn, 3);
  const engine::SparseCodes before = EncodeCodes("mine", x, 12);
  EXPECT_GT(before.nnz(), 0);
  StopGracefully();

  Start();
  EXPECT_THAT(ListIds(), UnorderedElementsAre("demo", "mine"));
  ExpectSameCodes(EncodeCodes("mine", x, 12), before, 0.0f, "after restart");
  // Encode with the demo dictionary works too.
  EXPECT_EQ(EncodeCodes("demo", RandomActivations(2, 64, 4), 2, 64).nnz(), 2 * 16);
  StopGracefully(/*keep_channel=*/true);  // a connected client must not block the exit
}

TEST_F(SaedictdProcessTest, AcknowledgedLoadSurvivesKillNine) {
  Start({"--demo=false"});
  ASSERT_THAT(Load("durable", "topk"), GrpcOk());
  KillNine();  // right after the acknowledgement

  Start({"--demo=false"});
  EXPECT_THAT(ListIds(), UnorderedElementsAre("durable"));
  const std::vector<float> x = RandomActivations(5, kDIn, 9);
  EXPECT_GT(EncodeCodes("durable", x, 5).nnz(), 0);
  // An acknowledged delete and a replace survive kill -9 as well.
  ASSERT_THAT(Load("second", "topk"), GrpcOk());
  ASSERT_THAT(Load("second", "relu", /*replace=*/true), GrpcOk());
  v1::DeleteDictionaryRequest del;
  del.set_id("durable");
  v1::DeleteDictionaryResponse deleted;
  ASSERT_THAT(stub_->DeleteDictionary(Ctx().get(), del, &deleted), GrpcOk());
  KillNine();

  Start({"--demo=false"});
  EXPECT_THAT(ListIds(), UnorderedElementsAre("second"));
  v1::GetDictionaryRequest get;
  get.set_id("second");
  v1::GetDictionaryResponse got;
  ASSERT_THAT(stub_->GetDictionary(Ctx().get(), get, &got), GrpcOk());
  EXPECT_EQ(got.dictionary().architecture(), v1::ARCHITECTURE_STANDARD);
  StopGracefully();
}

TEST_F(SaedictdProcessTest, IdleConnectedClientsDoNotHoldTheDrain) {
  Start({"--drain_grace=20s"});
  ASSERT_TRUE(Load("a", "topk").ok());
  // Three idle, connected clients (one has made a call, two never did).
  std::vector<std::shared_ptr<grpc::Channel>> idle = {channel_, process_->Connect(),
                                                      process_->Connect()};
  for (const auto& c : idle) ASSERT_EQ(c->GetState(false), GRPC_CHANNEL_READY);
  const absl::Time start = absl::Now();
  std::optional<int> status = process_->SignalAndWait(SIGTERM, absl::Seconds(30));
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
  EXPECT_LT(took, absl::Seconds(3))
      << "an idle client held the drain for " << absl::FormatDuration(took);
  process_.reset();
}

TEST_F(SaedictdProcessTest, DrainCancelsWorkPastTheGracePeriod) {
  // A stream that never ends: the drain waits --drain_grace, then cancels it.
  Start({"--drain_grace=1s"});
  ASSERT_TRUE(Load("a", "topk").ok());
  grpc::ClientContext ctx;
  auto stream = stub_->EncodeStream(&ctx);
  v1::EncodeRequest request;
  request.set_dictionary_id("a");
  *request.mutable_activations() = F32Tensor(std::vector<float>(kDIn, 0.5f), {1, kDIn});
  ASSERT_TRUE(stream->Write(request));
  v1::EncodeResponse response;
  ASSERT_TRUE(stream->Read(&response));
  const absl::Time start = absl::Now();
  std::optional<int> status = process_->SignalAndWait(SIGTERM, absl::Seconds(30));
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
  EXPECT_GE(took, absl::Milliseconds(900)) << "the open stream had its grace period";
  EXPECT_LT(took, absl::Seconds(4));
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_FALSE(stream->Finish().ok());
  process_.reset();
}

TEST_F(SaedictdProcessTest, SighupReloadsTheTokenFile) {
  const fs::path tokens = scratch_.path() / "tokens";
  auto write_tokens = [&](const std::string& text) {
    std::ofstream(tokens.string() + ".tmp") << text;
    fs::rename(tokens.string() + ".tmp", tokens);
  };
  write_tokens("read " + Sha256Hex("first") + " a\n");
  Start({"--auth_tokens_file=" + tokens.string()});
  auto list = [&](const std::string& token) {
    auto ctx = Ctx();
    ctx->AddMetadata("authorization", "Bearer " + token);
    v1::ListDictionariesResponse response;
    return stub_->ListDictionaries(ctx.get(), {}, &response).error_code();
  };
  EXPECT_EQ(list("first"), grpc::StatusCode::OK);
  EXPECT_EQ(list("second"), grpc::StatusCode::UNAUTHENTICATED);
  write_tokens("read " + Sha256Hex("second") + " b\n");
  kill(process_->pid(), SIGHUP);
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  for (int i = 0; i < 100 && (code = list("second")) != grpc::StatusCode::OK; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(code, grpc::StatusCode::OK);
  EXPECT_EQ(list("first"), grpc::StatusCode::UNAUTHENTICATED);
  write_tokens("this line is not a token line\n");
  kill(process_->pid(), SIGHUP);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(list("second"), grpc::StatusCode::OK) << "a bad file keeps the old tokens";
  StopGracefully();
}

TEST_F(SaedictdProcessTest, SecondServerOnTheSameDataDirFails) {
  Start();
  std::optional<int> status =
      RunSaedictd({"--port=0", "--data_dir=" + (scratch_.path() / "data").string(),
                   "--dictionary_root=" + root_.string(),
                   "--port_file=" + (scratch_.path() / "port2").string()},
                  absl::Seconds(60));
  ASSERT_TRUE(status.has_value()) << "the second saedictd kept running on a locked data dir";
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_NE(WEXITSTATUS(*status), 0);
  EXPECT_FALSE(fs::exists(scratch_.path() / "port2"));
  // The first one is unaffected.
  EXPECT_THAT(ListIds(), Contains("demo"));
}

TEST_F(SaedictdProcessTest, HealthCheckIsServing) {
  Start();
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_THAT(health->Check(Ctx().get(), request, &response), GrpcOk());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(SaedictdProcessTest, ReflectionListsAndDescribesTheService) {
  Start();
  namespace refl = grpc::reflection::v1alpha;
  auto reflection = refl::ServerReflection::NewStub(channel_);
  auto ctx = Ctx();
  auto stream = reflection->ServerReflectionInfo(ctx.get());

  refl::ServerReflectionRequest list;
  list.set_list_services("*");
  ASSERT_TRUE(stream->Write(list));
  refl::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_list_services_response()) << response.DebugString();
  std::vector<std::string> services;
  for (const auto& s : response.list_services_response().service()) services.push_back(s.name());
  EXPECT_THAT(services, IsSupersetOf({"saedict.v1.Saedict", "grpc.health.v1.Health",
                                      "grpc.reflection.v1alpha.ServerReflection"}));

  refl::ServerReflectionRequest describe;
  describe.set_file_containing_symbol("saedict.v1.Saedict");
  ASSERT_TRUE(stream->Write(describe));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_file_descriptor_response()) << response.DebugString();
  bool found = false;
  for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    ASSERT_TRUE(file.ParseFromString(bytes));
    if (file.name() != "saedict/v1/saedict.proto") continue;
    found = true;
    ASSERT_EQ(file.service_size(), 1);
    std::vector<std::string> methods;
    for (const auto& m : file.service(0).method()) methods.push_back(m.name());
    EXPECT_THAT(methods, IsSupersetOf({"LoadDictionary", "ListDictionaries", "GetDictionary",
                                       "DeleteDictionary", "Encode", "Decode", "EncodeStream",
                                       "Intervene"}));
  }
  EXPECT_TRUE(found) << "no saedict/v1/saedict.proto in the reflection answer";

  refl::ServerReflectionRequest unknown;
  unknown.set_file_containing_symbol("no.such.Symbol");
  ASSERT_TRUE(stream->Write(unknown));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_error_response());
  EXPECT_EQ(response.error_response().error_code(), int(grpc::StatusCode::NOT_FOUND));

  stream->WritesDone();
  EXPECT_THAT(stream->Finish(), GrpcOk());
}

// Hostile sizes must be answered with INVALID_ARGUMENT, never take the
// server down (a crash here would show as UNAVAILABLE and a dead child).
TEST_F(SaedictdProcessTest, HostileSizesDoNotCrashTheServer) {
  Start({"--demo=false"});
  ASSERT_THAT(Load("d", "topk"), GrpcOk());
  // (num_rows + 1) * 8 bytes of offsets wraps to 0 in 64 bits.
  v1::DecodeRequest decode;
  decode.set_dictionary_id("d");
  decode.mutable_codes()->set_num_rows(std::numeric_limits<int64_t>::max());
  decode.mutable_codes()->set_num_features(kDSae);
  v1::DecodeResponse decoded;
  EXPECT_THAT(stub_->Decode(Ctx().get(), decode, &decoded),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("codes")));
  // rows * d_in * 4 bytes wraps to 0 in 64 bits.
  v1::EncodeRequest encode;
  encode.set_dictionary_id("d");
  encode.mutable_activations()->set_dtype(v1::DTYPE_F32);
  encode.mutable_activations()->add_shape(int64_t{1} << 62);
  encode.mutable_activations()->add_shape(kDIn);
  v1::EncodeResponse encoded;
  EXPECT_THAT(stub_->Encode(Ctx().get(), encode, &encoded),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, ::testing::_));
  // Still alive and serving.
  int status = 0;
  EXPECT_EQ(waitpid(process_->pid(), &status, WNOHANG), 0) << "saedictd died";
  EXPECT_THAT(ListIds(), UnorderedElementsAre("d"));
}

TEST_F(SaedictdProcessTest, BadFlagsExitNonZero) {
  // A data dir that cannot be created: a file stands in its way.
  std::ofstream(scratch_.path() / "file") << "x";
  std::optional<int> status = RunSaedictd(
      {"--port=0", "--data_dir=" + (scratch_.path() / "file" / "sub").string()}, absl::Seconds(60));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_NE(WEXITSTATUS(*status), 0);
}

}  // namespace
}  // namespace saedict::testing
