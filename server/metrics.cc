#include "server/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "CivetServer.h"
#include "civetweb.h"
#include "prometheus/exposer.h"
#include "prometheus/text_serializer.h"

namespace saedict::server {
namespace {

using prometheus::Histogram;

const Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* const kBuckets = new Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return *kBuckets;
}

const Histogram::BucketBoundaries& PowersOfTwo(int top_exponent) {
  auto* buckets = new Histogram::BucketBoundaries;
  for (int e = 0; e <= top_exponent; ++e) buckets->push_back(static_cast<double>(int64_t{1} << e));
  return *buckets;
}

const Histogram::BucketBoundaries& RowBuckets() {
  static const Histogram::BucketBoundaries& kBuckets = PowersOfTwo(16);
  return kBuckets;
}

const Histogram::BucketBoundaries& RequestBuckets() {
  static const Histogram::BucketBoundaries& kBuckets = PowersOfTwo(8);
  return kBuckets;
}

// "/saedict.v1.Saedict/Encode" -> {"saedict.v1.Saedict", "Encode"}.
std::pair<std::string, std::string> SplitMethod(absl::string_view full_method) {
  if (!full_method.empty() && full_method.front() == '/') full_method.remove_prefix(1);
  const size_t slash = full_method.rfind('/');
  if (slash == absl::string_view::npos) return {"", std::string(full_method)};
  return {std::string(full_method.substr(0, slash)), std::string(full_method.substr(slash + 1))};
}

absl::string_view ComputeModeLabel(engine::ComputeMode mode) {
  switch (mode) {
    case engine::ComputeMode::kF32:
      return "f32";
    case engine::ComputeMode::kBF16:
      return "bf16";
    case engine::ComputeMode::kFastExact:
      return "fast_exact";
  }
  return "unknown";
}

absl::string_view IndexStateLabel(v1::IndexState state) {
  switch (state) {
    case v1::INDEX_STATE_QUEUED:
      return "queued";
    case v1::INDEX_STATE_BUILDING:
      return "building";
    case v1::INDEX_STATE_READY:
      return "ready";
    case v1::INDEX_STATE_FAILED:
      return "failed";
    default:
      return "none";
  }
}

prometheus::MetricFamily GaugeFamily(std::string name, std::string help) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Gauge;
  return family;
}

void AddSample(prometheus::MetricFamily& family,
               std::vector<prometheus::ClientMetric::Label> labels, double value) {
  prometheus::ClientMetric& m = family.metric.emplace_back();
  m.label = std::move(labels);
  if (family.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
}

struct ProcessStats {
  double resident_bytes = 0;
  double cpu_seconds = 0;
};

ProcessStats ReadProcessStats() {
  ProcessStats stats;
  std::ifstream statm("/proc/self/statm");
  long size_pages = 0, resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    stats.resident_bytes = static_cast<double>(resident_pages) * sysconf(_SC_PAGESIZE);
  }
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
  if (const size_t close = stat.rfind(')'); close != std::string::npos) {
    const std::vector<std::string> fields =
        absl::StrSplit(stat.substr(close + 2), ' ', absl::SkipEmpty());
    if (fields.size() > 12) {
      const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
      stats.cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
    }
  }
  return stats;
}

// civetweb 1.15 (Debian) can crash formatting its own error pages (seen:
// its 404 page brought the whole server down), so error pages are this one,
// and every path has a handler (StartServing), so there is no 404 path.
int PlainHttpError(mg_connection* conn, int status, const char* /*message*/) {
  const std::string body = absl::StrCat("saedictd metrics: HTTP ", status, "; scrape /metrics\n");
  const std::string head = absl::StrCat("HTTP/1.1 ", status,
                                        " Error\r\nContent-Type: text/plain\r\nContent-Length: ",
                                        body.size(), "\r\nConnection: close\r\n\r\n");
  mg_write(conn, head.data(), head.size());
  mg_write(conn, body.data(), body.size());
  return 0;  // handled: civetweb's own error page is never built
}

}  // namespace

// The registry's families plus the gauges read from the sources at scrape time.
class ServerMetrics::Collector final : public prometheus::Collectable {
 public:
  explicit Collector(std::shared_ptr<prometheus::Registry> registry)
      : registry_(std::move(registry)),
        start_time_(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch())) {}

  void Attach(const MetricsSources& sources) {
    absl::MutexLock lock(&mu_);
    sources_ = sources;
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out = registry_->Collect();
    MetricsSources sources;
    {
      absl::MutexLock lock(&mu_);
      sources = sources_;
    }
    if (sources.batcher != nullptr) {
      auto queued = GaugeFamily("saedict_encode_queue_tokens",
                                "Activation rows waiting in the encode batcher's queue");
      AddSample(queued, {}, static_cast<double>(sources.batcher->queued_tokens()));
      out.push_back(std::move(queued));
    }
    if (sources.registry != nullptr) {
      auto loaded = GaugeFamily("saedict_dictionaries", "Dictionaries loaded and served");
      AddSample(loaded, {}, static_cast<double>(sources.registry->List().size()));
      out.push_back(std::move(loaded));
    }
    if (sources.workers != nullptr) AppendWorkers(*sources.workers, out);
    if (sources.store != nullptr) AppendStorage(*sources.store, out);
    if (sources.similarity != nullptr) AppendIndexes(*sources.similarity, out);
    AppendProcess(out);
    return out;
  }

 private:
  static void AppendWorkers(const WorkerPool& pool, std::vector<prometheus::MetricFamily>& out) {
    auto up = GaugeFamily("saedict_worker_up", "1 while a worker answers its health checks");
    auto draining = GaugeFamily("saedict_worker_draining", "1 while a worker says it drains");
    auto queue = GaugeFamily("saedict_worker_queue_rows",
                             "Rows a worker reported queued or encoding in its last health check");
    auto in_flight = GaugeFamily("saedict_worker_in_flight_rows",
                                 "Rows this server is waiting for on a worker now");
    prometheus::MetricFamily batches;
    batches.name = "saedict_worker_batches_total";
    batches.help = "Encode batches sent to a worker, by outcome (failed ones were retried)";
    batches.type = prometheus::MetricType::Counter;
    for (const WorkerStatus& w : pool.Workers()) {
      AddSample(up, {{"worker", w.address}}, w.healthy ? 1 : 0);
      AddSample(draining, {{"worker", w.address}}, w.draining ? 1 : 0);
      AddSample(queue, {{"worker", w.address}}, static_cast<double>(w.queue_depth));
      AddSample(in_flight, {{"worker", w.address}}, static_cast<double>(w.in_flight));
      AddSample(batches, {{"worker", w.address}, {"outcome", "ok"}},
                static_cast<double>(w.batches_ok));
      AddSample(batches, {{"worker", w.address}, {"outcome", "failed"}},
                static_cast<double>(w.batches_failed));
    }
    prometheus::MetricFamily fallback;
    fallback.name = "saedict_worker_fallback_batches_total";
    fallback.help = "Encode batches run on this server's CPU because no worker could take them";
    fallback.type = prometheus::MetricType::Counter;
    AddSample(fallback, {}, static_cast<double>(pool.fallback_batches()));
    for (auto* f : {&up, &draining, &queue, &in_flight, &batches, &fallback}) {
      out.push_back(std::move(*f));
    }
  }

  static void AppendStorage(storage::Store& store, std::vector<prometheus::MetricFamily>& out) {
    auto sst =
        GaugeFamily("saedict_storage_sst_bytes", "Bytes of RocksDB SST files per column family");
    auto memtable = GaugeFamily("saedict_storage_memtable_bytes",
                                "Bytes of RocksDB memtables per column family");
    auto keys = GaugeFamily("saedict_storage_estimated_keys",
                            "RocksDB's estimate of the keys per column family");
    for (const storage::FamilySize& f : store.FamilySizes()) {
      AddSample(sst, {{"column_family", f.name}}, static_cast<double>(f.sst_bytes));
      AddSample(memtable, {{"column_family", f.name}}, static_cast<double>(f.memtable_bytes));
      AddSample(keys, {{"column_family", f.name}}, static_cast<double>(f.estimated_keys));
    }
    out.push_back(std::move(sst));
    out.push_back(std::move(memtable));
    out.push_back(std::move(keys));
  }

  static void AppendIndexes(const service::SimilarityIndex& similarity,
                            std::vector<prometheus::MetricFamily>& out) {
    auto vectors = GaugeFamily("saedict_index_vectors",
                               "Directions in a similarity index (neighbours: features done)");
    auto memory = GaugeFamily("saedict_index_memory_bytes", "Memory of a FAISS similarity index");
    auto build = GaugeFamily("saedict_index_build_duration_seconds",
                             "Wall time of the last build or load of an index or the neighbours");
    auto ready = GaugeFamily("saedict_index_ready",
                             "1 when the index is READY; the state label says where it is");
    for (const service::IndexSize& s : similarity.Sizes()) {
      if (s.state == v1::INDEX_STATE_UNSPECIFIED) continue;  // never asked for (encoder index)
      const std::vector<prometheus::ClientMetric::Label> labels = {{"dictionary", s.dictionary},
                                                                   {"kind", s.kind}};
      AddSample(vectors, labels, static_cast<double>(s.vectors));
      AddSample(memory, labels, static_cast<double>(s.memory_bytes));
      AddSample(build, labels, s.build_seconds);
      std::vector<prometheus::ClientMetric::Label> with_state = labels;
      with_state.push_back({"state", std::string(IndexStateLabel(s.state))});
      AddSample(ready, with_state, s.state == v1::INDEX_STATE_READY ? 1 : 0);
    }
    out.push_back(std::move(vectors));
    out.push_back(std::move(memory));
    out.push_back(std::move(build));
    out.push_back(std::move(ready));
  }

  void AppendProcess(std::vector<prometheus::MetricFamily>& out) const {
    const ProcessStats stats = ReadProcessStats();
    auto rss = GaugeFamily("saedict_process_resident_memory_bytes",
                           "Resident set size of the saedictd process");
    AddSample(rss, {}, stats.resident_bytes);
    prometheus::MetricFamily cpu;
    cpu.name = "saedict_process_cpu_seconds_total";
    cpu.help = "User and system CPU time of the saedictd process";
    cpu.type = prometheus::MetricType::Counter;
    AddSample(cpu, {}, stats.cpu_seconds);
    auto start = GaugeFamily("saedict_process_start_time_seconds",
                             "When the server's metrics started, in seconds since the Unix epoch");
    AddSample(start, {}, start_time_);
    out.push_back(std::move(rss));
    out.push_back(std::move(cpu));
    out.push_back(std::move(start));
  }

  const std::shared_ptr<prometheus::Registry> registry_;
  const double start_time_;
  mutable absl::Mutex mu_;
  MetricsSources sources_ ABSL_GUARDED_BY(mu_);
};

ServerMetrics::ServerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      collector_(std::make_shared<Collector>(registry_)),
      empty_(std::make_shared<prometheus::Registry>()),
      rpc_duration_(prometheus::BuildHistogram()
                        .Name("saedict_rpc_duration_seconds")
                        .Help("Latency of finished RPCs by service, method and gRPC status code")
                        .Register(*registry_)),
      rpc_in_flight_(prometheus::BuildGauge()
                         .Name("saedict_rpc_in_flight")
                         .Help("RPCs being served now")
                         .Register(*registry_)),
      auth_denied_(prometheus::BuildCounter()
                       .Name("saedict_auth_denied_total")
                       .Help("Calls refused by auth: reason unauthenticated or permission_denied")
                       .Register(*registry_)),
      stream_limit_rejections_(
          prometheus::BuildCounter()
              .Name("saedict_stream_limit_rejections_total")
              .Help("Streaming calls refused: the client had --max_streams_per_client open")
              .Register(*registry_)
              .Add({})),
      batch_rows_(prometheus::BuildHistogram()
                      .Name("saedict_encode_batch_rows")
                      .Help("Activation rows per encode batch")
                      .Register(*registry_)
                      .Add({}, RowBuckets())),
      batch_requests_(prometheus::BuildHistogram()
                          .Name("saedict_encode_batch_requests")
                          .Help("Requests merged into one encode batch")
                          .Register(*registry_)
                          .Add({}, RequestBuckets())),
      queue_delay_(prometheus::BuildHistogram()
                       .Name("saedict_encode_queue_delay_seconds")
                       .Help("How long a batch's oldest request waited in the encode queue")
                       .Register(*registry_)
                       .Add({}, LatencyBuckets())),
      batch_duration_(prometheus::BuildHistogram()
                          .Name("saedict_encode_batch_duration_seconds")
                          .Help("Wall time of encoding one batch")
                          .Register(*registry_)
                          .Add({}, LatencyBuckets())),
      encode_tokens_(prometheus::BuildCounter()
                         .Name("saedict_encode_tokens_total")
                         .Help("Activation rows encoded by the batcher, by compute mode")
                         .Register(*registry_)),
      encode_rejected_(prometheus::BuildCounter()
                           .Name("saedict_encode_rejected_tokens_total")
                           .Help("Activation rows refused by the encode batcher: reason "
                                 "queue_full (RESOURCE_EXHAUSTED) or deadline (expired queued)")
                           .Register(*registry_)),
      ingest_requests_(prometheus::BuildCounter()
                           .Name("saedict_ingest_requests_total")
                           .Help("Ingest request messages received")
                           .Register(*registry_)
                           .Add({})),
      ingest_bytes_(prometheus::BuildCounter()
                        .Name("saedict_ingest_bytes_total")
                        .Help("Bytes of ingest request messages received")
                        .Register(*registry_)
                        .Add({})),
      ingest_documents_(prometheus::BuildCounter()
                            .Name("saedict_ingest_documents_total")
                            .Help("Documents durably stored by ingest")
                            .Register(*registry_)
                            .Add({})),
      ingest_tokens_(prometheus::BuildCounter()
                         .Name("saedict_ingest_tokens_total")
                         .Help("Tokens durably stored by ingest")
                         .Register(*registry_)
                         .Add({})) {
  // Series of bounded label sets exist from the start (0), so dashboards and
  // rate() see them before the first event.
  for (const char* reason : {"unauthenticated", "permission_denied"}) {
    auth_denied_.Add({{"reason", reason}});
  }
  for (const char* reason : {"queue_full", "deadline"}) encode_rejected_.Add({{"reason", reason}});
}

ServerMetrics::~ServerMetrics() { StopServing(); }

void ServerMetrics::AttachSources(const MetricsSources& sources) { collector_->Attach(sources); }

void ServerMetrics::ObserveRpc(absl::string_view full_method, absl::string_view code,
                               absl::Duration latency) {
  auto [service, method] = SplitMethod(full_method);
  rpc_duration_
      .Add({{"service", service}, {"method", method}, {"code", std::string(code)}},
           LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(latency));
}

void ServerMetrics::RpcStarted(absl::string_view full_method) {
  in_flight_.fetch_add(1);
  auto [service, method] = SplitMethod(full_method);
  rpc_in_flight_.Add({{"service", service}, {"method", method}}).Increment();
}

void ServerMetrics::RpcFinished(absl::string_view full_method) {
  in_flight_.fetch_sub(1);
  auto [service, method] = SplitMethod(full_method);
  rpc_in_flight_.Add({{"service", service}, {"method", method}}).Decrement();
}

void ServerMetrics::ObserveAuthDenied(absl::string_view reason) {
  auth_denied_.Add({{"reason", std::string(reason)}}).Increment();
}

void ServerMetrics::ObserveStreamLimitRejection() { stream_limit_rejections_.Increment(); }

void ServerMetrics::ObserveIngestRequest(int64_t bytes) {
  ingest_requests_.Increment();
  ingest_bytes_.Increment(static_cast<double>(bytes));
}

void ServerMetrics::ObserveIngestStored(int64_t documents, int64_t tokens) {
  ingest_documents_.Increment(static_cast<double>(documents));
  ingest_tokens_.Increment(static_cast<double>(tokens));
}

void ServerMetrics::OnBatch(const engine::BatchReport& report) {
  batch_rows_.Observe(static_cast<double>(report.rows));
  batch_requests_.Observe(report.requests);
  queue_delay_.Observe(absl::ToDoubleSeconds(report.queue_delay));
  batch_duration_.Observe(absl::ToDoubleSeconds(report.encode_time));
  if (report.ok) {
    encode_tokens_.Add({{"compute_mode", std::string(ComputeModeLabel(report.compute_mode))}})
        .Increment(static_cast<double>(report.rows));
  }
}

void ServerMetrics::OnRejected(int64_t rows) {
  encode_rejected_.Add({{"reason", "queue_full"}}).Increment(static_cast<double>(rows));
}

void ServerMetrics::OnExpired(int64_t rows) {
  encode_rejected_.Add({{"reason", "deadline"}}).Increment(static_cast<double>(rows));
}

absl::Status ServerMetrics::StartServing(const std::string& address, int port) {
  const std::string bind = absl::StrCat(address, ":", port);
  try {
    static const CivetCallbacks* const kCallbacks = [] {
      auto* callbacks = new CivetCallbacks();
      callbacks->http_error = &PlainHttpError;
      return callbacks;
    }();
    exposer_ = std::make_unique<prometheus::Exposer>(bind, 1, kCallbacks);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("--metrics_port: cannot listen on ", bind, ": ", e.what()));
  }
  bound_address_ = address;
  exposer_->RegisterCollectable(collector_);
  // A handler for every other path (200), so civetweb never builds its 404 page.
  exposer_->RegisterCollectable(empty_, "/");
  const std::vector<int> ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? 0 : ports.front();
  return absl::OkStatus();
}

// civetweb's listener polls with a 2 s timeout and looks at its stop flag
// only between polls, so a plain stop takes up to 2 s (on every drain and
// every test). Connecting to it while it stops wakes the poll at once.
void ServerMetrics::StopServing() {
  if (exposer_ == nullptr) return;
  std::atomic<bool> stopped{false};
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  if (inet_pton(AF_INET, bound_address_.c_str(), &addr.sin_addr) != 1 ||
      addr.sin_addr.s_addr == htonl(INADDR_ANY)) {
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  std::thread waker([&] {
    while (!stopped.load()) {
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd >= 0) {
        connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
        close(fd);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  exposer_.reset();
  stopped.store(true);
  waker.join();
  port_ = 0;
}

std::string ServerMetrics::Scrape() const {
  return prometheus::TextSerializer().Serialize(collector_->Collect());
}

}  // namespace saedict::server
