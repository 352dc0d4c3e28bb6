// What saedictd and saedict-worker do alike as processes: signals turned
// into bytes on a pipe (a handler may do little; a watcher thread reads the
// pipe and drains), and port files written atomically for whoever started
// the process with port 0.
//
// Thread safety: InstallSignalPipe once, from main, before threads read it;
// NextSignal from one watcher thread.
#ifndef SAEDICT_SERVER_PROCESS_SIGNALS_H_
#define SAEDICT_SERVER_PROCESS_SIGNALS_H_

#include <initializer_list>
#include <string>

#include "absl/status/status.h"

namespace saedict::server {

// Routes `signals` to the pipe. INTERNAL when the pipe cannot be made.
absl::Status InstallSignalPipe(std::initializer_list<int> signals);
// Blocks until one of them arrives; returns its number.
int NextSignal();

// Writes `port` to `path` (temp file + rename); nothing when path is empty.
void WritePortFile(const std::string& path, int port);

}  // namespace saedict::server

#endif  // SAEDICT_SERVER_PROCESS_SIGNALS_H_
