#include "server/process_signals.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace saedict::server {
namespace {

int g_signal_pipe[2] = {-1, -1};

void OnSignal(int signal) {
  const unsigned char byte = static_cast<unsigned char>(signal);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &byte, 1);  // async-signal-safe
}

}  // namespace

absl::Status InstallSignalPipe(std::initializer_list<int> signals) {
  if (pipe(g_signal_pipe) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  for (int s : signals) sigaction(s, &action, nullptr);
  return absl::OkStatus();
}

int NextSignal() {
  for (;;) {
    unsigned char signal = 0;
    const ssize_t n = read(g_signal_pipe[0], &signal, 1);
    if (n == 1) return signal;
    if (n < 0 && errno != EINTR) return 0;
  }
}

void WritePortFile(const std::string& path, int port) {
  if (path.empty()) return;
  std::ofstream(path + ".tmp") << port << "\n";
  std::rename((path + ".tmp").c_str(), path.c_str());
}

}  // namespace saedict::server
