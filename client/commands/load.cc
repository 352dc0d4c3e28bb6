// `saedict load ID PATH`: LoadDictionary from a path under the server's
// dictionary root. Thread safety: see command.h.
#include "absl/strings/str_cat.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

absl::Status RunLoad(CommandEnv& env) {
  v1::LoadDictionaryRequest req;
  req.set_id(env.positional(0));
  req.set_path(env.positional(1));
  SAEDICT_ASSIGN_OR_RETURN(v1::SourceFormat format,
                           ParseSourceFormat(env.args().GetString("format")));
  req.set_format(format);
  req.set_replace(env.args().GetBool("replace"));
  SAEDICT_ASSIGN_OR_RETURN(std::optional<v1::ComputeMode> mode,
                           ComputeModeArg(env.args().GetString("default_compute_mode"), false));
  if (mode.has_value()) req.set_default_compute_mode(*mode);
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  SAEDICT_ASSIGN_OR_RETURN(v1::LoadDictionaryResponse resp, client->LoadDictionary(req));
  if (env.global().json) {
    env.out() << MessageToJson(resp.dictionary()) << "\n";
  } else {
    env.out() << "loaded " << resp.dictionary().id() << "\n";
    WriteKeyValues(env.out(), DescribeDictionary(resp.dictionary()));
  }
  return absl::OkStatus();
}

}  // namespace

const Command& LoadCommand() {
  static const Command* const kCommand = new Command{
      .name = "load",
      .positional = {"ID", "PATH"},
      .summary = "load a dictionary (SAELens, sparsify, Gemma Scope) from the server's disk",
      .details =
          "ID is the name to serve it under ([A-Za-z0-9._-], up to 128 characters).\n"
          "PATH is a folder or params.npz relative to the server's --dictionary_root.",
      .flags = {ValueFlag("format", FlagKind::kString, "auto", "FORMAT",
                          "auto | saelens | sparsify | gemma_scope | gemma_scope_2"),
                BoolFlag("replace", "replace a loaded dictionary with the same ID"),
                ValueFlag("default_compute_mode", FlagKind::kString, "", "MODE",
                          "compute mode of requests that name none: f32, fast_exact or bf16; "
                          "default: the server's --default_compute_mode")},
      .run = &RunLoad,
  };
  return *kCommand;
}

}  // namespace saedict::client
