// HttpGet: a minimal HTTP/1.0 GET to 127.0.0.1:port, for tests of the
// servers saedictd runs besides gRPC (the metrics port). Loopback only.
// Thread safety: pure function (one socket per call).
#ifndef SAEDICT_TESTS_TEST_UTIL_LOOPBACK_HTTP_H_
#define SAEDICT_TESTS_TEST_UTIL_LOOPBACK_HTTP_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace saedict::testing {

struct HttpResponse {
  int status = 0;       // 200, 404, ...
  std::string headers;  // the raw header block
  std::string body;
};

// UNAVAILABLE when nothing listens or the answer is not HTTP.
absl::StatusOr<HttpResponse> HttpGet(int port, const std::string& path,
                                     absl::Duration timeout = absl::Seconds(10));

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_TEST_UTIL_LOOPBACK_HTTP_H_
