// `saedict explain DICT IDX [TEXT]`: the explanations of a feature; with
// TEXT adds one (or, with --replace ID, rewrites that one); --delete ID
// removes one (SetExplanation, ListExplanations, DeleteExplanation).
// Thread safety: see command.h.
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

void WriteExplanationTable(std::ostream& out,
                           const google::protobuf::RepeatedPtrField<v1::Explanation>& all) {
  std::vector<std::vector<std::string>> rows;
  for (const v1::Explanation& e : all) {
    rows.push_back({e.id(), e.source(), e.has_score() ? absl::StrFormat("%.3g", e.score()) : "-",
                    e.explainer_model().empty() ? "-" : e.explainer_model(), e.text()});
  }
  WriteTable(out, {"ID", "SOURCE", "SCORE", "MODEL", "TEXT"}, rows);
}

absl::Status RunExplain(CommandEnv& env) {
  const ParsedArgs& args = env.args();
  const std::string& dictionary = env.positional(0);
  SAEDICT_ASSIGN_OR_RETURN(const int64_t feature,
                           ParseIntArg("IDX", env.positional(1), 0, UINT32_MAX - 1));
  const bool has_text = env.num_positional() > 2;
  const bool del = args.IsSet("delete");
  if (del && (has_text || args.IsSet("replace"))) {
    return InputError("--delete ID takes no TEXT and no --replace");
  }
  if (args.IsSet("replace") && !has_text) return InputError("--replace ID needs the new TEXT");
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  if (del) {
    v1::DeleteExplanationRequest req;
    req.set_dictionary_id(dictionary);
    req.set_feature(static_cast<uint32_t>(feature));
    req.set_explanation_id(args.GetString("delete"));
    SAEDICT_RETURN_IF_ERROR(client->DeleteExplanation(req).status());
    if (env.global().json) {
      env.out() << "{\"deleted\":" << JsonQuote(req.explanation_id()) << "}\n";
    } else {
      env.out() << "deleted explanation " << req.explanation_id() << " of feature " << feature
                << " of " << dictionary << "\n";
    }
    return absl::OkStatus();
  }
  if (has_text) {
    v1::SetExplanationRequest req;
    req.set_dictionary_id(dictionary);
    req.set_feature(static_cast<uint32_t>(feature));
    req.set_text(env.positional(2));
    req.set_source(args.GetString("source"));
    req.set_author(args.GetString("author"));
    req.set_explainer_model(args.GetString("model"));
    req.set_explanation_id(args.GetString("replace"));
    if (args.IsSet("score")) {
      const double score = args.GetDouble("score");
      if (!std::isfinite(score)) return InputError("--score must be a finite number");
      req.set_score(score);
    }
    SAEDICT_ASSIGN_OR_RETURN(const v1::SetExplanationResponse resp, client->SetExplanation(req));
    if (env.global().json) {
      env.out() << MessageToJson(resp) << "\n";
    } else {
      env.out() << (req.explanation_id().empty() ? "added" : "replaced") << " explanation "
                << resp.explanation().id() << " of feature " << feature << " of " << dictionary
                << "\n";
    }
    return absl::OkStatus();
  }
  v1::ListExplanationsRequest req;
  req.set_dictionary_id(dictionary);
  req.set_feature(static_cast<uint32_t>(feature));
  SAEDICT_ASSIGN_OR_RETURN(const v1::ListExplanationsResponse resp, client->ListExplanations(req));
  if (env.global().json) {
    env.out() << MessageToJson(resp) << "\n";
  } else if (resp.explanations_size() == 0) {
    env.out() << "feature " << feature << " of " << dictionary << " has no explanations\n";
  } else {
    WriteExplanationTable(env.out(), resp.explanations());
  }
  return absl::OkStatus();
}

}  // namespace

const Command& ExplainCommand() {
  static const Command* const kCommand = new Command{
      .name = "explain",
      .positional = {"DICT", "IDX", "TEXT"},
      .optional_positional = 1,
      .summary = "list, add, replace or delete the explanations of a feature",
      .details =
          "Without TEXT: the feature's explanations (scored ones first, best first).\n"
          "With TEXT: adds it (the same text from the same source, author and model\n"
          "again updates that explanation instead of adding a copy), or with\n"
          "--replace ID rewrites explanation ID. --delete ID removes one. Explanations\n"
          "are searchable at once ('saedict search WORDS') and shown by 'saedict\n"
          "feature'. --json prints the response as JSON.",
      .flags = {ValueFlag("source", FlagKind::kString, "human", "NAME",
                          "who or what wrote it: human, a pipeline name"),
                ValueFlag("author", FlagKind::kString, "", "NAME", "the author"),
                ValueFlag("model", FlagKind::kString, "", "NAME",
                          "the model that wrote it (auto-interpretation)"),
                ValueFlag("score", FlagKind::kDouble, "", "X", "the pipeline's score"),
                ValueFlag("replace", FlagKind::kString, "", "ID", "rewrite this explanation"),
                ValueFlag("delete", FlagKind::kString, "", "ID", "delete this explanation")},
      .run = &RunExplain,
  };
  return *kCommand;
}

}  // namespace saedict::client
