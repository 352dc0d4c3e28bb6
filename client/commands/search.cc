// `saedict search WORDS`: explanations ranked by BM25 against WORDS, with
// the matched words marked (SearchExplanations).
// Thread safety: see command.h.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

absl::Status RunSearch(CommandEnv& env) {
  const ParsedArgs& args = env.args();
  const int64_t top = args.GetInt("top");
  SAEDICT_RETURN_IF_ERROR(CheckRange("--top", top, 1, 1000));
  v1::SearchExplanationsRequest req;
  req.set_query(env.positional(0));
  req.set_top_n(static_cast<int32_t>(top));
  req.set_source(args.GetString("source"));
  if (args.IsSet("dictionary")) {
    SAEDICT_ASSIGN_OR_RETURN(std::vector<std::string> ids,
                             ParseIdList("--dictionary", args.GetString("dictionary")));
    for (std::string& id : ids) req.add_dictionary_ids(std::move(id));
  }
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  SAEDICT_ASSIGN_OR_RETURN(const v1::SearchExplanationsResponse resp,
                           client->SearchExplanations(req));
  if (env.global().json) {
    env.out() << MessageToJson(resp) << "\n";
    return absl::OkStatus();
  }
  env.out() << resp.matching_explanations() << " explanation"
            << (resp.matching_explanations() == 1 ? "" : "s") << " match "
            << absl::StrJoin(resp.query_terms(), " ") << "\n";
  if (resp.hits_size() == 0) return absl::OkStatus();
  std::vector<std::vector<std::string>> rows;
  int rank = 0;
  for (const v1::ExplanationHit& h : resp.hits()) {
    rows.push_back({absl::StrCat(++rank), absl::StrFormat("%.3f", h.score()),
                    h.explanation().dictionary_id(), absl::StrCat(h.explanation().feature()),
                    h.explanation().source(), h.snippet()});
  }
  WriteTable(env.out(), {"RANK", "SCORE", "DICT", "FEATURE", "SOURCE", "EXPLANATION"}, rows);
  return absl::OkStatus();
}

}  // namespace

const Command& SearchCommand() {
  static const Command* const kCommand = new Command{
      .name = "search",
      .positional = {"WORDS"},
      .summary = "find features by the words of their explanations",
      .details =
          "Ranks every explanation containing at least one of WORDS by BM25 (k1 1.2,\n"
          "b 0.75), best first; matched words are shown [[like this]]. Words are\n"
          "runs of letters and digits, compared case-insensitively for ASCII; no\n"
          "stemming. --dictionary limits the search to some dictionaries, --source\n"
          "to one source (human, delphi, a Neuronpedia typeName). --json prints the\n"
          "SearchExplanationsResponse as JSON.",
      .flags = {ValueFlag("dictionary", FlagKind::kString, "", "D1,D2",
                          "only these dictionaries (comma-separated)"),
                ValueFlag("source", FlagKind::kString, "", "NAME", "only this source"),
                ValueFlag("top", FlagKind::kInt, "20", "N", "results (1..1000)")},
      .run = &RunSearch,
  };
  return *kCommand;
}

}  // namespace saedict::client
