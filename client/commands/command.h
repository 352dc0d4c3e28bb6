// The saedict CLI's subcommands: each is a Command (name, synopsis, flags,
// run function) defined in its own file under client/commands/ and listed by
// AllCommands() (commands/registry.cc). RunCli (client/cli.h) parses the
// arguments against the command's flags and calls run() with a CommandEnv.
//
// Thread safety: Commands are immutable singletons; a CommandEnv belongs to
// one RunCli invocation and is not shared between threads.
#ifndef SAEDICT_CLIENT_COMMANDS_COMMAND_H_
#define SAEDICT_CLIENT_COMMANDS_COMMAND_H_

#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/cli_args.h"
#include "client/saedict_client.h"

namespace saedict::client {

// Flags every command accepts (before or after the command name).
struct GlobalOptions {
  std::string server = "localhost:50051";
  bool json = false;                           // machine-readable output on stdout
  absl::Duration timeout = absl::Seconds(60);  // deadline of each RPC
  std::string token;                           // --token, else $SAEDICT_TOKEN
  bool tls = false;                            // --tls (implied by the other tls flags)
  std::string tls_ca, tls_cert, tls_key;       // PEM file paths
  std::string tls_server_name;
};

// What a command sees when it runs.
class CommandEnv {
 public:
  CommandEnv(const ParsedArgs& args, GlobalOptions global, std::ostream& out, std::ostream& err)
      : args_(args), global_(std::move(global)), out_(out), err_(err) {}

  const ParsedArgs& args() const { return args_; }
  // The i-th positional argument after the command name.
  // REQUIRES: i < num_positional() (RunCli checks the count against
  // Command::positional and optional_positional).
  const std::string& positional(size_t i) const { return args_.positional()[i]; }
  size_t num_positional() const { return args_.positional().size(); }
  const GlobalOptions& global() const { return global_; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }

  // The client for --server, connected on first use.
  absl::StatusOr<Client*> client();

 private:
  const ParsedArgs& args_;
  const GlobalOptions global_;
  std::ostream& out_;
  std::ostream& err_;
  std::unique_ptr<Client> client_;
};

struct Command {
  std::string name;                     // "encode"
  std::vector<std::string> positional;  // names in the synopsis: {"ID", "INPUT.npy"}
  // How many of the last `positional` may be left out (shown as [NAME] in
  // the usage); the command sees how many were given (num_positional()).
  size_t optional_positional = 0;
  std::string summary;          // one line for `saedict --help`
  std::string details;          // more text for `saedict CMD --help`; may be empty
  std::vector<FlagSpec> flags;  // the command's own flags
  // Runs the command; a non-OK status is printed as `error: CODE: message`
  // and makes the process exit 1.
  absl::Status (*run)(CommandEnv& env) = nullptr;
  // A CI gate (compare): ThresholdMissed exits 1, every error exits 2.
  bool gate = false;
};

// Bad input found before anything was sent (a flag value out of range, an
// input file that is missing or inconsistent): RunCli prints it as any error
// (`error: CODE: message`) but exits kExitUsage (2) instead of 1.
// InputError(status) marks `status` (keeping its code and message; OK stays
// OK); InputError(message) is an INVALID_ARGUMENT one.
absl::Status InputError(absl::Status status);
absl::Status InputError(absl::string_view message);
bool IsInputError(const absl::Status& status);

// A gate's verdict "below the threshold" (not an error): RunCli prints
// `FAIL: message` and exits 1.
absl::Status ThresholdMissed(absl::string_view message);
bool IsThresholdMissed(const absl::Status& status);

// The command singletons, one per file in client/commands/.
const Command& LoadCommand();
const Command& ListCommand();
const Command& InfoCommand();
const Command& DeleteCommand();
const Command& EncodeCommand();
const Command& DecodeCommand();
const Command& IngestCommand();
const Command& DocCommand();
const Command& ExplainCommand();
const Command& UploadCommand();
const Command& ExportCommand();
const Command& SearchCommand();
const Command& ImportExplanationsCommand();
const Command& FeatureCommand();
const Command& CheckpointCommand();
const Command& NewTokenCommand();
const Command& SimilarCommand();
const Command& FamilyCommand();
const Command& FamiliesCommand();
const Command& CompareCommand();
const Command& EvalCommand();

// Every command in the order `saedict --help` lists them.
std::span<const Command* const> AllCommands();
// nullptr when there is no command of that name.
const Command* FindCommand(absl::string_view name);

}  // namespace saedict::client

#endif  // SAEDICT_CLIENT_COMMANDS_COMMAND_H_
