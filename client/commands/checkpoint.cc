// `saedict checkpoint NAME`: a consistent server-side backup (RocksDB
// checkpoint plus dictionary weights) under <data_dir>/backups/NAME.
// Thread safety: see command.h.
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

absl::Status RunCheckpoint(CommandEnv& env) {
  const std::string& name = env.positional(0);
  SAEDICT_RETURN_IF_ERROR(CheckName("NAME", name));
  v1::CreateCheckpointRequest req;
  req.set_name(name);
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  SAEDICT_ASSIGN_OR_RETURN(const v1::CreateCheckpointResponse resp, client->CreateCheckpoint(req));
  if (env.global().json) {
    env.out() << MessageToJson(resp) << "\n";
  } else {
    env.out() << "checkpoint " << name << " written to " << resp.path() << " on the server ("
              << FormatBytes(resp.bytes()) << ")\n";
  }
  return absl::OkStatus();
}

}  // namespace

const Command& CheckpointCommand() {
  static const Command* const kCommand = new Command{
      .name = "checkpoint",
      .positional = {"NAME"},
      .summary = "write a consistent backup of the server's data (admin)",
      .details =
          "The server writes a RocksDB checkpoint and the dictionary weights to\n"
          "<data_dir>/backups/NAME on its own disk; start saedictd with --data_dir set to\n"
          "that folder to restore it. NAME: letters, digits, '.', '_', '-' (up to 128).",
      .flags = {},
      .run = &RunCheckpoint,
  };
  return *kCommand;
}

}  // namespace saedict::client
