// WorkerPool: saedictd's pool of saedict-worker processes (--workers), the
// EncodeBatcher's BatchRunner (engine/batch_runner.h). Each batch goes to
// the healthy, non-draining worker with the fewest rows queued (its last
// Health report plus what this pool has in flight there). The worker gets
// the dictionary's weights by content hash first when it lacks them (the
// canonical file, cached under cache_dir), so it never serves stale ones. A
// batch that fails on a worker (it died, is draining, timed out, lost the
// weights) is retried on the next worker, and with none left encoded by the
// front server's own CPU engine: every batch is answered exactly once, and
// the answer is what Encoder::Encode gives here (F32 is batch-invariant and
// CPU workers run the same engine; a CUDA worker's codes match it within
// engine/cuda/cuda_encoder.h's tolerances instead).
//
// Each address is a gRPC target; one whose name resolves to several
// addresses (a Kubernetes headless Service of scaled workers) is balanced
// round-robin per batch, so it counts as one worker here.
//
// A health thread asks every worker for Health each health_interval; a
// worker that does not answer, or says it is draining, gets no batches until
// it answers healthy again.
//
// Thread safety: Run() from any number of threads; Workers() any time.
#ifndef SAEDICT_SERVER_WORKER_POOL_H_
#define SAEDICT_SERVER_WORKER_POOL_H_

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "engine/batch_runner.h"
#include "server/tls_credentials.h"

namespace saedict::server {

struct WorkerPoolOptions {
  std::vector<std::string> addresses;  // host:port of each saedict-worker
  std::filesystem::path cache_dir;     // canonical weights files sent to workers
  absl::Duration health_interval = absl::Seconds(1);
  absl::Duration batch_timeout = absl::Seconds(120);  // one EncodeBatch call
  int64_t max_message_bytes = 256 << 20;
  TlsFiles tls;  // none: plaintext; ca: TLS; ca + cert + key: mutual TLS
};

// What the pool knows of one worker (metrics, tests).
struct WorkerStatus {
  std::string address;
  bool healthy = false;   // answered its last Health
  bool draining = false;  // said so in it
  std::string backend, device;
  int64_t queue_depth = 0;  // rows, from its last Health
  int64_t in_flight = 0;    // rows this pool is waiting for there now
  int64_t batches_ok = 0, batches_failed = 0;
};

class WorkerPool final : public engine::BatchRunner {
 public:
  // INVALID_ARGUMENT for an empty list, an address that is not host:port,
  // or TLS files that do not load.
  static absl::StatusOr<std::unique_ptr<WorkerPool>> Create(const WorkerPoolOptions& options);
  ~WorkerPool() override;

  absl::StatusOr<engine::EncodeResult> Run(const engine::Encoder& encoder,
                                           absl::Span<const float> x, int64_t n,
                                           const engine::EncodeOptions& options) override;

  std::vector<WorkerStatus> Workers() const;
  int64_t fallback_batches() const { return fallback_batches_.load(); }
  // Runs one round of health checks now (tests; the thread does it on its own).
  void CheckHealthNow();

  struct Worker;

 private:
  WorkerPool(const WorkerPoolOptions& options,
             std::shared_ptr<grpc::ChannelCredentials> credentials);
  Worker* Pick(const std::vector<Worker*>& tried);
  absl::StatusOr<engine::EncodeResult> RunOn(Worker& worker, const engine::Encoder& encoder,
                                             absl::Span<const float> x, int64_t n,
                                             const engine::EncodeOptions& options);
  absl::Status SendWeights(Worker& worker, const engine::Encoder& encoder);
  absl::StatusOr<std::filesystem::path> CanonicalFile(const engine::Encoder& encoder);

  const WorkerPoolOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<int64_t> fallback_batches_{0};
  absl::Mutex files_mu_;  // writing canonical files
  absl::Notification stop_;
  std::thread health_thread_;
};

}  // namespace saedict::server

#endif  // SAEDICT_SERVER_WORKER_POOL_H_
