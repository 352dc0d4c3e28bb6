// saedictd: the saedict server. Every flag has an embedded default, so a
// bare `saedictd` serves from ./var on 127.0.0.1:50051 with the CPU backend
// and the demo dictionary, metrics on 127.0.0.1:9464. SIGTERM/SIGINT drain
// in-flight calls (--drain_grace) and exit 0; SIGHUP re-reads the token file.
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "engine/encoder.h"
#include "server/config_file.h"
#include "server/process_signals.h"
#include "server/server.h"
#include "util/log.h"

ABSL_FLAG(std::string, config, "",
          "A saedict.config.v1.ServerConfig in protobuf text format whose fields are these flags "
          "(proto/saedict/config/v1/server_config.proto); flags on the command line override it");
ABSL_FLAG(std::string, listen_address, "127.0.0.1",
          "Address to listen on (0.0.0.0 for every interface, e.g. in a container)");
ABSL_FLAG(int, port, 50051, "gRPC port; 0 picks a free one (see --port_file)");
ABSL_FLAG(std::string, port_file, "", "If set, write the bound port here once serving");
ABSL_FLAG(std::string, data_dir, "./var", "Directory for RocksDB and canonical weights");
ABSL_FLAG(std::string, dictionary_root, ".",
          "LoadDictionary paths must resolve inside this directory");
ABSL_FLAG(bool, demo, true, "Create and load the demo dictionary 'demo' when absent");
ABSL_FLAG(bool, demo_corpus, true,
          "With --demo: ingest the synthetic demo corpus 'demo' into the demo dictionary when "
          "it holds no documents");
ABSL_FLAG(std::string, default_compute_mode, "auto",
          "Compute mode of requests that name none, for dictionaries loaded without one: "
          "auto (the fastest exact mode here: fast_exact where this CPU has a bf16 screen "
          "(AMX-BF16 or AVX512-BF16), else f32), f32, fast_exact (AVX2 CPUs: an int16 "
          "screen) or bf16 (approximate)");
ABSL_FLAG(bool, fast_exact, true,
          "Build each dictionary's FAST_EXACT screen where this CPU runs one (a bf16 or int16 "
          "copy of W_enc, 2 bytes per weight); false saves that memory and serves fast_exact "
          "with f32");
ABSL_FLAG(int64_t, max_batch_tokens, 4096, "Dynamic batcher: rows per encode batch");
ABSL_FLAG(int64_t, max_queue_delay_us, 2000, "Dynamic batcher: longest wait to fill a batch");
ABSL_FLAG(int64_t, max_queued_tokens, 1 << 20,
          "Dynamic batcher: queued rows beyond this get RESOURCE_EXHAUSTED");
ABSL_FLAG(int, batch_threads, 1, "Dynamic batcher: threads running batches");
ABSL_FLAG(int64_t, max_message_bytes, 256 << 20, "Largest gRPC message accepted or sent");
ABSL_FLAG(int, metrics_port, 9464,
          "Prometheus /metrics port (text format); 0 picks a free one (see --metrics_port_file), "
          "-1 serves none");
ABSL_FLAG(std::string, metrics_address, "",
          "Address of the metrics port; empty: the same as --listen_address");
ABSL_FLAG(std::string, metrics_port_file, "", "If set, write the bound metrics port here");
ABSL_FLAG(int, http_port, 8080,
          "HTTP port: the dashboard at /, the JSON API at /v1, Neuronpedia-compatible routes at "
          "/api; 0 picks a free one (see --http_port_file), -1 serves none");
ABSL_FLAG(std::string, http_address, "",
          "Address of the HTTP port; empty: the same as --listen_address");
ABSL_FLAG(std::string, http_port_file, "", "If set, write the bound HTTP port here");
ABSL_FLAG(std::vector<std::string>, http_cors_origins, {},
          "Comma-separated origins whose pages may call the HTTP API from a browser "
          "(https://dash.example.org), or * for any; empty: same-origin only");
ABSL_FLAG(int, http_threads, 8, "Threads serving HTTP requests");
ABSL_FLAG(std::vector<std::string>, workers, {},
          "Comma-separated saedict-worker addresses (host:port) that run the encode batches; a "
          "failed batch is retried on another worker, then on this server's CPU. Empty: none");
ABSL_FLAG(std::string, worker_tls_ca_file, "",
          "PEM CA that signed the workers' certificates: talk to --workers over TLS");
ABSL_FLAG(std::string, worker_tls_cert_file, "",
          "PEM client certificate for workers that require one (mutual TLS); with --worker_tls_key_file");
ABSL_FLAG(std::string, worker_tls_key_file, "", "PEM private key of --worker_tls_cert_file");
ABSL_FLAG(std::string, auth_tokens_file, "",
          "Bearer tokens with roles, one 'ROLE SHA256_HEX NAME' line each (make one with "
          "`saedict new-token ROLE NAME`); re-read on SIGHUP. Empty: auth off");
ABSL_FLAG(bool, insecure, false,
          "Allow a non-loopback --listen_address without --auth_tokens_file (every caller "
          "is admin)");
ABSL_FLAG(std::string, tls_cert_file, "", "PEM server certificate chain: serve gRPC over TLS");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA bundle: require client certificates it signed (mutual TLS)");
ABSL_FLAG(absl::Duration, default_deadline, absl::Seconds(60),
          "Deadline of unary calls that bring none; 0: none");
ABSL_FLAG(absl::Duration, default_stream_deadline, absl::ZeroDuration(),
          "Deadline of streaming calls (Ingest, EncodeStream, ...) that bring none; 0: none");
ABSL_FLAG(int, max_streams_per_client, 16,
          "Streaming calls one client (token name, or peer IP without auth) may have open; "
          "0: no cap");
ABSL_FLAG(int64_t, max_request_tokens, 1 << 20,
          "Activation rows in one Encode/Intervene request or EncodeStream/Ingest message; "
          "0: no limit");
ABSL_FLAG(int64_t, max_upload_mb, 8192,
          "Largest dictionary UploadDictionary accepts (all its files together, MiB)");
ABSL_FLAG(int64_t, min_free_disk_mb, 64,
          "Writes that add data (ingest, dictionaries, neighbours) fail with RESOURCE_EXHAUSTED "
          "while the data directory's disk has less free space (MiB); 0: never refused");
ABSL_FLAG(absl::Duration, drain_grace, absl::Seconds(10),
          "On SIGTERM/SIGINT: how long in-flight calls may run before they are cancelled");
ABSL_FLAG(std::string, index_factory, "auto",
          "FAISS factory string of the similarity indexes (\"Flat\", \"IVF1024,Flat\", "
          "\"HNSW32\", ...); auto: Flat up to d_sae x d_in = 40 Mi, IVF above");
ABSL_FLAG(int, index_nprobe, 0, "IVF lists searched per query; 0: max(8, nlist / 64)");
ABSL_FLAG(int, neighbours_per_feature, 32,
          "Decoder neighbours precomputed and stored per feature (feature pages, families)");


int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "saedictd: serve SAE dictionaries over gRPC (saedict.v1) and HTTP (dashboard, JSON).\n"
      "  saedictd [--config=saedictd.textproto] [--port=50051] [--data_dir=./var] "
      "[--dictionary_root=.]");
  // The config file's fields become flags parsed before the command line's,
  // which therefore win (server/config_file.h).
  std::vector<char*> args(argv, argv + argc);
  std::vector<std::string> config_args;
  if (std::optional<std::string> config = saedict::server::FindConfigFlag(argc, argv)) {
    absl::StatusOr<std::vector<std::string>> from_file =
        saedict::server::ConfigFileArguments(*config);
    if (!from_file.ok()) {
      std::cerr << "saedictd: " << from_file.status().message() << "\n";
      return 2;
    }
    config_args = *std::move(from_file);
    std::vector<char*> merged = {argv[0]};
    for (std::string& a : config_args) merged.push_back(a.data());
    merged.insert(merged.end(), argv + 1, argv + argc);
    args = std::move(merged);
  }
  args.push_back(nullptr);
  absl::ParseCommandLine(static_cast<int>(args.size()) - 1, args.data());

  // Libraries start threads before main() (OpenBLAS does), so a signal mask
  // cannot cover every thread: a handler writes the signal to a pipe instead,
  // and a watcher thread drains the server when it reads it.
  if (absl::Status s = saedict::server::InstallSignalPipe({SIGTERM, SIGINT, SIGHUP}); !s.ok()) {
    std::cerr << "saedictd: " << s << "\n";
    return 1;
  }

  saedict::server::ServerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen_address);
  options.port = absl::GetFlag(FLAGS_port);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.dictionary_root = absl::GetFlag(FLAGS_dictionary_root);
  options.demo = absl::GetFlag(FLAGS_demo);
  options.demo_corpus = absl::GetFlag(FLAGS_demo_corpus);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.fast_exact = absl::GetFlag(FLAGS_fast_exact);
  if (const std::string mode = absl::GetFlag(FLAGS_default_compute_mode); mode == "f32") {
    options.default_compute_mode = saedict::engine::ComputeMode::kF32;
  } else if (mode == "fast_exact") {
    options.default_compute_mode = saedict::engine::ComputeMode::kFastExact;
  } else if (mode == "bf16") {
    if (!saedict::engine::Encoder::Bf16Available()) {
      std::cerr << "saedictd: --default_compute_mode=bf16 needs AVX512-BF16 or AMX and a build "
                   "with oneDNN; this machine has neither\n";
      return 2;
    }
    options.default_compute_mode = saedict::engine::ComputeMode::kBF16;
  } else if (mode != "auto") {
    std::cerr << "saedictd: --default_compute_mode=" << mode
              << " is not a mode; expected auto, f32, fast_exact or bf16\n";
    return 2;
  }
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  options.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  options.http_port = absl::GetFlag(FLAGS_http_port);
  options.http_address = absl::GetFlag(FLAGS_http_address);
  options.http_cors_origins = absl::GetFlag(FLAGS_http_cors_origins);
  options.http_threads = absl::GetFlag(FLAGS_http_threads);
  if (options.http_threads < 1 || options.http_threads > 1024) {
    std::cerr << "saedictd: --http_threads must be in [1, 1024], got " << options.http_threads
              << "\n";
    return 2;
  }
  options.workers = absl::GetFlag(FLAGS_workers);
  options.worker_tls_ca_file = absl::GetFlag(FLAGS_worker_tls_ca_file);
  options.worker_tls_cert_file = absl::GetFlag(FLAGS_worker_tls_cert_file);
  options.worker_tls_key_file = absl::GetFlag(FLAGS_worker_tls_key_file);
  options.auth_tokens_file = absl::GetFlag(FLAGS_auth_tokens_file);
  options.insecure = absl::GetFlag(FLAGS_insecure);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  auto or_none = [](absl::Duration d) {
    return d == absl::ZeroDuration() ? absl::InfiniteDuration() : d;
  };
  options.default_deadline = or_none(absl::GetFlag(FLAGS_default_deadline));
  options.default_stream_deadline = or_none(absl::GetFlag(FLAGS_default_stream_deadline));
  options.max_streams_per_client = absl::GetFlag(FLAGS_max_streams_per_client);
  options.max_request_tokens = absl::GetFlag(FLAGS_max_request_tokens);
  if (const int64_t mb = absl::GetFlag(FLAGS_max_upload_mb); mb < 1 || mb > (int64_t{1} << 30)) {
    std::cerr << "saedictd: --max_upload_mb must be in [1, 2^30], got " << mb << "\n";
    return 2;
  } else {
    options.max_upload_bytes = mb << 20;
  }
  if (const int64_t mb = absl::GetFlag(FLAGS_min_free_disk_mb); mb < 0 || mb > (int64_t{1} << 30)) {
    std::cerr << "saedictd: --min_free_disk_mb must be in [0, 2^30], got " << mb << "\n";
    return 2;
  } else {
    options.min_free_disk_bytes = static_cast<uint64_t>(mb) << 20;
  }
  if (absl::GetFlag(FLAGS_default_deadline) < absl::ZeroDuration() ||
      absl::GetFlag(FLAGS_default_stream_deadline) < absl::ZeroDuration() ||
      absl::GetFlag(FLAGS_drain_grace) < absl::ZeroDuration()) {
    std::cerr << "saedictd: --default_deadline, --default_stream_deadline and --drain_grace must "
                 "be >= 0\n";
    return 2;
  }
  options.batcher.max_batch_tokens = absl::GetFlag(FLAGS_max_batch_tokens);
  options.batcher.max_queue_delay = absl::Microseconds(absl::GetFlag(FLAGS_max_queue_delay_us));
  options.batcher.max_queued_tokens = absl::GetFlag(FLAGS_max_queued_tokens);
  options.batcher.num_batch_threads = absl::GetFlag(FLAGS_batch_threads);
  options.similarity.config.factory = absl::GetFlag(FLAGS_index_factory);
  options.similarity.config.ivf_nprobe = absl::GetFlag(FLAGS_index_nprobe);
  options.similarity.neighbours_per_feature = absl::GetFlag(FLAGS_neighbours_per_feature);
  if (options.similarity.neighbours_per_feature < 1 ||
      options.similarity.neighbours_per_feature > 1000) {
    std::cerr << "saedictd: --neighbours_per_feature=" << options.similarity.neighbours_per_feature
              << " is out of range; expected 1..1000\n";
    return 2;
  }

  absl::StatusOr<std::unique_ptr<saedict::server::SaedictServer>> server =
      saedict::server::SaedictServer::Start(options);
  if (!server.ok()) {
    std::cerr << "saedictd: " << server.status() << "\n";
    return 1;
  }
  // The metrics port first: once the gRPC port file exists, both do.
  using saedict::server::WritePortFile;
  WritePortFile(absl::GetFlag(FLAGS_metrics_port_file), (*server)->metrics_port());
  WritePortFile(absl::GetFlag(FLAGS_http_port_file), (*server)->http_port());
  WritePortFile(absl::GetFlag(FLAGS_port_file), (*server)->port());
  const absl::Duration drain_grace = absl::GetFlag(FLAGS_drain_grace);
  std::thread watcher([&] {
    for (;;) {
      const int signal = saedict::server::NextSignal();
      if (signal == SIGHUP) {
        const absl::Status reloaded = (*server)->ReloadAuth();
        saedict::LogInfo(reloaded.ok() ? std::string("SIGHUP: token file re-read")
                                       : absl::StrCat("SIGHUP: token file NOT re-read, the old "
                                                      "tokens stay in force: ",
                                                      reloaded.ToString()));
        continue;
      }
      saedict::LogInfo(absl::StrCat("signal ", signal, ": draining for up to ",
                                    absl::FormatDuration(drain_grace)));
      (*server)->Shutdown(drain_grace);
      return;
    }
  });
  (*server)->Wait();
  // Wait() returns only after Shutdown(); the watcher has done its work.
  watcher.join();
  saedict::LogInfo("saedictd stopped");
  return 0;
}
