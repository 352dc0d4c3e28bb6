// GrpcServerTest: a real SaedictServer on 127.0.0.1:0 (data_dir and
// dictionary_root in a ScratchDir), a real channel and a v1::Saedict::Stub,
// plus helpers to write small SAEs with the formats fixtures and to build and
// read wire tensors. Shared by tests/server/grpc_*_test.cc and
// tests/integration. Thread safety: the stub may be used from many threads;
// the fixture's own methods are for the test thread.
#ifndef SAEDICT_TESTS_SERVER_GRPC_TEST_FIXTURE_H_
#define SAEDICT_TESTS_SERVER_GRPC_TEST_FIXTURE_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/dictionary.h"
#include "engine/encoder.h"
#include "engine/sparse_codes.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "saedict/v1/saedict.grpc.pb.h"
#include "server/server.h"
#include "tests/server/grpc_test_util.h"
#include "tests/test_util/test_env.h"

namespace saedict::testing {

// A dictionary written to disk by the fixtures, the way LoadDictionary must see it.
struct WrittenSae {
  std::string path;  // relative to the dictionary root
  v1::SourceFormat format = v1::SOURCE_FORMAT_AUTO;
  engine::Dictionary dictionary;  // RandomDictionary as written
};

class GrpcServerTest : public ::testing::Test {
 public:
  // Shape of the SAEs WriteSae writes.
  static constexpr int64_t kDIn = 16;
  static constexpr int64_t kDSae = 64;
  static constexpr int32_t kK = 4;

 protected:
  GrpcServerTest();
  ~GrpcServerTest() override;
  void SetUp() override;
  void TearDown() override;

  // Override to change the options before the first start.
  virtual void Customize(server::ServerOptions* /*options*/) {}

  void StartServer();    // ASSERTs; sets server_, channel_ and stub_
  void StopServer();     // destroys the server (stub_ reset)
  void RestartServer();  // StopServer + StartServer on the same data_dir

  // A fresh context with a 60 s deadline (one per call).
  static std::unique_ptr<grpc::ClientContext> Ctx();

  // Writes RandomDictionary(arch, kDIn, kDSae, kK, seed) under the root at
  // `rel` in `format` (SAELENS folder, SPARSIFY folder, GEMMA_SCOPE .npz).
  WrittenSae WriteSae(const std::string& rel, engine::Architecture arch,
                      v1::SourceFormat format = v1::SOURCE_FORMAT_SAELENS, uint64_t seed = 1);

  // An Encoder over what formats::LoadDictionary reads at root/rel: the
  // reference the server's results are compared with.
  std::shared_ptr<const engine::Encoder> ReferenceEncoder(const std::string& rel);

  grpc::Status Load(const std::string& id, const std::string& path,
                    v1::DictionaryInfo* info = nullptr, bool replace = false,
                    v1::SourceFormat format = v1::SOURCE_FORMAT_AUTO);
  grpc::Status Encode(const v1::EncodeRequest& request, v1::EncodeResponse* response);
  // Encode of F32 rows [n, d] with `options`.
  grpc::Status EncodeRows(const std::string& id, const std::vector<float>& x, int64_t n, int64_t d,
                          v1::EncodeResponse* response, const v1::EncodeOptions& options = {});
  std::vector<std::string> ListIds();

  ScratchDir scratch_;
  std::filesystem::path root_;      // --dictionary_root
  std::filesystem::path data_dir_;  // --data_dir
  server::ServerOptions options_;
  std::unique_ptr<server::SaedictServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Saedict::Stub> stub_;
};

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_SERVER_GRPC_TEST_FIXTURE_H_
