// SaedictServer: one running saedict server — RocksDB store, dictionary
// registry, encode batcher and the gRPC endpoint with the standard health and
// reflection services, and the HTTP gateway. saedictd's main() and the end-to-end tests both build
// it, so tests exercise exactly what users run.
//
// Thread safety: Shutdown() and ReloadAuth() may be called from any thread
// (e.g. a signal watcher) while another thread is in Wait().
#ifndef SAEDICT_SERVER_SERVER_H_
#define SAEDICT_SERVER_SERVER_H_

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/batcher.h"
#include "engine/encoder.h"
#include "server/worker_pool.h"
#include "service/similarity_index.h"

namespace saedict::server {

struct ServerOptions {
  std::string listen_address = "127.0.0.1";
  int port = 50051;  // 0 picks a free port; see SaedictServer::port()
  std::filesystem::path data_dir = "./var";
  std::filesystem::path dictionary_root = ".";
  int64_t max_message_bytes = 256 << 20;
  // Writes that add data are refused (RESOURCE_EXHAUSTED) while data_dir's
  // disk has fewer bytes available (storage/disk_space.h); 0: never.
  uint64_t min_free_disk_bytes = 0;
  engine::BatcherOptions batcher;
  service::SimilarityOptions similarity;  // index_dir defaults to <data_dir>/index
  // Compute mode of requests that name none, for dictionaries loaded without
  // one; unset: the fastest exact mode on this CPU (FAST_EXACT where the
  // screen runs, else F32).
  std::optional<engine::ComputeMode> default_compute_mode;
  // Build the FAST_EXACT screen of each dictionary where the CPU runs one (a
  // bf16 or int16 copy of W_enc, 2 bytes per weight); false saves that
  // memory and serves FAST_EXACT with the F32 path.
  bool fast_exact = true;
  bool demo = false;  // make and load the demo dictionary "demo" when absent
  // With demo: ingest the demo corpus "demo" into it when it holds no documents.
  bool demo_corpus = true;

  // Prometheus /metrics on metrics_address:metrics_port (0: a free port; -1:
  // not served). An empty address: listen_address.
  int metrics_port = -1;
  std::string metrics_address;

  // The HTTP gateway (gateway/http_gateway.h: JSON API, Neuronpedia routes,
  // dashboard) on http_address:http_port (0: a free port; -1: not served).
  // An empty address: listen_address. CORS origins as HttpOptions.
  int http_port = -1;
  std::string http_address;
  std::vector<std::string> http_cors_origins;
  int http_threads = 8;

  // saedict-worker processes (host:port) that run the encode batches
  // (server/worker_pool.h); empty: every batch runs in-process. Failed
  // batches are retried on another worker, then run here.
  std::vector<std::string> workers;
  absl::Duration worker_health_interval = absl::Seconds(1);
  // TLS to the workers: the CA that signed their certificates, and this
  // server's client certificate for workers that require one (mutual TLS).
  std::filesystem::path worker_tls_ca_file, worker_tls_cert_file, worker_tls_key_file;

  // Bearer-token auth (service/access_policy.h): empty: off. A listen
  // address that is not loopback needs it unless `insecure`.
  std::filesystem::path auth_tokens_file;
  bool insecure = false;
  // TLS for gRPC: both or neither of cert and key (PEM files). With a client
  // CA, clients must present a certificate it signed (mutual TLS).
  std::filesystem::path tls_cert_file, tls_key_file, tls_client_ca_file;

  // Limits (0 / InfiniteDuration: none).
  absl::Duration default_deadline = absl::Seconds(60);  // unary calls without one
  absl::Duration default_stream_deadline = absl::InfiniteDuration();
  int max_streams_per_client = 16;
  int64_t max_request_tokens = 1 << 20;
  // All files of one UploadDictionary stream together (--max_upload_mb).
  int64_t max_upload_bytes = 8ll << 30;
};

// Whether `address` is a loopback address (127.0.0.0/8, ::1, localhost).
bool IsLoopbackAddress(const std::string& address);

class SaedictServer {
 public:
  // UNAVAILABLE when the port cannot be bound or the data dir is locked.
  static absl::StatusOr<std::unique_ptr<SaedictServer>> Start(const ServerOptions& options);
  ~SaedictServer();

  int port() const;
  int metrics_port() const;  // 0 when metrics are not served
  int http_port() const;     // 0 when HTTP is not served
  // The worker pool (--workers); null without workers.
  WorkerPool* workers() const;
  // Re-reads the token file (SIGHUP); on error the old tokens stay in force.
  absl::Status ReloadAuth();
  void Wait();
  // Stops accepting calls (health NOT_SERVING, new saedict.v1 calls
  // UNAVAILABLE), lets in-flight calls finish until `grace`, then cancels the
  // rest. Idle client connections do not hold it. Blocks until then.
  void Shutdown(absl::Duration grace = absl::Seconds(5));

 private:
  struct State;
  explicit SaedictServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace saedict::server

#endif  // SAEDICT_SERVER_SERVER_H_
