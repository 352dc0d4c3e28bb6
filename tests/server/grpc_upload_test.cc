// UploadDictionary over a real server: each of the three formats uploaded
// from a folder outside --dictionary_root (and encoded equal to a local
// encoder over the same files), through the C++ client's UploadStream, then
// every way an upload can go wrong — checksum mismatch, a stream cut off
// halfway, chunks out of order, too many bytes, bad names, the size limit,
// files that do not load — each answered with its error and leaving nothing
// behind in <data_dir>/uploads or in the dictionary list. An upload survives
// a restart; leftovers of a crash are cleared at start-up.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "client/saedict_client.h"
#include "client/upload_files.h"
#include "formats/dictionary_loader.h"
#include "tests/server/grpc_test_fixture.h"
#include "util/sha256.h"

namespace saedict::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class GrpcUploadTest : public GrpcServerTest {
 protected:
  void Customize(server::ServerOptions* options) override { options->max_upload_bytes = 64 << 20; }

  // Writes a SAE with the fixtures and moves it out of the dictionary root.
  fs::path WriteOutside(const std::string& name, v1::SourceFormat format,
                        engine::Architecture arch = engine::Architecture::kTopK) {
    WrittenSae sae = WriteSae(name, arch, format, /*seed=*/11);
    const fs::path outside = scratch_.path() / "elsewhere" / sae.path;
    fs::create_directories(outside.parent_path());
    fs::rename(root_ / sae.path, outside);
    return outside;
  }

  // The header + chunks a well-behaved client sends for `path`.
  std::vector<v1::UploadDictionaryRequest> Messages(const fs::path& path, const std::string& id,
                                                    size_t chunk = 4096) {
    absl::StatusOr<client::UploadPlan> plan = client::PlanUpload(path);
    EXPECT_TRUE(plan.ok()) << plan.status();
    std::vector<v1::UploadDictionaryRequest> out(1);
    out[0].mutable_header()->set_id(id);
    for (size_t i = 0; i < plan->paths.size(); ++i) {
      *out[0].mutable_header()->add_files() = plan->files[i];
      const std::string bytes = ReadAll(plan->paths[i]);
      for (size_t at = 0; at < bytes.size(); at += chunk) {
        v1::UploadDictionaryRequest m;
        m.set_file_index(static_cast<int32_t>(i));
        m.set_offset(static_cast<int64_t>(at));
        m.set_data(bytes.substr(at, chunk));
        out.push_back(std::move(m));
      }
    }
    return out;
  }

  grpc::Status Send(const std::vector<v1::UploadDictionaryRequest>& messages,
                    v1::UploadDictionaryResponse* response = nullptr) {
    v1::UploadDictionaryResponse ignored;
    auto ctx = Ctx();
    auto writer = stub_->UploadDictionary(ctx.get(), response ? response : &ignored);
    for (const auto& m : messages) {
      if (!writer->Write(m)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  // Nothing of any upload is left on the server (waits for a handler that
  // is still cleaning up after a cancelled stream).
  void ExpectNothingLeft() {
    const fs::path uploads = data_dir_ / "uploads";
    for (int i = 0; i < 100; ++i) {
      std::error_code ec;
      if (!fs::exists(uploads, ec) || fs::is_empty(uploads, ec)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::error_code ec;
    EXPECT_TRUE(!fs::exists(uploads, ec) || fs::is_empty(uploads, ec))
        << "left in " << uploads << ": " << fs::directory_iterator(uploads)->path();
  }

  // Encode of fixed rows through the server equals a local encoder on `path`.
  void ExpectServesLike(const std::string& id, const fs::path& path) {
    absl::StatusOr<formats::LoadedDictionary> local = formats::LoadDictionary(path);
    ASSERT_TRUE(local.ok()) << local.status();
    auto encoder = engine::Encoder::Create(
        std::make_shared<const engine::Dictionary>(std::move(local->dictionary)));
    ASSERT_TRUE(encoder.ok());
    std::vector<float> x(3 * kDIn);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
    v1::EncodeResponse resp;
    ASSERT_THAT(EncodeRows(id, x, 3, kDIn, &resp), GrpcOk());
    engine::EncodeOptions options;
    options.compute_mode = engine::ComputeMode::kF32;
    absl::StatusOr<engine::EncodeResult> want = (*encoder)->Encode(x, 3, options);
    ASSERT_TRUE(want.ok());
    ExpectSameCodes(CodesOf(resp.codes()), want->codes, 1e-5f, id);
  }
};

TEST_F(GrpcUploadTest, EachFormatFromOutsideTheRootServesItsWeights) {
  const std::vector<std::tuple<std::string, std::string, v1::SourceFormat>> cases = {
      {"saelens", "saelens", v1::SOURCE_FORMAT_SAELENS},
      {"sparsify", "sparsify", v1::SOURCE_FORMAT_SPARSIFY},
      {"gemma", "gemma/params.npz", v1::SOURCE_FORMAT_GEMMA_SCOPE},
      {"gemma-renamed", "layer_12_width_16k.npz", v1::SOURCE_FORMAT_GEMMA_SCOPE}};
  for (const auto& [name, rel, format] : cases) {
    const fs::path path = WriteOutside(rel, format,
                                       format == v1::SOURCE_FORMAT_GEMMA_SCOPE
                                           ? engine::Architecture::kJumpReLU
                                           : engine::Architecture::kTopK);
    v1::UploadDictionaryResponse resp;
    ASSERT_THAT(Send(Messages(path, name), &resp), GrpcOk()) << name;
    EXPECT_EQ(resp.dictionary().id(), name);
    EXPECT_EQ(resp.dictionary().source_format(), format) << name;
    EXPECT_THAT(resp.dictionary().source_path(), HasSubstr("upload:"));
    ExpectServesLike(name, path);
  }
  ExpectNothingLeft();
  // The uploads are served after a restart (from the canonical copies).
  RestartServer();
  ExpectServesLike("gemma", scratch_.path() / "elsewhere" / "gemma" / "params.npz");
  // Replace needs replace = true, like LoadDictionary.
  const fs::path again = scratch_.path() / "elsewhere" / "saelens";
  EXPECT_THAT(Send(Messages(again, "saelens")),
              GrpcStatusIs(grpc::StatusCode::ALREADY_EXISTS, HasSubstr("saelens")));
  auto replace = Messages(again, "saelens");
  replace[0].mutable_header()->set_replace(true);
  EXPECT_THAT(Send(replace), GrpcOk());
  ExpectNothingLeft();
}

TEST_F(GrpcUploadTest, TheCppClientUploadsAFolderWithProgress) {
  const fs::path path = WriteOutside("cpp", v1::SOURCE_FORMAT_SAELENS);
  auto client = client::Client::FromChannel(channel_);
  absl::StatusOr<client::UploadPlan> plan = client::PlanUpload(path);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->files.size(), 2u);  // cfg.json, sae_weights.safetensors
  v1::UploadDictionaryRequest::Header header;
  header.set_id("cpp");
  uint64_t last = 0;
  absl::StatusOr<v1::UploadDictionaryResponse> resp = client->UploadDictionary(
      client::UploadStream(*plan, header, [&](uint64_t sent) { last = sent; }));
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(last, plan->total_bytes);
  EXPECT_EQ(resp->bytes_received(), static_cast<int64_t>(plan->total_bytes));
  ExpectServesLike("cpp", path);
  EXPECT_EQ(client::PlanUpload(scratch_.path() / "nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(GrpcUploadTest, ADamagedOrCutOffUploadLeavesNothing) {
  const fs::path path = WriteOutside("sae", v1::SOURCE_FORMAT_SAELENS);
  // One flipped byte: the checksum catches it.
  auto damaged = Messages(path, "sae");
  std::string& data = *damaged.back().mutable_data();
  data[data.size() / 2] ^= 0x40;
  EXPECT_THAT(Send(damaged), GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                                          HasSubstr("SHA-256")));
  ExpectNothingLeft();
  // The stream ends halfway (the client stops sending): incomplete file.
  auto half = Messages(path, "sae");
  half.resize(half.size() / 2);
  EXPECT_THAT(Send(half), GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("received")));
  ExpectNothingLeft();
  // The client cancels halfway.
  {
    auto all = Messages(path, "sae");
    v1::UploadDictionaryResponse resp;
    auto ctx = Ctx();
    auto writer = stub_->UploadDictionary(ctx.get(), &resp);
    for (size_t i = 0; i < all.size() / 2; ++i) ASSERT_TRUE(writer->Write(all[i]));
    ctx->TryCancel();
    EXPECT_THAT(writer->Finish(), GrpcStatusIs(grpc::StatusCode::CANCELLED, ::testing::_));
  }
  ExpectNothingLeft();
  EXPECT_TRUE(ListIds().empty());
}

TEST_F(GrpcUploadTest, BadStreamsAreRejectedWithTheFieldAndValue) {
  const fs::path path = WriteOutside("sae", v1::SOURCE_FORMAT_SAELENS);
  const auto good = Messages(path, "sae");
  auto expect = [&](std::vector<v1::UploadDictionaryRequest> m, grpc::StatusCode code,
                    const std::string& text) {
    EXPECT_THAT(Send(m), GrpcStatusIs(code, HasSubstr(text)));
    ExpectNothingLeft();
  };
  expect({good.begin() + 1, good.end()}, grpc::StatusCode::INVALID_ARGUMENT, "header: missing");
  auto twice = good;
  twice.insert(twice.begin() + 1, good[0]);
  expect(twice, grpc::StatusCode::INVALID_ARGUMENT, "header: sent again");
  auto bad_name = good;
  bad_name[0].mutable_header()->mutable_files(0)->set_name("../cfg.json");
  expect(bad_name, grpc::StatusCode::INVALID_ARGUMENT, "header.files[0].name: '../cfg.json'");
  auto dup = good;
  *dup[0].mutable_header()->add_files() = good[0].header().files(0);
  expect(dup, grpc::StatusCode::INVALID_ARGUMENT, "listed twice");
  auto bad_sha = good;
  bad_sha[0].mutable_header()->mutable_files(1)->set_sha256("abc");
  expect(bad_sha, grpc::StatusCode::INVALID_ARGUMENT, "header.files[1].sha256: 'abc'");
  auto bad_id = good;
  bad_id[0].mutable_header()->set_id("no/slash");
  expect(bad_id, grpc::StatusCode::INVALID_ARGUMENT, "header.id");
  auto no_files = good;
  no_files.resize(1);
  no_files[0].mutable_header()->clear_files();
  expect(no_files, grpc::StatusCode::INVALID_ARGUMENT, "header.files: empty");
  auto offset = good;
  offset[2].set_offset(offset[2].offset() + 1);
  expect(offset, grpc::StatusCode::INVALID_ARGUMENT, "offset");
  auto index = good;
  index[1].set_file_index(7);
  expect(index, grpc::StatusCode::INVALID_ARGUMENT, "file_index: 7");
  auto backwards = good;
  backwards.push_back(good[1]);  // a chunk of file 0 after file 1
  expect(backwards, grpc::StatusCode::INVALID_ARGUMENT, "header order");
  auto too_many = good;
  too_many.back().mutable_data()->append("xx");
  expect(too_many, grpc::StatusCode::INVALID_ARGUMENT, "more bytes than");
  auto too_big = good;
  too_big[0].mutable_header()->mutable_files(0)->set_size(65ll << 20);
  expect(too_big, grpc::StatusCode::RESOURCE_EXHAUSTED, "--max_upload_mb");
  EXPECT_TRUE(ListIds().empty());
}

TEST_F(GrpcUploadTest, FilesThatDoNotLoadAreRejectedLikeLoadDictionary) {
  const fs::path dir = scratch_.path() / "junk";
  fs::create_directories(dir);
  std::ofstream(dir / "cfg.json") << "{\"d_in\": 4}";
  std::ofstream(dir / "sae_weights.safetensors") << "not a safetensors file";
  EXPECT_THAT(Send(Messages(dir, "junk")),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, ::testing::_));
  ExpectNothingLeft();
  EXPECT_TRUE(ListIds().empty());
}

TEST_F(GrpcUploadTest, LeftoversOfACrashAreClearedAtStart) {
  StopServer();
  fs::create_directories(data_dir_ / "uploads" / ".partial-0123456789abcdef");
  std::ofstream(data_dir_ / "uploads" / ".partial-0123456789abcdef" / "cfg.json") << "{}";
  StartServer();
  ExpectNothingLeft();
}

}  // namespace
}  // namespace saedict::testing
