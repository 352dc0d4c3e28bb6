#include "worker/worker_service.h"

#include <unistd.h>

#include <fstream>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "formats/dictionary_loader.h"
#include "server/grpc_status.h"
#include "service/proto_convert.h"
#include "wire/wire_codec.h"

namespace saedict::worker {
namespace {

namespace fs = std::filesystem;

grpc::Status Refuse(const absl::Status& s) { return server::ToGrpcStatus(s); }

grpc::Status Draining() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "this worker is draining (shutting down); send the batch elsewhere");
}

std::string CpuName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "CPU";
}

// Counts one call in flight for its whole scope.
class CallCounter {
 public:
  explicit CallCounter(std::atomic<int64_t>* count) : count_(count) { count_->fetch_add(1); }
  ~CallCounter() { count_->fetch_sub(1); }
  CallCounter(const CallCounter&) = delete;
  CallCounter& operator=(const CallCounter&) = delete;

 private:
  std::atomic<int64_t>* count_;
};

}  // namespace

WorkerService::WorkerService(WorkerOptions options) : options_(std::move(options)) {
  absl::MutexLock lock(&mu_);
  last_health_ = absl::Now();
}

absl::StatusOr<Backend> ParseBackend(const std::string& name) {
  if (name == "cpu") return Backend::kCpu;
  if (name == "cuda" || name == "auto") {
    if (engine::cuda::DeviceCount() > 0) return Backend::kCuda;
    if (name == "auto") return Backend::kCpu;
    return absl::FailedPreconditionError(absl::StrCat(
        "--backend=cuda: ",
        engine::cuda::BuiltWithCuda()
            ? "no usable CUDA device here (driver missing, or CUDA_VISIBLE_DEVICES hides them)"
            : "this build has no CUDA backend (configure found no CUDA toolkit)"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--backend: '", name, "' is not one of cpu, cuda, auto"));
}

const char* BackendName(Backend backend) { return backend == Backend::kCuda ? "cuda" : "cpu"; }

std::string DescribeGpu(const engine::cuda::DeviceInfo& gpu) {
  return absl::StrCat(gpu.name, " (cuda:", gpu.ordinal, ", sm_", gpu.cc_major, gpu.cc_minor, ", ",
                      gpu.multiprocessors, " SMs)");
}

WorkerService::Loaded WorkerService::Find(const std::string& sha256) const {
  absl::MutexLock lock(&mu_);
  auto it = encoders_.find(sha256);
  return it == encoders_.end() ? Loaded{} : it->second;
}

grpc::Status WorkerService::LoadWeights(grpc::ServerContext* context,
                                        grpc::ServerReader<v1::LoadWeightsRequest>* reader,
                                        v1::LoadWeightsResponse* response) {
  const CallCounter counted(&calls_in_flight_);
  if (draining_.load()) return Draining();
  v1::LoadWeightsRequest chunk;
  if (!reader->Read(&chunk)) {
    return Refuse(absl::InvalidArgumentError("LoadWeights: empty stream"));
  }
  const std::string sha = chunk.weights_sha256();
  if (sha.size() != 64) {
    return Refuse(absl::InvalidArgumentError(
        absl::StrCat("weights_sha256: '", sha, "' is not 64 hex digits")));
  }
  const int64_t total = chunk.total_bytes();
  if (const Loaded held = Find(sha); held.cpu != nullptr) {
    while (reader->Read(&chunk)) {  // already held: drain the stream
    }
    response->set_weights_sha256(sha);
    response->set_weight_bytes(held.cpu->dictionary().WeightBytes());
    return grpc::Status::OK;
  }
  std::error_code ec;
  fs::create_directories(options_.cache_dir, ec);
  const fs::path file =
      options_.cache_dir / absl::StrCat(sha, ".", getpid(), ".",
                                        std::hash<std::thread::id>()(std::this_thread::get_id()),
                                        ".safetensors");
  int64_t received = 0;
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    if (!out) {
      return Refuse(
          absl::UnavailableError(absl::StrCat("cannot write ", file.string(), " (--cache_dir)")));
    }
    do {
      if (chunk.weights_sha256() != sha) {
        out.close();
        fs::remove(file, ec);
        return Refuse(absl::InvalidArgumentError("weights_sha256 changed within the stream"));
      }
      out.write(chunk.chunk().data(), static_cast<std::streamsize>(chunk.chunk().size()));
      received += static_cast<int64_t>(chunk.chunk().size());
    } while (!context->IsCancelled() && reader->Read(&chunk));
  }
  auto remove = [&] { fs::remove(file, ec); };
  if (received != total) {
    remove();
    return Refuse(absl::InvalidArgumentError(
        absl::StrCat("LoadWeights: received ", received, " bytes of ", total)));
  }
  absl::StatusOr<engine::Dictionary> dict = formats::ReadCanonical(file);
  remove();
  if (!dict.ok()) return Refuse(dict.status());
  engine::EncoderOptions encoder_options;
  encoder_options.fast_exact = options_.fast_exact;
  absl::StatusOr<std::unique_ptr<engine::Encoder>> encoder = engine::Encoder::Create(
      std::make_shared<const engine::Dictionary>(*std::move(dict)), encoder_options);
  if (!encoder.ok()) return Refuse(encoder.status());
  if ((*encoder)->content_sha256() != sha) {
    return Refuse(absl::InvalidArgumentError(absl::StrCat("LoadWeights: the weights hash to ",
                                                          (*encoder)->content_sha256(),
                                                          ", not to weights_sha256 ", sha)));
  }
  Loaded loaded;
  loaded.cpu = std::shared_ptr<const engine::Encoder>(std::move(*encoder));
  if (options_.backend == Backend::kCuda) {
    absl::StatusOr<std::unique_ptr<engine::cuda::CudaEncoder>> on_device =
        engine::cuda::CudaEncoder::Create(loaded.cpu, options_.cuda);
    // Out of device memory or a device fault: the pool sends the batch
    // elsewhere (UNAVAILABLE) rather than failing the caller.
    if (!on_device.ok()) {
      return Refuse(absl::UnavailableError(
          absl::StrCat("LoadWeights on the GPU: ", on_device.status().ToString())));
    }
    loaded.cuda = std::shared_ptr<const engine::cuda::CudaEncoder>(std::move(*on_device));
  }
  response->set_weights_sha256(sha);
  response->set_weight_bytes(loaded.cpu->dictionary().WeightBytes());
  absl::MutexLock lock(&mu_);
  encoders_[sha] = std::move(loaded);
  return grpc::Status::OK;
}

grpc::Status WorkerService::Unload(grpc::ServerContext*, const v1::UnloadRequest* request,
                                   v1::UnloadResponse*) {
  absl::MutexLock lock(&mu_);
  encoders_.erase(request->weights_sha256());
  return grpc::Status::OK;
}

grpc::Status WorkerService::EncodeBatch(grpc::ServerContext*, const v1::EncodeBatchRequest* request,
                                        v1::EncodeBatchResponse* response) {
  const CallCounter counted(&calls_in_flight_);
  if (draining_.load()) return Draining();
  const Loaded loaded = Find(request->weights_sha256());
  const std::shared_ptr<const engine::Encoder>& encoder = loaded.cpu;
  if (encoder == nullptr) {
    return Refuse(absl::NotFoundError(
        absl::StrCat("weights ", request->weights_sha256(), " are not loaded on this worker")));
  }
  const int64_t d_in = encoder->dictionary().config.d_in;
  absl::StatusOr<wire::DenseRows> x =
      wire::DecodeMatrix(request->activations(), d_in, "activations");
  if (!x.ok()) return Refuse(x.status());
  absl::StatusOr<engine::ComputeMode> mode =
      service::ToEngine(request->compute_mode(), "compute_mode");
  if (!mode.ok()) return Refuse(mode.status());
  engine::EncodeOptions options;
  options.top_k = request->top_k();
  options.return_reconstruction = request->return_reconstruction();
  options.return_row_error = request->return_row_error();
  options.compute_mode = *mode;
  rows_in_flight_.fetch_add(x->rows);
  if (options_.test_batch_delay > absl::ZeroDuration()) absl::SleepFor(options_.test_batch_delay);
  const absl::Time start = absl::Now();
  absl::StatusOr<engine::EncodeResult> result =
      loaded.cuda != nullptr ? loaded.cuda->Encode(x->values, x->rows, options)
                             : encoder->Encode(x->values, x->rows, options);
  busy_nanos_.fetch_add(absl::ToInt64Nanoseconds(absl::Now() - start));
  rows_in_flight_.fetch_sub(x->rows);
  if (!result.ok() && loaded.cuda != nullptr && absl::IsInternal(result.status())) {
    // A CUDA / cuBLAS failure (a device fault is sticky): UNAVAILABLE, so
    // the pool retries the batch elsewhere and stops sending here until a
    // health check passes.
    return Refuse(absl::UnavailableError(absl::StrCat("GPU encode failed on this worker: ",
                                                      result.status().ToString())));
  }
  if (!result.ok()) return Refuse(result.status());
  *response->mutable_codes() = wire::EncodeCodes(result->codes);
  if (options.return_reconstruction) {
    *response->mutable_reconstruction() =
        wire::EncodeTensor(result->reconstruction,
                           {x->rows, encoder->dictionary().config.decoder_dim()});
  }
  for (float e : result->row_squared_error) response->add_row_squared_error(e);
  response->set_compute_mode(service::ToProto(result->compute_mode));
  return grpc::Status::OK;
}

grpc::Status WorkerService::Health(grpc::ServerContext*, const v1::HealthRequest*,
                                   v1::HealthResponse* response) {
  response->set_backend(BackendName(options_.backend));
  if (options_.backend == Backend::kCuda) {
    absl::StatusOr<engine::cuda::DeviceInfo> gpu =
        engine::cuda::GetDeviceInfo(options_.cuda.device);
    if (!gpu.ok()) return Refuse(absl::UnavailableError(gpu.status().ToString()));
    response->set_device(DescribeGpu(*gpu));
    response->set_device_memory_bytes(gpu->total_bytes);
  } else {
    response->set_device(
        absl::StrCat(CpuName(), " (", std::thread::hardware_concurrency(), " threads)"));
    const int64_t pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    response->set_device_memory_bytes(pages > 0 && page > 0 ? pages * page : 0);
  }
  response->set_queue_depth(rows_in_flight_.load());
  response->set_draining(draining_.load());
  absl::MutexLock lock(&mu_);
  int64_t weights = 0;
  for (const auto& [sha, loaded] : encoders_) {
    response->add_loaded_weights(sha);
    weights += loaded.cuda != nullptr ? loaded.cuda->device_bytes()
                                      : loaded.cpu->dictionary().WeightBytes();
  }
  response->set_device_memory_used_bytes(weights);
  const absl::Time now = absl::Now();
  const int64_t busy = busy_nanos_.load();
  const double elapsed = absl::ToDoubleNanoseconds(now - last_health_);
  response->set_utilization(
      elapsed > 0 ? std::min(1.0, static_cast<double>(busy - busy_at_last_health_) / elapsed) : 0);
  last_health_ = now;
  busy_at_last_health_ = busy;
  return grpc::Status::OK;
}

}  // namespace saedict::worker
