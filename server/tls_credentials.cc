#include "server/tls_credentials.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace saedict::server {
namespace {

absl::StatusOr<std::string> ReadPem(const std::filesystem::path& path, const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", path.string(), ": cannot read the file"));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", path.string(), ": not a PEM file (no -----BEGIN line)"));
  }
  return text.str();
}

absl::Status CertAndKeyTogether(const TlsFiles& f) {
  if (f.cert.empty() != f.key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--", f.cert_flag, " and --", f.key_flag,
                                                   " go together: give both or neither"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFrom(
    const TlsFiles& files) {
  SAEDICT_RETURN_IF_ERROR(CertAndKeyTogether(files));
  if (files.cert.empty()) {
    if (!files.ca.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--", files.ca_flag, " needs --",
                                                     files.cert_flag, " and --", files.key_flag,
                                                     " (mutual TLS is TLS)"));
    }
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  SAEDICT_ASSIGN_OR_RETURN(pair.cert_chain, ReadPem(files.cert, files.cert_flag));
  SAEDICT_ASSIGN_OR_RETURN(pair.private_key, ReadPem(files.key, files.key_flag));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!files.ca.empty()) {
    SAEDICT_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(files.ca, files.ca_flag));
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFrom(
    const TlsFiles& files) {
  SAEDICT_RETURN_IF_ERROR(CertAndKeyTogether(files));
  if (files.ca.empty() && files.cert.empty()) return grpc::InsecureChannelCredentials();
  if (files.ca.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", files.cert_flag, " needs --", files.ca_flag, " (the CA that signed the server)"));
  }
  grpc::SslCredentialsOptions ssl;
  SAEDICT_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(files.ca, files.ca_flag));
  if (!files.cert.empty()) {
    SAEDICT_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPem(files.cert, files.cert_flag));
    SAEDICT_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPem(files.key, files.key_flag));
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace saedict::server
