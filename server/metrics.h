// ServerMetrics: saedictd's Prometheus metrics (prometheus-cpp), served as
// text on their own port (--metrics_port) at /metrics (every other path
// answers 200 too: civetweb's 404 page crashed the server, StartServing).
//
// Names follow Prometheus conventions: the saedict_ prefix, base units
// (seconds, bytes), _total counters. Labels are bounded sets only — method,
// gRPC code, compute mode, column family, dictionary id, index kind — never
// a feature id, document id or token. What is exported:
//   saedict_rpc_duration_seconds{service,method,code}   histogram (its _count: calls); HTTP
//                                                        requests: service="http", method = the
//                                                        saedict.v1 method or the route name
//   saedict_rpc_in_flight{service,method}               gauge
//   saedict_auth_denied_total{reason}                    counter (unauthenticated,
//   permission_denied) saedict_stream_limit_rejections_total                counter
//   saedict_encode_batch_rows / _batch_requests          histograms per batch
//   saedict_encode_queue_delay_seconds, saedict_encode_batch_duration_seconds  histograms
//   saedict_encode_tokens_total{compute_mode}            counter (rows encoded by the batcher)
//   saedict_encode_rejected_tokens_total{reason}         counter (queue_full, deadline)
//   saedict_encode_queue_tokens                          gauge (rows waiting now)
//   saedict_ingest_requests_total, saedict_ingest_bytes_total (received),
//   saedict_ingest_tokens_total, saedict_ingest_documents_total (stored)  counters
//   saedict_storage_sst_bytes / _memtable_bytes / _estimated_keys{column_family}  gauges
//   saedict_dictionaries                                 gauge (loaded)
//   saedict_index_vectors / _memory_bytes / _build_duration_seconds / _ready{dictionary,kind}
//   saedict_process_resident_memory_bytes, saedict_process_cpu_seconds_total,
//   saedict_process_start_time_seconds
//   saedict_worker_up / _draining / _queue_rows / _in_flight_rows{worker}  gauges
//   saedict_worker_batches_total{worker,outcome}        counter (ok, failed)
//   saedict_worker_fallback_batches_total                counter (no worker left: run here)
// (worker = the configured host:port, a bounded set.)
//
// Thread safety: every method may be called from any thread; the scrape-time
// gauges read their sources (set once by AttachSources) under their own locks.
#ifndef SAEDICT_SERVER_METRICS_H_
#define SAEDICT_SERVER_METRICS_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/batcher.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/worker_pool.h"
#include "service/dictionary_registry.h"
#include "service/similarity_index.h"
#include "storage/store.h"

namespace prometheus {
class Exposer;
}

namespace saedict::server {

// Components the scrape-time gauges read; each may be null (not reported).
struct MetricsSources {
  storage::Store* store = nullptr;
  service::DictionaryRegistry* registry = nullptr;
  service::SimilarityIndex* similarity = nullptr;
  engine::EncodeBatcher* batcher = nullptr;
  const WorkerPool* workers = nullptr;
};

class ServerMetrics final : public engine::BatchObserver {
 public:
  ServerMetrics();
  ~ServerMetrics() override;

  // The components to read at scrape time; call once, before serving. They
  // must outlive the metrics endpoint (StopServing or destruction).
  void AttachSources(const MetricsSources& sources);

  // One finished RPC. `full_method` is gRPC's "/package.Service/Method".
  void ObserveRpc(absl::string_view full_method, absl::string_view code, absl::Duration latency);
  void RpcStarted(absl::string_view full_method);
  void RpcFinished(absl::string_view full_method);
  // Calls of any service between RpcStarted and RpcFinished right now.
  int64_t in_flight() const { return in_flight_.load(); }
  void ObserveAuthDenied(absl::string_view reason);
  void ObserveStreamLimitRejection();
  void ObserveIngestRequest(int64_t bytes);
  void ObserveIngestStored(int64_t documents, int64_t tokens);

  // engine::BatchObserver
  void OnBatch(const engine::BatchReport& report) override;
  void OnRejected(int64_t rows) override;
  void OnExpired(int64_t rows) override;

  // Serves /metrics on address:port (port 0: a free one). UNAVAILABLE when
  // the port cannot be bound.
  absl::Status StartServing(const std::string& address, int port);
  void StopServing();
  int port() const { return port_; }  // 0 until serving

  // The exposition text a scrape would get now (tests, debugging).
  std::string Scrape() const;

 private:
  class Collector;

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<Collector> collector_;
  std::shared_ptr<prometheus::Registry> empty_;  // the handler of every other path
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  std::string bound_address_;
  std::atomic<int64_t> in_flight_{0};

  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  prometheus::Family<prometheus::Gauge>& rpc_in_flight_;
  prometheus::Family<prometheus::Counter>& auth_denied_;
  prometheus::Counter& stream_limit_rejections_;
  prometheus::Histogram& batch_rows_;
  prometheus::Histogram& batch_requests_;
  prometheus::Histogram& queue_delay_;
  prometheus::Histogram& batch_duration_;
  prometheus::Family<prometheus::Counter>& encode_tokens_;
  prometheus::Family<prometheus::Counter>& encode_rejected_;
  prometheus::Counter& ingest_requests_;
  prometheus::Counter& ingest_bytes_;
  prometheus::Counter& ingest_documents_;
  prometheus::Counter& ingest_tokens_;
};

}  // namespace saedict::server

#endif  // SAEDICT_SERVER_METRICS_H_
