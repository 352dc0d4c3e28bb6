// `saedict delete ID`: unload a dictionary and drop its stored copy.
// Thread safety: see command.h.
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

absl::Status RunDelete(CommandEnv& env) {
  v1::DeleteDictionaryRequest req;
  req.set_id(env.positional(0));
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  SAEDICT_RETURN_IF_ERROR(client->DeleteDictionary(req).status());
  if (env.global().json) {
    env.out() << "{\"deleted\":" << JsonQuote(req.id()) << "}\n";
  } else {
    env.out() << "deleted " << req.id() << "\n";
  }
  return absl::OkStatus();
}

}  // namespace

const Command& DeleteCommand() {
  static const Command* const kCommand = new Command{
      .name = "delete",
      .positional = {"ID"},
      .summary = "unload a dictionary",
      .details = "",
      .flags = {},
      .run = &RunDelete,
  };
  return *kCommand;
}

}  // namespace saedict::client
