// TLS credentials from PEM files, for saedictd's ports and the worker
// protocol (both ends): one place that reads the files and says which flag
// named a bad one.
//
// Thread safety: pure functions.
#ifndef SAEDICT_SERVER_TLS_CREDENTIALS_H_
#define SAEDICT_SERVER_TLS_CREDENTIALS_H_

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace saedict::server {

// The PEM files of one side and the flags that named them (for messages).
struct TlsFiles {
  std::filesystem::path cert, key, ca;
  std::string cert_flag = "tls_cert_file", key_flag = "tls_key_file",
              ca_flag = "tls_client_ca_file";
};

// Server side: plaintext when no file is given; TLS with cert + key; with a
// CA too, clients must present a certificate it signed (mutual TLS).
// INVALID_ARGUMENT naming the flag for a missing/unreadable/non-PEM file or
// a cert without its key (or a CA without a cert).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFrom(
    const TlsFiles& files);

// Client side: plaintext when no file is given; TLS verifying the server
// against the CA; cert + key add a client certificate (mutual TLS).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFrom(
    const TlsFiles& files);

}  // namespace saedict::server

#endif  // SAEDICT_SERVER_TLS_CREDENTIALS_H_
