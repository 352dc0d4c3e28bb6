// saedictd: the saedict server. Every flag has an embedded default, so a
// bare `saedictd` serves from ./var on 127.0.0.1:50051 with the CPU backend
// and the demo dictionary. SIGTERM/SIGINT drain in-flight calls and exit.
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "engine/encoder.h"
#include "server/server.h"
#include "util/log.h"

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
          "auto (the fastest exact mode here: fast_exact where this CPU has AMX-BF16, "
          "else f32), f32, fast_exact or bf16 (approximate)");
ABSL_FLAG(bool, fast_exact, true,
          "Build each dictionary's FAST_EXACT screen where this CPU has AMX (a bf16 copy of "
          "W_enc, 2 bytes per weight); false saves that memory and serves fast_exact with f32");
ABSL_FLAG(int64_t, max_batch_tokens, 4096, "Dynamic batcher: rows per encode batch");
ABSL_FLAG(int64_t, max_queue_delay_us, 2000, "Dynamic batcher: longest wait to fill a batch");
ABSL_FLAG(int64_t, max_queued_tokens, 1 << 20,
          "Dynamic batcher: queued rows beyond this get RESOURCE_EXHAUSTED");
ABSL_FLAG(int, batch_threads, 1, "Dynamic batcher: threads running batches");
ABSL_FLAG(int64_t, max_message_bytes, 256 << 20, "Largest gRPC message accepted or sent");
ABSL_FLAG(std::string, index_factory, "auto",
          "FAISS factory string of the similarity indexes (\"Flat\", \"IVF1024,Flat\", "
          "\"HNSW32\", ...); auto: Flat up to d_sae x d_in = 40 Mi, IVF above");
ABSL_FLAG(int, index_nprobe, 0, "IVF lists searched per query; 0: max(8, nlist / 64)");
ABSL_FLAG(int, neighbours_per_feature, 32,
          "Decoder neighbours precomputed and stored per feature (feature pages, families)");

namespace {

int g_signal_pipe[2] = {-1, -1};

void OnStopSignal(int signal) {
  const unsigned char byte = static_cast<unsigned char>(signal);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &byte, 1);  // async-signal-safe
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "saedictd: serve SAE dictionaries over gRPC (saedict.v1).\n"
      "  saedictd [--port=50051] [--data_dir=./var] [--dictionary_root=.]");
  absl::ParseCommandLine(argc, argv);

  // Libraries start threads before main() (OpenBLAS does), so a signal mask
  // cannot cover every thread: a handler writes the signal to a pipe instead,
  // and a watcher thread drains the server when it reads it.
  if (pipe(g_signal_pipe) != 0) {
    std::perror("saedictd: pipe");
    return 1;
  }
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

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
  options.batcher.max_batch_tokens = absl::GetFlag(FLAGS_max_batch_tokens);
  options.batcher.max_queue_delay = absl::Microseconds(absl::GetFlag(FLAGS_max_queue_delay_us));
  options.batcher.max_queued_tokens = absl::GetFlag(FLAGS_max_queued_tokens);
  options.batcher.num_batch_threads = absl::GetFlag(FLAGS_batch_threads);
  options.similarity.config.factory = absl::GetFlag(FLAGS_index_factory);
  options.similarity.config.ivf_nprobe = absl::GetFlag(FLAGS_index_nprobe);
  options.similarity.neighbours_per_feature = absl::GetFlag(FLAGS_neighbours_per_feature);
  if (options.similarity.neighbours_per_feature < 1 || options.similarity.neighbours_per_feature > 1000) {
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
  if (const std::string port_file = absl::GetFlag(FLAGS_port_file); !port_file.empty()) {
    std::ofstream(port_file + ".tmp") << (*server)->port() << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  std::thread watcher([&] {
    unsigned char signal = 0;
    while (read(g_signal_pipe[0], &signal, 1) < 0 && errno == EINTR) {
    }
    saedict::LogInfo(absl::StrCat("signal ", static_cast<int>(signal), ": draining"));
    (*server)->Shutdown(absl::Seconds(10));
  });
  (*server)->Wait();
  // Wait() returns only after Shutdown(); the watcher has done its work.
  watcher.join();
  saedict::LogInfo("saedictd stopped");
  return 0;
}
