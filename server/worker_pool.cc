#include "server/worker_pool.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "formats/dictionary_loader.h"
#include "grpcpp/grpcpp.h"
#include "saedict/worker/v1/worker.grpc.pb.h"
#include "service/proto_convert.h"
#include "util/log.h"
#include "wire/wire_codec.h"

namespace saedict::server {

namespace fs = std::filesystem;
namespace wv1 = saedict::worker::v1;

struct WorkerPool::Worker {
  std::string address;
  std::unique_ptr<wv1::Worker::Stub> stub;
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> batches_ok{0}, batches_failed{0};
  mutable absl::Mutex mu;
  bool healthy ABSL_GUARDED_BY(mu) = false;
  bool draining ABSL_GUARDED_BY(mu) = false;
  int64_t queue_depth ABSL_GUARDED_BY(mu) = 0;
  std::string backend ABSL_GUARDED_BY(mu), device ABSL_GUARDED_BY(mu);
  std::set<std::string> loaded ABSL_GUARDED_BY(mu);  // weights it said it holds
  absl::Mutex load_mu;                               // one LoadWeights at a time per worker
};

namespace {

bool ValidAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  return colon != std::string::npos && colon > 0 &&
         absl::SimpleAtoi(address.substr(colon + 1), &port) && port > 0 && port < 65536;
}

absl::Status FromGrpc(const grpc::Status& s, const std::string& what) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Create(const WorkerPoolOptions& options) {
  if (options.addresses.empty()) {
    return absl::InvalidArgumentError("--workers: no worker address given");
  }
  for (const std::string& a : options.addresses) {
    if (!ValidAddress(a)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--workers: '", a, "' is not host:port (e.g. 127.0.0.1:50061)"));
    }
  }
  std::error_code ec;
  fs::create_directories(options.cache_dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("worker cache ", options.cache_dir.string(), ": ", ec.message()));
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ChannelCredentialsFrom(options.tls);
  if (!credentials.ok()) return credentials.status();
  return std::unique_ptr<WorkerPool>(new WorkerPool(options, *std::move(credentials)));
}

WorkerPool::WorkerPool(const WorkerPoolOptions& options,
                       std::shared_ptr<grpc::ChannelCredentials> credentials)
    : options_(options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  // A dead worker should fail fast, not after the default 20 s reconnect backoff.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // A name with several addresses (a Kubernetes headless Service) is spread
  // over them batch by batch.
  args.SetLoadBalancingPolicyName("round_robin");
  for (const std::string& address : options.addresses) {
    auto w = std::make_unique<Worker>();
    w->address = address;
    w->stub = wv1::Worker::NewStub(grpc::CreateCustomChannel(address, credentials, args));
    workers_.push_back(std::move(w));
  }
  CheckHealthNow();
  health_thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(options_.health_interval)) CheckHealthNow();
  });
}

WorkerPool::~WorkerPool() {
  stop_.Notify();
  health_thread_.join();
}

void WorkerPool::CheckHealthNow() {
  for (auto& w : workers_) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    wv1::HealthResponse health;
    const grpc::Status s = w->stub->Health(&ctx, wv1::HealthRequest(), &health);
    absl::MutexLock lock(&w->mu);
    const bool was_healthy = w->healthy && !w->draining;
    w->healthy = s.ok();
    if (s.ok()) {
      w->draining = health.draining();
      w->queue_depth = health.queue_depth();
      w->backend = health.backend();
      w->device = health.device();
      w->loaded =
          std::set<std::string>(health.loaded_weights().begin(), health.loaded_weights().end());
    }
    const bool now_healthy = w->healthy && !w->draining;
    if (was_healthy != now_healthy) {
      LogInfo(absl::StrCat("worker ", w->address, now_healthy ? " is serving" : " is out: ",
                           now_healthy ? "" : (s.ok() ? "draining" : s.error_message())));
    }
  }
}

std::vector<WorkerStatus> WorkerPool::Workers() const {
  std::vector<WorkerStatus> out;
  for (const auto& w : workers_) {
    WorkerStatus st;
    st.address = w->address;
    st.in_flight = w->in_flight.load();
    st.batches_ok = w->batches_ok.load();
    st.batches_failed = w->batches_failed.load();
    absl::MutexLock lock(&w->mu);
    st.healthy = w->healthy;
    st.draining = w->draining;
    st.backend = w->backend;
    st.device = w->device;
    st.queue_depth = w->queue_depth;
    out.push_back(std::move(st));
  }
  return out;
}

WorkerPool::Worker* WorkerPool::Pick(const std::vector<Worker*>& tried) {
  Worker* best = nullptr;
  int64_t best_load = std::numeric_limits<int64_t>::max();
  for (auto& w : workers_) {
    if (std::find(tried.begin(), tried.end(), w.get()) != tried.end()) continue;
    int64_t load = w->in_flight.load();
    {
      absl::MutexLock lock(&w->mu);
      if (!w->healthy || w->draining) continue;
      load += w->queue_depth;
    }
    if (load < best_load) {
      best = w.get();
      best_load = load;
    }
  }
  return best;
}

absl::StatusOr<engine::EncodeResult> WorkerPool::Run(const engine::Encoder& encoder,
                                                     absl::Span<const float> x, int64_t n,
                                                     const engine::EncodeOptions& options) {
  std::vector<Worker*> tried;
  while (Worker* w = Pick(tried)) {
    tried.push_back(w);
    absl::StatusOr<engine::EncodeResult> result = RunOn(*w, encoder, x, n, options);
    if (result.ok()) {
      w->batches_ok.fetch_add(1);
      return result;
    }
    w->batches_failed.fetch_add(1);
    if (absl::IsUnavailable(result.status()) || absl::IsDeadlineExceeded(result.status())) {
      absl::MutexLock lock(&w->mu);
      w->healthy = false;  // until it answers a health check again
    }
    LogInfo(absl::StrCat("worker ", w->address, ": batch of ", n, " rows failed (",
                         result.status().ToString(), "); trying elsewhere"));
  }
  fallback_batches_.fetch_add(1);
  return encoder.Encode(x, n, options);
}

absl::StatusOr<engine::EncodeResult> WorkerPool::RunOn(Worker& worker,
                                                       const engine::Encoder& encoder,
                                                       absl::Span<const float> x, int64_t n,
                                                       const engine::EncodeOptions& options) {
  const std::string& sha = encoder.content_sha256();
  const int64_t d_in = encoder.dictionary().config.d_in;
  wv1::EncodeBatchRequest request;
  request.set_weights_sha256(sha);
  *request.mutable_activations() =
      wire::EncodeTensor(std::vector<float>(x.begin(), x.end()), {n, d_in});
  request.set_top_k(options.top_k);
  request.set_return_reconstruction(options.return_reconstruction);
  request.set_return_row_error(options.return_row_error);
  request.set_compute_mode(service::ToProto(options.compute_mode));
  worker.in_flight.fetch_add(n);
  struct Done {
    Worker& w;
    int64_t n;
    ~Done() { w.in_flight.fetch_sub(n); }
  } done{worker, n};
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool has = false;
    {
      absl::MutexLock lock(&worker.mu);
      has = worker.loaded.count(sha) != 0;
    }
    if (!has) {
      if (absl::Status s = SendWeights(worker, encoder); !s.ok()) return s;
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.batch_timeout));
    wv1::EncodeBatchResponse response;
    const grpc::Status s = worker.stub->EncodeBatch(&ctx, request, &response);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) {  // it lost the weights (restart)
      absl::MutexLock lock(&worker.mu);
      worker.loaded.erase(sha);
      continue;
    }
    if (!s.ok()) return FromGrpc(s, absl::StrCat("worker ", worker.address, " EncodeBatch"));
    engine::EncodeResult out;
    absl::StatusOr<SparseCodes> codes =
        wire::DecodeCodes(response.codes(), encoder.dictionary().config.d_sae);
    if (!codes.ok()) return codes.status();
    if (codes->num_rows != n) {
      return absl::InternalError(
          absl::StrCat("worker ", worker.address, " answered ", codes->num_rows, " rows for ", n));
    }
    out.codes = *std::move(codes);
    if (options.return_reconstruction) {
      absl::StatusOr<wire::DenseRows> rec =
          wire::DecodeMatrix(response.reconstruction(), encoder.dictionary().config.decoder_dim(),
                             "reconstruction");
      if (!rec.ok()) return rec.status();
      out.reconstruction = std::move(rec->values);
    }
    out.row_squared_error.assign(response.row_squared_error().begin(),
                                 response.row_squared_error().end());
    absl::StatusOr<engine::ComputeMode> mode =
        service::ToEngine(response.compute_mode(), "compute_mode");
    if (!mode.ok()) return mode.status();
    out.compute_mode = *mode;
    return out;
  }
  return absl::UnavailableError(
      absl::StrCat("worker ", worker.address, " keeps losing weights ", sha));
}

absl::StatusOr<fs::path> WorkerPool::CanonicalFile(const engine::Encoder& encoder) {
  const fs::path file = options_.cache_dir / absl::StrCat(encoder.content_sha256(), ".safetensors");
  absl::MutexLock lock(&files_mu_);
  std::error_code ec;
  if (fs::exists(file, ec)) return file;
  if (absl::Status s = formats::WriteCanonical(encoder.dictionary(), file); !s.ok()) return s;
  return file;
}

absl::Status WorkerPool::SendWeights(Worker& worker, const engine::Encoder& encoder) {
  absl::MutexLock load_lock(&worker.load_mu);
  const std::string& sha = encoder.content_sha256();
  {
    absl::MutexLock lock(&worker.mu);
    if (worker.loaded.count(sha) != 0) return absl::OkStatus();  // another batch sent them
  }
  absl::StatusOr<fs::path> file = CanonicalFile(encoder);
  if (!file.ok()) return file.status();
  std::ifstream in(*file, std::ios::binary);
  std::error_code ec;
  const int64_t size = static_cast<int64_t>(fs::file_size(*file, ec));
  if (!in || ec) return absl::InternalError(absl::StrCat("cannot read ", file->string()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.batch_timeout));
  wv1::LoadWeightsResponse response;
  std::unique_ptr<grpc::ClientWriter<wv1::LoadWeightsRequest>> writer =
      worker.stub->LoadWeights(&ctx, &response);
  std::string buffer(2 << 20, '\0');
  bool first = true;
  while (first || in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    wv1::LoadWeightsRequest chunk;
    chunk.set_weights_sha256(sha);
    if (first) chunk.set_total_bytes(size);
    chunk.set_chunk(buffer.data(), static_cast<size_t>(in.gcount()));
    first = false;
    if (!writer->Write(chunk)) break;
  }
  writer->WritesDone();
  const grpc::Status s = writer->Finish();
  if (!s.ok()) return FromGrpc(s, absl::StrCat("worker ", worker.address, " LoadWeights"));
  LogInfo(absl::StrCat("worker ", worker.address, " holds weights ", sha.substr(0, 12), " (", size,
                       " bytes sent)"));
  absl::MutexLock lock(&worker.mu);
  worker.loaded.insert(sha);
  return absl::OkStatus();
}

}  // namespace saedict::server
