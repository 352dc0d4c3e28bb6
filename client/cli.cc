// RunCli: global flags, command lookup, usage and exit codes; see cli.h.
#include "client/cli.h"

#include <algorithm>
#include <cstdlib>
#include <exception>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli_args.h"
#include "client/commands/command.h"

namespace saedict::client {
namespace {

const std::vector<FlagSpec>& GlobalFlags() {
  static const std::vector<FlagSpec>* const kFlags = new std::vector<FlagSpec>{
      ValueFlag("server", FlagKind::kString, "localhost:50051", "HOST:PORT", "the saedictd server"),
      BoolFlag("json", "print machine-readable JSON on stdout"),
      ValueFlag("timeout", FlagKind::kDuration, "60s", "DURATION",
                "deadline of each request: 30s, 500ms, 2m, ..."),
      ValueFlag("token", FlagKind::kString, "", "TOKEN",
                "bearer token of a server with auth (default: $SAEDICT_TOKEN; the environment "
                "keeps it out of `ps`)"),
      BoolFlag("tls", "connect with TLS, verified against the system's CA roots"),
      ValueFlag("tls_ca", FlagKind::kString, "", "FILE",
                "TLS, verified against this PEM CA bundle (implies --tls)"),
      ValueFlag("tls_cert", FlagKind::kString, "", "FILE",
                "PEM client certificate for mutual TLS (with --tls_key)"),
      ValueFlag("tls_key", FlagKind::kString, "", "FILE", "PEM private key of --tls_cert"),
      ValueFlag("tls_server_name", FlagKind::kString, "", "NAME",
                "the name the server's certificate must carry, when not the --server host"),
      BoolFlag("help", "show usage"),
  };
  return *kFlags;
}

std::vector<const FlagSpec*> Pointers(const std::vector<FlagSpec>& flags) {
  std::vector<const FlagSpec*> out;
  for (const FlagSpec& f : flags) out.push_back(&f);
  return out;
}

// Whether `command` declares a flag of this name itself (it then replaces
// the global one: compare and eval take `--json FILE`).
bool CommandOwnsFlag(const Command* command, absl::string_view name) {
  if (command == nullptr) return false;
  for (const FlagSpec& f : command->flags) {
    if (f.name == name) return true;
  }
  return false;
}

// The global flags plus `command`'s own (none when command is null); a
// command's flag replaces a global one of the same name.
std::vector<const FlagSpec*> AllSpecs(const Command* command) {
  std::vector<const FlagSpec*> specs;
  for (const FlagSpec& f : GlobalFlags()) {
    if (!CommandOwnsFlag(command, f.name)) specs.push_back(&f);
  }
  if (command != nullptr) {
    for (const FlagSpec& f : command->flags) specs.push_back(&f);
  }
  return specs;
}

// Index of the command name in `args`: the first token that is not a flag
// or the value of a global flag given as `--flag VALUE`; args.size() if none.
size_t FindCommandIndex(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") return i + 1;
    if (a.size() >= 2 && a[0] == '-') {
      for (const FlagSpec& f : GlobalFlags()) {
        if (f.kind != FlagKind::kBool && a == "--" + f.name) ++i;  // `--flag VALUE`
      }
      continue;
    }
    return i;
  }
  return args.size();
}

// " DICT [IDX]": the positional names, the optional ones in brackets.
std::string PositionalSynopsis(const Command& c) {
  std::string out;
  const size_t first_optional =
      c.positional.size() - std::min(c.positional.size(), c.optional_positional);
  for (size_t i = 0; i < c.positional.size(); ++i) {
    absl::StrAppend(&out, i < first_optional ? " " : " [", c.positional[i],
                    i < first_optional ? "" : "]");
  }
  return out;
}

int UsageError(std::ostream& err, absl::string_view message, const std::string& usage) {
  err << "error: " << message << "\n\n" << usage;
  return kExitUsage;
}

}  // namespace

std::string TopLevelUsage() {
  std::string out =
      "usage: saedict [--server=HOST:PORT] [--json] [--timeout=DURATION] [--token=TOKEN]\n"
      "               [--tls_ca=FILE [--tls_cert=FILE --tls_key=FILE]] COMMAND [ARGS...]\n\n"
      "Client for the saedictd sparse-autoencoder dictionary server.\n\ncommands:\n";
  size_t width = 0;
  for (const Command* c : AllCommands()) width = std::max(width, c->name.size());
  for (const Command* c : AllCommands()) {
    absl::StrAppendFormat(&out, "  %-*s  %s\n", static_cast<int>(width), c->name, c->summary);
  }
  absl::StrAppend(&out, "\nglobal flags (before or after COMMAND):\n",
                  FormatFlagHelp(Pointers(GlobalFlags())),
                  "\nRun 'saedict COMMAND --help' for a command's arguments and flags.\n");
  return out;
}

std::string CommandUsage(const std::string& name) {
  const Command* c = FindCommand(name);
  if (c == nullptr) return TopLevelUsage();
  std::string out = absl::StrCat("usage: saedict ", c->name);
  absl::StrAppend(&out, PositionalSynopsis(*c));
  if (!c->flags.empty()) absl::StrAppend(&out, " [flags]");
  absl::StrAppend(&out, "\n\n", c->summary, "\n");
  if (!c->details.empty()) absl::StrAppend(&out, "\n", c->details, "\n");
  if (!c->flags.empty()) {
    std::vector<const FlagSpec*> own;
    for (const FlagSpec& f : c->flags) own.push_back(&f);
    absl::StrAppend(&out, "\nflags:\n", FormatFlagHelp(own));
  }
  absl::StrAppend(&out, "\nglobal flags:\n", FormatFlagHelp(Pointers(GlobalFlags())));
  return out;
}

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const size_t index = FindCommandIndex(args);
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i != index) rest.push_back(args[i]);
  }
  const Command* command = nullptr;
  if (index < args.size()) {
    const std::string& name = args[index];
    if (name == "help") {  // `saedict help [COMMAND]`
      if (rest.empty()) {
        out << TopLevelUsage();
        return kExitOk;
      }
      if (rest.size() == 1 && FindCommand(rest[0]) != nullptr) {
        out << CommandUsage(rest[0]);
        return kExitOk;
      }
      return UsageError(err, absl::StrCat("no help for '", absl::StrJoin(rest, " "), "'"),
                        TopLevelUsage());
    }
    command = FindCommand(name);
    if (command == nullptr) {
      return UsageError(err, absl::StrCat("unknown command '", name, "'"), TopLevelUsage());
    }
  }
  const std::string usage = command != nullptr ? CommandUsage(command->name) : TopLevelUsage();
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(rest, AllSpecs(command));
  if (!parsed.ok()) return UsageError(err, parsed.status().message(), usage);
  if (parsed->GetBool("help")) {
    out << usage;
    return kExitOk;
  }
  if (command == nullptr) return UsageError(err, "no command given", usage);
  const size_t most = command->positional.size();
  const size_t least = most - std::min(most, command->optional_positional);
  if (const size_t got = parsed->positional().size(); got < least || got > most) {
    const std::string count = least == most       ? absl::StrCat(most)
                              : least + 1 == most ? absl::StrCat(least, " or ", most)
                                                  : absl::StrCat(least, " to ", most);
    const std::string takes =
        most == 0 ? "no arguments"
                  : absl::StrFormat("%s argument%s (%s)", count, most == 1 ? "" : "s",
                                    absl::StripAsciiWhitespace(PositionalSynopsis(*command)));
    return UsageError(
        err,
        absl::StrFormat("%s takes %s, got %d", command->name, takes, parsed->positional().size()),
        usage);
  }

  GlobalOptions global;
  global.server = parsed->GetString("server");
  global.json = !CommandOwnsFlag(command, "json") && parsed->GetBool("json");
  global.timeout = parsed->GetDuration("timeout");
  global.token = parsed->GetString("token");
  if (global.token.empty()) {
    if (const char* env = std::getenv("SAEDICT_TOKEN"); env != nullptr) global.token = env;
  }
  global.tls = parsed->GetBool("tls");
  global.tls_ca = parsed->GetString("tls_ca");
  global.tls_cert = parsed->GetString("tls_cert");
  global.tls_key = parsed->GetString("tls_key");
  global.tls_server_name = parsed->GetString("tls_server_name");
  CommandEnv env(*parsed, global, out, err);
  absl::Status status;
  try {
    status = command->run(env);
  } catch (const std::exception& e) {  // e.g. std::bad_alloc on a huge input
    status = absl::InternalError(absl::StrCat("unexpected exception: ", e.what()));
  }
  if (!status.ok()) {
    if (IsThresholdMissed(status)) {
      err << "FAIL: " << status.message() << "\n";
      return kExitFailure;
    }
    err << "error: " << absl::StatusCodeToString(status.code()) << ": " << status.message();
    if (status.code() == absl::StatusCode::kUnavailable) err << " (server " << global.server << ")";
    err << "\n";
    // A CI gate keeps exit 1 for "below the threshold": its errors exit 2.
    return IsInputError(status) || command->gate ? kExitUsage : kExitFailure;
  }
  return kExitOk;
}

}  // namespace saedict::client
