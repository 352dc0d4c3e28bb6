// `saedict info ID`: everything the server knows about one dictionary.
// Thread safety: see command.h.
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

absl::Status RunInfo(CommandEnv& env) {
  v1::GetDictionaryRequest req;
  req.set_id(env.positional(0));
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  SAEDICT_ASSIGN_OR_RETURN(v1::GetDictionaryResponse resp, client->GetDictionary(req));
  if (env.global().json) {
    env.out() << MessageToJson(resp.dictionary()) << "\n";
  } else {
    WriteKeyValues(env.out(), DescribeDictionary(resp.dictionary()));
  }
  return absl::OkStatus();
}

}  // namespace

const Command& InfoCommand() {
  static const Command* const kCommand = new Command{
      .name = "info",
      .positional = {"ID"},
      .summary = "show one dictionary's configuration",
      .details = "",
      .flags = {},
      .run = &RunInfo,
  };
  return *kCommand;
}

}  // namespace saedict::client
