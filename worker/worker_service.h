// WorkerService: saedict.worker.v1.Worker (proto/saedict/worker/v1/
// worker.proto) over the in-process encode engine — what saedict-worker
// serves. Weights are held by content hash: LoadWeights receives the
// canonical weights file, checks that the weights hash to the hash it was
// sent under, and keeps the encoder; EncodeBatch encodes with exactly those
// weights (NOT_FOUND for a hash it does not hold), so a worker never serves
// stale weights. Backends: the CPU engine, whose results are those of
// Encoder::Encode on the front server (the same engine, batch-invariant),
// or the CUDA engine (engine/cuda/cuda_encoder.h: weights resident on the
// GPU, only the sparse codes copied back), whose codes match the CPU's
// within that header's tolerances, not bit for bit.
//
// Drain: after StartDraining(), Health says draining and EncodeBatch and
// LoadWeights answer UNAVAILABLE, so the pool sends the batch elsewhere;
// batches already running finish (calls_in_flight() falls to 0; a call
// counts from its first instruction, so none slips past the draining check
// uncounted).
//
// Thread safety: every method may be called from any number of threads.
#ifndef SAEDICT_WORKER_WORKER_SERVICE_H_
#define SAEDICT_WORKER_WORKER_SERVICE_H_

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/status/statusor.h"
#include "engine/cuda/cuda_encoder.h"
#include "engine/encoder.h"
#include "saedict/worker/v1/worker.grpc.pb.h"

namespace saedict::worker {

enum class Backend { kCpu, kCuda };

// "cpu", "cuda", or "auto" (cuda when a CUDA device is usable here, else
// cpu). INVALID_ARGUMENT for another name; FAILED_PRECONDITION for "cuda"
// without a usable device (the message says why).
absl::StatusOr<Backend> ParseBackend(const std::string& name);
const char* BackendName(Backend backend);
// "NAME (cuda:N, sm_XY, S SMs)": how Health and the start-up log name a GPU.
std::string DescribeGpu(const engine::cuda::DeviceInfo& gpu);

struct WorkerOptions {
  std::filesystem::path cache_dir = "./var-worker";  // weights files while they load
  bool fast_exact = true;                            // as saedictd's --fast_exact
  // Fault injection for failover tests (--test_batch_delay): each
  // EncodeBatch waits this long, counted as in flight, before it encodes,
  // so a test can kill or drain the worker while a batch is on it.
  absl::Duration test_batch_delay = absl::ZeroDuration();
  Backend backend = Backend::kCpu;
  engine::cuda::CudaEncoderOptions cuda;  // the device and its lanes (kCuda)
};

class WorkerService final : public saedict::worker::v1::Worker::Service {
 public:
  explicit WorkerService(WorkerOptions options);

  grpc::Status LoadWeights(grpc::ServerContext* context,
                           grpc::ServerReader<v1::LoadWeightsRequest>* reader,
                           v1::LoadWeightsResponse* response) override;
  grpc::Status Unload(grpc::ServerContext* context, const v1::UnloadRequest* request,
                      v1::UnloadResponse* response) override;
  grpc::Status EncodeBatch(grpc::ServerContext* context, const v1::EncodeBatchRequest* request,
                           v1::EncodeBatchResponse* response) override;
  grpc::Status Health(grpc::ServerContext* context, const v1::HealthRequest* request,
                      v1::HealthResponse* response) override;

  void StartDraining() { draining_.store(true); }
  int64_t rows_in_flight() const { return rows_in_flight_.load(); }
  int64_t calls_in_flight() const { return calls_in_flight_.load(); }

 private:
  // One dictionary's weights: the CPU encoder (validation, and the encode
  // itself on the CPU backend) and, on the CUDA backend, its device copy.
  struct Loaded {
    std::shared_ptr<const engine::Encoder> cpu;
    std::shared_ptr<const engine::cuda::CudaEncoder> cuda;
  };
  Loaded Find(const std::string& sha256) const;

  const WorkerOptions options_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> rows_in_flight_{0};
  std::atomic<int64_t> calls_in_flight_{0};  // EncodeBatch and LoadWeights calls
  std::atomic<int64_t> busy_nanos_{0};
  mutable absl::Mutex mu_;
  std::map<std::string, Loaded> encoders_ ABSL_GUARDED_BY(mu_);
  absl::Time last_health_ ABSL_GUARDED_BY(mu_);
  int64_t busy_at_last_health_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace saedict::worker

#endif  // SAEDICT_WORKER_WORKER_SERVICE_H_
