// `saedict info ID`: everything the server knows about one dictionary,
// including the state of its similarity index and neighbours.
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
  const v1::DictionaryInfo& d = resp.dictionary();
  if (env.global().json) {
    env.out() << MessageToJson(d) << "\n";
  } else {
    std::vector<std::pair<std::string, std::string>> kv = DescribeDictionary(d);
    for (auto& pair : DescribeIndexStatus(d.index(), d.d_sae())) kv.push_back(std::move(pair));
    WriteKeyValues(env.out(), kv);
  }
  return absl::OkStatus();
}

}  // namespace

const Command& InfoCommand() {
  static const Command* const kCommand = new Command{
      .name = "info",
      .positional = {"ID"},
      .summary = "show one dictionary's configuration and similarity index state",
      .details =
          "The index lines: the decoder-direction index (state, FAISS factory, exact or\n"
          "approximate; progress while building, the error when it failed), the\n"
          "precomputed neighbours of every feature ('saedict feature', 'saedict family')\n"
          "and the encoder-direction index ('saedict similar --encoder'). --json prints\n"
          "the DictionaryInfo, index included.",
      .flags = {},
      .run = &RunInfo,
  };
  return *kCommand;
}

}  // namespace saedict::client
