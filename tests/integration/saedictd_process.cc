#include "tests/integration/saedictd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace saedict::testing {
namespace {

// fork + exec rather than posix_spawn so the child can ask to be killed when
// the test process dies (PR_SET_PDEATHSIG): a crashed test leaks no server.
// stderr_fd >= 0: the child's stderr goes there.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& args, int stderr_fd = -1) {
  std::vector<char*> argv;
  const std::string binary = SaedictdBinary().string();
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (stderr_fd >= 0 && dup2(stderr_fd, STDERR_FILENO) < 0) _exit(127);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// waitpid with a timeout; nullopt when the child is still running.
std::optional<int> WaitFor(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return std::nullopt;
    if (absl::Now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
}

}  // namespace

std::filesystem::path SaedictdBinary() { return SAEDICTD_PATH; }

absl::StatusOr<std::unique_ptr<SaedictdProcess>> SaedictdProcess::Start(const Options& options) {
  std::error_code ec;
  std::filesystem::remove(options.port_file, ec);
  std::vector<std::string> args = {
      "--port=0",
      "--listen_address=127.0.0.1",
      "--port_file=" + options.port_file.string(),
      "--metrics_port=0",  // tests run in parallel: never the fixed default ports
      "--http_port=0",
      "--data_dir=" + options.data_dir.string(),
      "--dictionary_root=" + options.dictionary_root.string(),
  };
  args.insert(args.end(), options.extra_flags.begin(), options.extra_flags.end());
  int stderr_fd = -1;
  if (!options.stderr_file.empty()) {
    stderr_fd = open(options.stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (stderr_fd < 0) {
      return absl::InternalError(
          absl::StrCat("open ", options.stderr_file.string(), ": ", strerror(errno)));
    }
  }
  absl::StatusOr<pid_t> pid = Spawn(args, stderr_fd);
  if (stderr_fd >= 0) close(stderr_fd);
  if (!pid.ok()) return pid.status();
  const absl::Time deadline = absl::Now() + options.start_timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (waitpid(*pid, &status, WNOHANG) == *pid) {
      return absl::InternalError(absl::StrCat("saedictd exited before serving: wait status ",
                                              status, WIFEXITED(status) ? " exit code " : "",
                                              WIFEXITED(status) ? WEXITSTATUS(status) : -1));
    }
    std::ifstream in(options.port_file);
    int port = 0;
    if (in >> port && port > 0) {
      return std::unique_ptr<SaedictdProcess>(new SaedictdProcess(*pid, port));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  KillAndReap(*pid);
  return absl::DeadlineExceededError(absl::StrCat("no port file ", options.port_file.string(),
                                                  " after ",
                                                  absl::FormatDuration(options.start_timeout)));
}

SaedictdProcess::~SaedictdProcess() {
  if (!reaped_) KillAndReap(pid_);
}

std::string SaedictdProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::shared_ptr<grpc::Channel> SaedictdProcess::Connect() const {
  auto channel = grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
  channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return channel;
}

std::optional<int> SaedictdProcess::SignalAndWait(int signal, absl::Duration timeout) {
  if (reaped_) return std::nullopt;
  kill(pid_, signal);
  std::optional<int> status = WaitFor(pid_, timeout);
  if (!status) KillAndReap(pid_);
  reaped_ = true;
  return status;
}

std::optional<int> RunSaedictd(const std::vector<std::string>& args, absl::Duration timeout) {
  // Before `args`: they may override them.
  std::vector<std::string> all = {"--metrics_port=0", "--http_port=0"};
  all.insert(all.end(), args.begin(), args.end());
  absl::StatusOr<pid_t> pid = Spawn(all);
  if (!pid.ok()) return std::nullopt;
  std::optional<int> status = WaitFor(*pid, timeout);
  if (!status) KillAndReap(*pid);
  return status;
}

}  // namespace saedict::testing
