// SaedictdProcess: the real `saedictd` binary as a child process, for
// end-to-end tests. Start() spawns it with --port=0, --metrics_port=0 (extra
// flags may override them) and --port_file and waits
// until the port file appears; the destructor always kills (SIGKILL) and reaps
// a child still running, so a failing test never leaks a server.
//
// Thread safety: one object per test thread.
#ifndef SAEDICT_TESTS_INTEGRATION_SAEDICTD_PROCESS_H_
#define SAEDICT_TESTS_INTEGRATION_SAEDICTD_PROCESS_H_

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace saedict::testing {

// The saedictd the build produced (SAEDICTD_PATH compile definition).
std::filesystem::path SaedictdBinary();

class SaedictdProcess {
 public:
  struct Options {
    std::filesystem::path data_dir;
    std::filesystem::path dictionary_root;
    std::filesystem::path port_file;  // removed before the start
    std::vector<std::string> extra_flags;
    std::filesystem::path stderr_file;  // empty: the child shares the test's stderr
    absl::Duration start_timeout = absl::Seconds(60);
  };

  // DEADLINE_EXCEEDED when no port file appears in time, INTERNAL (with the
  // exit status) when the child exits first.
  static absl::StatusOr<std::unique_ptr<SaedictdProcess>> Start(const Options& options);
  ~SaedictdProcess();

  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  std::string address() const;
  // A channel to 127.0.0.1:port() that is connected (or fails) within 30 s.
  std::shared_ptr<grpc::Channel> Connect() const;

  // Sends `signal` and waits up to `timeout` for the exit. Returns the
  // wait status (use WIFEXITED...), or nullopt on timeout (the child is then
  // killed and reaped).
  std::optional<int> SignalAndWait(int signal, absl::Duration timeout);

 private:
  SaedictdProcess(pid_t pid, int port) : pid_(pid), port_(port) {}
  pid_t pid_;
  int port_;
  bool reaped_ = false;
};

// Runs saedictd to completion with --metrics_port=0 and `args` (no port file wait); the wait
// status, or nullopt when it ran past `timeout` (then killed and reaped).
std::optional<int> RunSaedictd(const std::vector<std::string>& args, absl::Duration timeout);

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_INTEGRATION_SAEDICTD_PROCESS_H_
