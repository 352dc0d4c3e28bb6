#include "tests/server/grpc_test_fixture.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "formats/dictionary_loader.h"
#include "tests/formats/sae_fixtures.h"

namespace saedict::testing {

GrpcServerTest::GrpcServerTest() {
  root_ = scratch_.path() / "root";
  data_dir_ = scratch_.path() / "data";
  std::filesystem::create_directories(root_);
  options_.listen_address = "127.0.0.1";
  options_.port = 0;
  options_.data_dir = data_dir_;
  options_.dictionary_root = root_;
  options_.demo = false;
}

GrpcServerTest::~GrpcServerTest() = default;

void GrpcServerTest::SetUp() {
  Customize(&options_);
  StartServer();
}

void GrpcServerTest::TearDown() { StopServer(); }

void GrpcServerTest::StartServer() {
  absl::StatusOr<std::unique_ptr<server::SaedictServer>> server =
      server::SaedictServer::Start(options_);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  ASSERT_GT(server_->port(), 0);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  channel_ = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                       grpc::InsecureChannelCredentials(), args);
  ASSERT_TRUE(
      channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30)));
  stub_ = v1::Saedict::NewStub(channel_);
}

void GrpcServerTest::StopServer() {
  stub_.reset();
  channel_.reset();
  server_.reset();
}

void GrpcServerTest::RestartServer() {
  StopServer();
  StartServer();
}

std::unique_ptr<grpc::ClientContext> GrpcServerTest::Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return ctx;
}

WrittenSae GrpcServerTest::WriteSae(const std::string& rel, engine::Architecture arch,
                                    v1::SourceFormat format, uint64_t seed) {
  WrittenSae out;
  out.path = rel;
  out.format = format;
  out.dictionary = RandomDictionary(arch, kDIn, kDSae, kK, seed);
  absl::Status s;
  switch (format) {
    case v1::SOURCE_FORMAT_SPARSIFY:
      s = WriteSparsifyFolder(root_ / rel, out.dictionary);
      break;
    case v1::SOURCE_FORMAT_GEMMA_SCOPE:
      std::filesystem::create_directories((root_ / rel).parent_path());
      s = WriteGemmaScopeNpz(root_ / rel, out.dictionary);
      break;
    default:
      s = WriteSaeLensFolder(root_ / rel, out.dictionary);
      break;
  }
  EXPECT_TRUE(s.ok()) << "writing " << rel << ": " << s;
  return out;
}

std::shared_ptr<const engine::Encoder> GrpcServerTest::ReferenceEncoder(const std::string& rel) {
  absl::StatusOr<formats::LoadedDictionary> loaded = formats::LoadDictionary(root_ / rel);
  if (!loaded.ok()) {
    ADD_FAILURE() << "reference load of " << rel << ": " << loaded.status();
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<engine::Encoder>> encoder = engine::Encoder::Create(
      std::make_shared<const engine::Dictionary>(std::move(loaded->dictionary)));
  if (!encoder.ok()) {
    ADD_FAILURE() << "reference encoder for " << rel << ": " << encoder.status();
    return nullptr;
  }
  return std::shared_ptr<const engine::Encoder>(*std::move(encoder));
}

grpc::Status GrpcServerTest::Load(const std::string& id, const std::string& path,
                                  v1::DictionaryInfo* info, bool replace, v1::SourceFormat format) {
  v1::LoadDictionaryRequest request;
  request.set_id(id);
  request.set_path(path);
  request.set_replace(replace);
  request.set_format(format);
  v1::LoadDictionaryResponse response;
  grpc::Status s = stub_->LoadDictionary(Ctx().get(), request, &response);
  if (info != nullptr) *info = response.dictionary();
  return s;
}

grpc::Status GrpcServerTest::Encode(const v1::EncodeRequest& request,
                                    v1::EncodeResponse* response) {
  return stub_->Encode(Ctx().get(), request, response);
}

grpc::Status GrpcServerTest::EncodeRows(const std::string& id, const std::vector<float>& x,
                                        int64_t n, int64_t d, v1::EncodeResponse* response,
                                        const v1::EncodeOptions& options) {
  v1::EncodeRequest request;
  request.set_dictionary_id(id);
  *request.mutable_activations() = F32Tensor(x, {n, d});
  *request.mutable_options() = options;
  return Encode(request, response);
}

std::vector<std::string> GrpcServerTest::ListIds() {
  v1::ListDictionariesResponse response;
  grpc::Status s = stub_->ListDictionaries(Ctx().get(), v1::ListDictionariesRequest(), &response);
  EXPECT_TRUE(s.ok()) << s.error_message();
  std::vector<std::string> ids;
  for (const v1::DictionaryInfo& info : response.dictionaries()) ids.push_back(info.id());
  return ids;
}

}  // namespace saedict::testing
