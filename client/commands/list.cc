// `saedict list`: the loaded dictionaries as a table (or JSON).
// Thread safety: see command.h.
#include "absl/strings/str_cat.h"
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

absl::Status RunList(CommandEnv& env) {
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  SAEDICT_ASSIGN_OR_RETURN(v1::ListDictionariesResponse resp, client->ListDictionaries({}));
  if (env.global().json) {
    env.out() << MessageToJson(resp) << "\n";
    return absl::OkStatus();
  }
  std::vector<std::vector<std::string>> rows;
  for (const v1::DictionaryInfo& d : resp.dictionaries()) {
    rows.push_back({d.id(), d.model_name(), d.hook_name(), ArchitectureName(d.architecture()),
                    absl::StrCat(d.d_in()), absl::StrCat(d.d_sae()),
                    d.k() > 0 ? absl::StrCat(d.k()) : "-", SourceFormatName(d.source_format())});
  }
  WriteTable(env.out(), {"ID", "MODEL", "HOOK", "ARCH", "D_IN", "D_SAE", "K", "FORMAT"}, rows);
  return absl::OkStatus();
}

}  // namespace

const Command& ListCommand() {
  static const Command* const kCommand = new Command{
      .name = "list",
      .positional = {},
      .summary = "list the loaded dictionaries",
      .details = "",
      .flags = {},
      .run = &RunList,
  };
  return *kCommand;
}

}  // namespace saedict::client
