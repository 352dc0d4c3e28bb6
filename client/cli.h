// RunCli: the `saedict` command line as a library function, so that tests
// drive it in-process and cli_main.cc is a two-line wrapper.
//
//   saedict [--server=HOST:PORT] [--json] [--timeout=DURATION] COMMAND ARGS...
//
// Exit codes: 0 success (and --help), 1 the command failed (stderr gets
// `error: <CODE>: <message>`, CODE as in absl::StatusCodeToString), 2 usage
// errors (unknown command or flag, wrong argument count; usage on stderr) and
// bad input a command finds before it sends anything (a flag value out of
// range, an inconsistent input file; stderr gets `error: <CODE>: <message>`).
//
// Thread safety: RunCli keeps no global state; concurrent calls are safe as
// long as they do not share streams.
#ifndef SAEDICT_CLIENT_CLI_H_
#define SAEDICT_CLIENT_CLI_H_

#include <ostream>
#include <string>
#include <vector>

namespace saedict::client {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// `args` are the arguments after the program name (argv[1..argc)).
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The top-level usage text (`saedict --help`), and one command's.
std::string TopLevelUsage();
// REQUIRES: `command` names a command in AllCommands().
std::string CommandUsage(const std::string& command);

}  // namespace saedict::client

#endif  // SAEDICT_CLIENT_CLI_H_
