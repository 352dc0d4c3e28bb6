// `saedict new-token ROLE NAME`: a fresh random bearer token and the line of
// saedictd's --auth_tokens_file that grants it ROLE (the file keeps only the
// token's SHA-256). Runs locally: no server is contacted.
// Thread safety: see command.h.
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "client/commands/command.h"
#include "util/sha256.h"

namespace saedict::client {
namespace {

absl::Status RunNewToken(CommandEnv& env) {
  const std::string& role = env.positional(0);
  const std::string& name = env.positional(1);
  if (role != "read" && role != "write" && role != "admin") {
    return InputError(absl::StrCat("ROLE '", role, "' is not read, write or admin"));
  }
  if (name.empty() || name.find_first_of(" \t#\r\n") != std::string::npos) {
    return InputError(absl::StrCat("NAME '", name, "' must be non-empty without spaces or '#'"));
  }
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  std::string secret(32, '\0');
  if (!urandom.read(secret.data(), static_cast<std::streamsize>(secret.size()))) {
    return absl::UnavailableError("cannot read 32 random bytes from /dev/urandom");
  }
  const std::string token = absl::StrCat("sdt_", absl::WebSafeBase64Escape(secret));
  const std::string line = absl::StrCat(role, " ", Sha256Hex(token), " ", name);
  if (env.global().json) {
    env.out() << "{\"token\": \"" << token << "\", \"role\": \"" << role << "\", \"name\": \""
              << name << "\", \"tokens_file_line\": \"" << line << "\"}\n";
    return absl::OkStatus();
  }
  env.out() << "token (give it to the client; it is not stored anywhere):\n  " << token
            << "\nline for saedictd's --auth_tokens_file (then send saedictd SIGHUP):\n  " << line
            << "\n";
  return absl::OkStatus();
}

}  // namespace

const Command& NewTokenCommand() {
  static const Command* const kCommand = new Command{
      .name = "new-token",
      .positional = {"ROLE", "NAME"},
      .summary = "make a bearer token and its --auth_tokens_file line (no server needed)",
      .details =
          "ROLE is read (queries, encode), write (also load and ingest) or admin (also\n"
          "delete and checkpoint). Clients send the token with --token or SAEDICT_TOKEN.",
      .flags = {},
      .run = &RunNewToken,
  };
  return *kCommand;
}

}  // namespace saedict::client
