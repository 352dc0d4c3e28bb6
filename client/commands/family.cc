// `saedict family DICT IDX`: the feature family of one feature (FeatureFamily):
// its parent chain up to the root, its children and siblings, with the
// scores and the reason of every link, and when and over what the families
// were computed. Thread safety: see command.h.
#include <optional>
#include <string>
#include <vector>

#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/family_output.h"
#include "client/commands/output.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

absl::Status RunFamily(CommandEnv& env) {
  const ParsedArgs& args = env.args();
  const std::string& dictionary = env.positional(0);
  SAEDICT_ASSIGN_OR_RETURN(const int64_t feature,
                           ParseIntArg("IDX", env.positional(1), 0, UINT32_MAX));
  v1::FeatureFamilyRequest req;
  req.set_dictionary_id(dictionary);
  req.set_feature(static_cast<uint32_t>(feature));
  SAEDICT_ASSIGN_OR_RETURN(*req.mutable_options(), ParseFamilyOptions(args));
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  SAEDICT_ASSIGN_OR_RETURN(const v1::FeatureFamilyResponse resp,
                           (RetryWhileNotReady<v1::FeatureFamilyResponse>(
                               WaitFlagValue(args), [&] { return client->FeatureFamily(req); },
                               [&] {  // stop waiting when the neighbours of DICT failed
                                 const std::optional<v1::IndexStatus> s =
                                     IndexStatusOf(*client, dictionary);
                                 return !s || s->neighbours_state() == v1::INDEX_STATE_FAILED;
                               })));
  if (env.global().json) {
    env.out() << MessageToJson(resp) << "\n";
  } else {
    WriteFamilyTree(env.out(), resp);
  }
  return absl::OkStatus();
}

}  // namespace

const Command& FamilyCommand() {
  static const Command* const kCommand = new Command{
      .name = "family",
      .positional = {"DICT", "IDX"},
      .summary = "show a feature's family: parents up to the root, children, siblings",
      .details =
          "A child's decoder direction is close to its parent's (cosine >= --min_cosine)\n"
          "and it fires almost only where the parent fires (P(parent | child) >=\n"
          "--min_coverage over the tokens stored for DICT, on at least --min_count\n"
          "tokens). The tree runs from the family's root down to IDX, its children and\n"
          "its siblings; each row has the tokens the feature fires on (COUNT) and the\n"
          "scores of the link from its parent: COVERAGE, decoder COSINE, JACCARD of\n"
          "their tokens and PHI (correlation). Then why each link was made, and when\n"
          "and over how many stored tokens the families were computed (recomputed\n"
          "whenever the stored corpus changes). The neighbours must be ready ('saedict\n"
          "info DICT'); --wait retries that long until they are. --json prints the\n"
          "FeatureFamilyResponse as JSON.",
      .flags =
          [] {
            std::vector<FlagSpec> flags = FamilyOptionFlags();
            flags.push_back(WaitFlag());
            return flags;
          }(),
      .run = &RunFamily,
  };
  return *kCommand;
}

}  // namespace saedict::client
