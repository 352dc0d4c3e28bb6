// HttpGateway: saedictd's HTTP server (cpp-httplib, Debian's
// libcpp-httplib-dev) on its own port — the JSON API (json_api.h), the
// Neuronpedia-compatible read API (neuronpedia_api.h), the embedded
// dashboard (dashboard_assets.h) and a health endpoint:
//   GET  /                      the dashboard (index.html; every file of dashboard/ by path)
//   GET  /v1                    the methods: name, shape, role
//   POST /v1/{Method}           JSON (or NDJSON) request -> JSON (or NDJSON) answer;
//                               server streams go out live (live_stream.h), ending
//                               with {"error":{"code","message"}} if they fail midway
//   GET  /v1/{Method}?f=v&...   read-role unary methods, fields as query parameters
//   GET  /api/feature/{modelId}/{layer}/{index}, POST /api/explanation/search,
//   POST /api/search-all        Neuronpedia-compatible
//   GET  /healthz               {"status":"SERVING"} (503 NOT_SERVING while draining)
//
// Every API request is admitted by the same CallPolicy as gRPC: bearer
// token and role from the one table (service/access_policy.h, the
// Neuronpedia routes take the role of GetFeature / SearchExplanations /
// Encode), the deadline (header X-Saedict-Deadline-Ms, else the server's
// default), the per-client stream cap for streaming methods, and the drain.
// Errors: the gRPC code mapped to an HTTP status (HttpStatusFor) with body
// {"code":"NOT_FOUND","message":"..."}. Bodies over max_body_bytes get 413.
// CORS: an Origin in cors_origins ("*": any) gets Access-Control-Allow-*
// headers, preflights included; other origins get none (same-origin only).
// Compressible answers are gzip- (or brotli-) encoded when the client
// accepts it. TLS (and mutual TLS) with the gRPC port's certificate.
//
// Thread safety: Start/Stop from one thread; requests run on a pool of
// `threads` threads.
#ifndef SAEDICT_GATEWAY_HTTP_GATEWAY_H_
#define SAEDICT_GATEWAY_HTTP_GATEWAY_H_

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/call_policy.h"
#include "server/metrics.h"
#include "service/service_core.h"

namespace saedict::gateway {

struct HttpOptions {
  std::string address = "127.0.0.1";
  int port = 8080;  // 0: a free port (see HttpGateway::port())
  // Origins allowed to call from a browser page of another origin
  // ("https://dash.example.org"); "*" allows any. Empty: none.
  std::vector<std::string> cors_origins;
  int threads = 8;
  int64_t max_body_bytes = 256 << 20;  // request bodies and buffered stream answers
  std::filesystem::path tls_cert_file, tls_key_file, tls_client_ca_file;  // as the gRPC port's
};

// The HTTP status of a gRPC/absl code (400, 401, 403, 404, 409, 429, 499,
// 500, 501, 503, 504).
int HttpStatusFor(absl::StatusCode code);

class HttpGateway {
 public:
  // UNAVAILABLE when the port cannot be bound; INVALID_ARGUMENT for TLS
  // files that do not load. core, policy and metrics must outlive it.
  static absl::StatusOr<std::unique_ptr<HttpGateway>> Start(const HttpOptions& options,
                                                            service::ServiceCore* core,
                                                            server::CallPolicy* policy,
                                                            server::ServerMetrics* metrics);
  ~HttpGateway();

  int port() const { return port_; }
  // Stops listening and waits for requests in progress. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit HttpGateway(std::unique_ptr<Impl> impl, int port);
  std::unique_ptr<Impl> impl_;
  int port_;
};

}  // namespace saedict::gateway

#endif  // SAEDICT_GATEWAY_HTTP_GATEWAY_H_
