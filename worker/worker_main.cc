// saedict-worker: the encode engine behind the internal worker protocol
// (worker_service.h), for saedictd --workers=host:port,... . Every flag has
// a default: a bare `saedict-worker` serves on 127.0.0.1:50061 with the
// CUDA backend where a GPU is usable and the CPU backend elsewhere
// (--backend), metrics on 127.0.0.1:9465. SIGTERM/SIGINT drain: Health says draining, new batches are
// refused (the pool retries them elsewhere), running ones finish within
// --drain_grace, then it exits 0.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/metrics.h"
#include "server/process_signals.h"
#include "server/rpc_metrics_interceptor.h"
#include "server/server.h"
#include "server/tls_credentials.h"
#include "util/log.h"
#include "worker/worker_service.h"

ABSL_FLAG(std::string, listen_address, "127.0.0.1",
          "Address to listen on (0.0.0.0 in a container: needs mutual TLS or --insecure)");
ABSL_FLAG(int, port, 50061, "Worker protocol port; 0 picks a free one (see --port_file)");
ABSL_FLAG(std::string, port_file, "", "If set, write the bound port here once serving");
ABSL_FLAG(std::string, cache_dir, "./var-worker",
          "Where weights files are written while they load");
ABSL_FLAG(bool, fast_exact, true, "Build the FAST_EXACT screen where this CPU runs it");
ABSL_FLAG(std::string, backend, "auto",
          "Encode backend: cpu, cuda (the GPU of --cuda_device), or auto (cuda when a CUDA "
          "device is usable, else cpu)");
ABSL_FLAG(int, cuda_device, 0, "CUDA device ordinal for --backend=cuda");
ABSL_FLAG(int, cuda_lanes, 2,
          "Batches encoded on the GPU at once, each with its own stream and buffers");
ABSL_FLAG(absl::Duration, test_batch_delay, absl::ZeroDuration(),
          "Fault injection for failover tests: wait this long in each batch before encoding "
          "(0: never). Never set it in production");
ABSL_FLAG(int64_t, max_message_bytes, 256 << 20, "Largest message accepted or sent");
ABSL_FLAG(absl::Duration, drain_grace, absl::Seconds(10),
          "On SIGTERM/SIGINT: how long running batches may take before exit");
ABSL_FLAG(bool, insecure, false,
          "Allow a non-loopback --listen_address without mutual TLS (a private network)");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain: serve the worker protocol over TLS");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA: only clients (saedictd --worker_tls_cert_file) with a certificate it signed may "
          "connect (mutual TLS)");
ABSL_FLAG(int, metrics_port, 9465,
          "Prometheus /metrics port (RPC latency by method and code, process memory and CPU); "
          "0 picks a free one, -1 serves none");
ABSL_FLAG(std::string, metrics_address, "",
          "Address of the metrics port; empty: the same as --listen_address");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "saedict-worker: encode batches for saedictd --workers (internal worker protocol).\n"
      "  saedict-worker [--port=50061] [--listen_address=127.0.0.1]");
  absl::ParseCommandLine(argc, argv);
  const std::string address = absl::GetFlag(FLAGS_listen_address);
  const saedict::server::TlsFiles tls = {absl::GetFlag(FLAGS_tls_cert_file),
                                         absl::GetFlag(FLAGS_tls_key_file),
                                         absl::GetFlag(FLAGS_tls_client_ca_file)};
  if (!saedict::server::IsLoopbackAddress(address) && tls.ca.empty() &&
      !absl::GetFlag(FLAGS_insecure)) {
    std::cerr << "saedict-worker: refusing to listen on " << address
              << " (not loopback) without mutual TLS: give --tls_cert_file, --tls_key_file and "
                 "--tls_client_ca_file, or --insecure on a private network\n";
    return 2;
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      saedict::server::ServerCredentialsFrom(tls);
  if (!credentials.ok()) {
    std::cerr << "saedict-worker: " << credentials.status().message() << "\n";
    return 2;
  }
  if (absl::Status s = saedict::server::InstallSignalPipe({SIGTERM, SIGINT}); !s.ok()) {
    std::cerr << "saedict-worker: " << s << "\n";
    return 1;
  }

  saedict::server::ServerMetrics metrics;
  if (const int metrics_port = absl::GetFlag(FLAGS_metrics_port); metrics_port >= 0) {
    const std::string metrics_address = absl::GetFlag(FLAGS_metrics_address);
    if (absl::Status s =
            metrics.StartServing(metrics_address.empty() ? address : metrics_address, metrics_port);
        !s.ok()) {
      std::cerr << "saedict-worker: " << s << "\n";
      return 1;
    }
  }
  absl::StatusOr<saedict::worker::Backend> backend =
      saedict::worker::ParseBackend(absl::GetFlag(FLAGS_backend));
  if (!backend.ok()) {
    std::cerr << "saedict-worker: " << backend.status().message() << "\n";
    return 2;
  }
  saedict::worker::WorkerOptions worker_options;
  worker_options.cache_dir = absl::GetFlag(FLAGS_cache_dir);
  worker_options.fast_exact = absl::GetFlag(FLAGS_fast_exact);
  worker_options.test_batch_delay = absl::GetFlag(FLAGS_test_batch_delay);
  worker_options.backend = *backend;
  worker_options.cuda.device = absl::GetFlag(FLAGS_cuda_device);
  worker_options.cuda.lanes = absl::GetFlag(FLAGS_cuda_lanes);
  std::string device_name = "cpu";
  if (*backend == saedict::worker::Backend::kCuda) {
    absl::StatusOr<saedict::engine::cuda::DeviceInfo> gpu =
        saedict::engine::cuda::GetDeviceInfo(worker_options.cuda.device);
    if (!gpu.ok()) {
      std::cerr << "saedict-worker: --cuda_device=" << worker_options.cuda.device << ": "
                << gpu.status().message() << "\n";
      return 2;
    }
    device_name = saedict::worker::DescribeGpu(*gpu);
  }
  saedict::worker::WorkerService service(worker_options);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::StrCat(address, ":", absl::GetFlag(FLAGS_port)), *credentials,
                           &port);
  const int max_bytes = static_cast<int>(absl::GetFlag(FLAGS_max_message_bytes));
  builder.SetMaxReceiveMessageSize(max_bytes);
  builder.SetMaxSendMessageSize(max_bytes);
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<saedict::server::RpcMetricsInterceptorFactory>(&metrics));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "saedict-worker: cannot listen on " << address << ":" << absl::GetFlag(FLAGS_port)
              << "\n";
    return 1;
  }
  saedict::LogInfo(absl::StrCat(
      "saedict-worker listening on ", address, ":", port,
      " (backend ", device_name, ", cache_dir=", absl::GetFlag(FLAGS_cache_dir),
      metrics.port() > 0 ? absl::StrCat(", metrics on :", metrics.port()) : std::string(), ")"));
  saedict::server::WritePortFile(absl::GetFlag(FLAGS_port_file), port);
  const int signal = saedict::server::NextSignal();
  const absl::Duration grace = absl::GetFlag(FLAGS_drain_grace);
  saedict::LogInfo(
      absl::StrCat("signal ", signal, ": draining for up to ", absl::FormatDuration(grace)));
  service.StartDraining();
  server->GetHealthCheckService()->SetServingStatus(false);
  const absl::Time deadline = absl::Now() + grace;
  while (service.calls_in_flight() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  // Let the pool's next health check see "draining" before the port closes.
  absl::SleepFor(absl::Milliseconds(200));
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  metrics.StopServing();
  saedict::LogInfo("saedict-worker stopped");
  return 0;
}
