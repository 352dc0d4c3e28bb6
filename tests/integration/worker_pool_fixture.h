// The worker-pool test fixture: real saedict-worker child processes on free
// loopback ports (WorkerProcess) behind an in-process saedictd whose
// --workers names them (WorkerPoolTest), with a reference CPU encoder of the
// same dictionary for the expected codes. Used by worker_pool_test.cc and
// worker_failover_test.cc.
#ifndef SAEDICT_TESTS_INTEGRATION_WORKER_POOL_FIXTURE_H_
#define SAEDICT_TESTS_INTEGRATION_WORKER_POOL_FIXTURE_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/server/corpus_test_util.h"
#include "tests/server/grpc_test_fixture.h"

namespace saedict::testing {

// One saedict-worker child on a free loopback port; killed and reaped by
// the destructor if still running.
class WorkerProcess {
 public:
  static std::unique_ptr<WorkerProcess> Start(const std::filesystem::path& dir,
                                              std::vector<std::string> extra_flags = {}) {
    std::filesystem::create_directories(dir);
    const std::filesystem::path port_file = dir / "port";
    const std::string port_flag = "--port_file=" + port_file.string();
    const std::string cache_flag = "--cache_dir=" + (dir / "cache").string();
    std::vector<std::string> args = {SAEDICT_WORKER_PATH, "--port=0",          port_flag,
                                     cache_flag,          "--drain_grace=10s", "--metrics_port=0"};
    args.insert(args.end(), extra_flags.begin(), extra_flags.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log = (dir / "log").string();
    const pid_t pid = fork();
    if (pid == 0) {
      if (freopen(log.c_str(), "w", stderr) == nullptr) _exit(126);
      execv(SAEDICT_WORKER_PATH, argv.data());
      _exit(127);
    }
    auto w = std::unique_ptr<WorkerProcess>(new WorkerProcess(pid));
    for (int i = 0; i < 600 && w->port_ == 0; ++i) {
      std::ifstream in(port_file);
      if (in >> w->port_) break;
      w->port_ = 0;
      if (waitpid(pid, nullptr, WNOHANG) == pid) {  // it exited: no point waiting
        w->reaped_ = true;
        break;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    if (w->port_ == 0) {
      ADD_FAILURE() << "saedict-worker did not start; see " << (dir / "log");
      return nullptr;
    }
    return w;
  }
  ~WorkerProcess() {
    if (!reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  // Sends `signal` and reaps; the wait status.
  int SignalAndReap(int signal) {
    kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    return status;
  }

 private:
  explicit WorkerProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  int port_ = 0;
  bool reaped_ = false;
};

class WorkerPoolTest : public GrpcServerTest {
 protected:
  virtual std::vector<std::string> WorkerFlags() { return {}; }
  virtual int WorkerCount() { return 3; }
  void SetUp() override {
    for (int i = 0; i < WorkerCount(); ++i) {
      workers_.push_back(
          WorkerProcess::Start(scratch_.path() / absl::StrCat("worker", i), WorkerFlags()));
      ASSERT_NE(workers_.back(), nullptr);
    }
    GrpcServerTest::SetUp();
    sae_ = WriteSae("sae", engine::Architecture::kTopK);
    ASSERT_TRUE(Load("d", sae_.path).ok());
    reference_ = ReferenceEncoder(sae_.path);
  }
  void Customize(server::ServerOptions* options) override {
    for (const auto& w : workers_) {
      if (w != nullptr) options->workers.push_back(w->address());
    }
    options->worker_health_interval = absl::Milliseconds(100);
    options->metrics_port = 0;
    CustomizePool(options);
  }
  virtual void CustomizePool(server::ServerOptions* /*options*/) {}
  std::vector<float> Rows(int64_t n, uint64_t seed) {
    std::vector<float> x(n * kDIn);
    uint64_t s = seed * 2654435761u + 1;
    for (float& v : x) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      v = static_cast<float>(static_cast<int64_t>(s >> 40) % 2001 - 1000) / 500.0f;
    }
    return x;
  }
  // Ingest requests of `per_request` documents each, for corpus "c" of "d".
  static std::vector<v1::IngestRequest> IngestRequests(const std::vector<TestDoc>& docs,
                                                       size_t per_request) {
    std::vector<v1::IngestRequest> requests;
    for (size_t i = 0; i < docs.size(); i += per_request) {
      const size_t end = std::min(docs.size(), i + per_request);
      requests.push_back(
          MakeIngestRequest(i == 0 ? "d" : "", "c", {docs.begin() + i, docs.begin() + end}));
    }
    return requests;
  }
  // EXPECTs every feature's stored statistics (token total, count, max) to
  // equal a recomputation from the stored codes; returns those codes by id.
  std::map<uint64_t, engine::SparseCodes> ExpectStatsMatchStoredCodes(
      const std::vector<TestDoc>& docs) {
    std::vector<uint64_t> ids;
    int64_t tokens = 0;
    for (const TestDoc& d : docs) {
      ids.push_back(d.id);
      tokens += static_cast<int64_t>(d.tokens.size());
    }
    std::map<uint64_t, engine::SparseCodes> stored;
    std::map<uint32_t, RecomputedFeature> truth = Recompute(*stub_, "d", "c", ids, &stored);
    for (uint32_t f = 0; f < kDSae; ++f) {
      v1::GetFeatureRequest get;
      get.set_dictionary_id("d");
      get.set_feature(f);
      get.set_skip_family(true);
      v1::GetFeatureResponse got;
      const grpc::Status s = stub_->GetFeature(Ctx().get(), get, &got);
      EXPECT_TRUE(s.ok()) << "feature " << f << ": " << s.error_message();
      EXPECT_EQ(got.stats().total_tokens(), tokens);
      EXPECT_EQ(got.stats().count(), truth[f].count)
          << "feature " << f << ": nothing lost or doubled";
      if (truth[f].count > 0) {
        EXPECT_EQ(got.stats().max(), truth[f].max) << "feature " << f;
      }
    }
    return stored;
  }
  // What the pool knows of workers_[worker] (ADD_FAILURE when it is not in the pool).
  server::WorkerStatus StatusOf(size_t worker) {
    const std::string address = workers_[worker]->address();
    for (const server::WorkerStatus& w : server_->workers()->Workers()) {
      if (w.address == address) return w;
    }
    ADD_FAILURE() << "no worker " << address << " in the pool";
    return {};
  }
  // Batches answered by any worker so far.
  int64_t BatchesOkOnAllWorkers() {
    int64_t ok = 0;
    for (size_t w = 0; w < workers_.size(); ++w) ok += StatusOf(w).batches_ok;
    return ok;
  }

  std::vector<std::unique_ptr<WorkerProcess>> workers_;
  WrittenSae sae_;
  std::shared_ptr<const engine::Encoder> reference_;
};

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_INTEGRATION_WORKER_POOL_FIXTURE_H_
