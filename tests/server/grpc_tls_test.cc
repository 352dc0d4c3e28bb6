// TLS and mutual TLS on a real SaedictServer, with certificates this test
// makes with the openssl command (a CA, a server certificate for 127.0.0.1,
// a client certificate, and a rogue CA nobody trusts), through the C++
// client library users call. Skips visibly without the openssl command.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "client/saedict_client.h"
#include "server/server.h"
#include "tests/server/grpc_test_util.h"
#include "tests/test_util/test_certificates.h"
#include "tests/test_util/test_env.h"

namespace saedict::testing {
namespace {

using ::testing::HasSubstr;

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class GrpcTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "SKIPPED: no openssl command to make test certificates (apt-get install "
                      "openssl)";
    }
    certs_ = scratch_.path() / "certs";
    std::filesystem::create_directories(certs_);
    ASSERT_TRUE(MakeCertificates(certs_)) << ReadText(certs_ / "openssl.log");
  }

  void StartServer(bool mutual) {
    server::ServerOptions options;
    options.port = 0;
    options.data_dir = scratch_.path() / (mutual ? "data-mtls" : "data-tls");
    options.dictionary_root = scratch_.path();
    options.tls_cert_file = certs_ / "server.pem";
    options.tls_key_file = certs_ / "server.key";
    if (mutual) options.tls_client_ca_file = certs_ / "ca.pem";
    absl::StatusOr<std::unique_ptr<server::SaedictServer>> server =
        server::SaedictServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  // ListDictionaries through the client library with these TLS settings.
  absl::Status List(bool tls, const std::string& ca, const std::string& client = "") {
    client::ClientOptions options;
    options.timeout = absl::Seconds(10);
    options.tls.enabled = tls;
    if (!ca.empty()) options.tls.root_certs_pem = ReadText(certs_ / (ca + ".pem"));
    if (!client.empty()) {
      options.tls.cert_chain_pem = ReadText(certs_ / (client + ".pem"));
      options.tls.private_key_pem = ReadText(certs_ / (client + ".key"));
    }
    absl::StatusOr<std::unique_ptr<client::Client>> c =
        client::Client::Connect(absl::StrCat("127.0.0.1:", server_->port()), options);
    if (!c.ok()) return c.status();
    return (*c)->ListDictionaries({}).status();
  }

  ScratchDir scratch_;
  std::filesystem::path certs_;
  std::unique_ptr<server::SaedictServer> server_;
};

TEST_F(GrpcTlsTest, TlsServerAnswersTlsClientsThatTrustItsCa) {
  StartServer(/*mutual=*/false);
  EXPECT_TRUE(List(true, "ca").ok()) << List(true, "ca");
  EXPECT_TRUE(List(true, "ca", "client").ok()) << "a client certificate nobody asked for is fine";
  EXPECT_EQ(List(false, "").code(), absl::StatusCode::kUnavailable) << "plaintext client";
  EXPECT_EQ(List(true, "rogue").code(), absl::StatusCode::kUnavailable)
      << "a client that does not trust the server's CA";
}

TEST_F(GrpcTlsTest, MutualTlsNeedsAClientCertificateFromTheClientCa) {
  StartServer(/*mutual=*/true);
  EXPECT_TRUE(List(true, "ca", "client").ok()) << List(true, "ca", "client");
  EXPECT_EQ(List(true, "ca").code(), absl::StatusCode::kUnavailable) << "no client certificate";
  EXPECT_EQ(List(true, "ca", "rogue_client").code(), absl::StatusCode::kUnavailable)
      << "a client certificate from an untrusted CA";
  EXPECT_EQ(List(false, "").code(), absl::StatusCode::kUnavailable);
}

TEST(ClientTlsOptionsTest, CertificateWithoutKeyIsRejected) {
  client::ClientOptions options;
  options.tls.enabled = true;
  options.tls.cert_chain_pem = "-----BEGIN CERTIFICATE-----";
  absl::Status s = client::Client::Connect("127.0.0.1:1", options).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("go together"));
}

}  // namespace
}  // namespace saedict::testing
