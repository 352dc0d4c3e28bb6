// Test certificates made with the openssl command: a CA and a "rogue" CA,
// a server certificate for 127.0.0.1/localhost, a client certificate, and a
// client certificate of the rogue CA. Thread safety: test thread only.
#ifndef SAEDICT_TESTS_TEST_UTIL_TEST_CERTIFICATES_H_
#define SAEDICT_TESTS_TEST_UTIL_TEST_CERTIFICATES_H_

#include <filesystem>

namespace saedict::testing {

// Makes dir/{ca,rogue}.{key,pem}, server.{key,pem} and client.{key,pem},
// rogue_client.{key,pem} (log: dir/openssl.log). False when the openssl
// command fails or is missing.
bool MakeCertificates(const std::filesystem::path& dir);

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_TEST_UTIL_TEST_CERTIFICATES_H_
