// `saedict doc CORPUS DOC_ID`: a stored document's text (GetDocument), and
// with --dictionary the features most active in it or at one position
// (DocumentFeatures). Thread safety: see command.h.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "client/commands/text_render.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

// Token `p` of `doc` for a table cell: its visible string, or its id.
std::string TokenCell(const v1::Document& doc, int64_t p) {
  if (p < 0 || p >= doc.token_ids_size()) return "";
  if (p < doc.token_strings_size() && !doc.token_strings(p).empty()) {
    return JsonQuote(VisibleToken(doc.token_strings(p)));
  }
  return absl::StrCat("<", doc.token_ids(p), ">");
}

absl::Status RunDoc(CommandEnv& env) {
  const ParsedArgs& args = env.args();
  const std::string& corpus = env.positional(0);
  SAEDICT_ASSIGN_OR_RETURN(const uint64_t doc_id, ParseUint64Arg("DOC_ID", env.positional(1)));
  const std::string& dictionary = args.GetString("dictionary");
  const int64_t top = args.GetInt("top");
  SAEDICT_RETURN_IF_ERROR(CheckRange("--top", top, 1, 10000));
  std::optional<int64_t> position;
  if (args.IsSet("position")) {
    position = args.GetInt("position");
    SAEDICT_RETURN_IF_ERROR(CheckRange("--position", *position, 0, INT64_MAX));
  }
  SAEDICT_ASSIGN_OR_RETURN(const bool ansi, UseColor(args.GetString("color"), env.out()));

  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  v1::GetDocumentRequest doc_req;
  doc_req.set_corpus(corpus);
  doc_req.set_doc_id(doc_id);
  SAEDICT_ASSIGN_OR_RETURN(const v1::GetDocumentResponse doc_resp, client->GetDocument(doc_req));
  const v1::Document& doc = doc_resp.document();
  if (position.has_value() && *position >= doc.token_ids_size()) {
    return InputError(absl::StrCat("--position ", *position, " is past the end of document ",
                                   doc_id, ", which has ", doc.token_ids_size(), " tokens"));
  }

  std::optional<v1::DocumentFeaturesResponse> features;
  if (!dictionary.empty()) {
    v1::DocumentFeaturesRequest req;
    req.set_dictionary_id(dictionary);
    req.set_corpus(corpus);
    req.set_doc_id(doc_id);
    if (position.has_value()) req.set_position(*position);
    req.set_n(static_cast<int32_t>(top));
    SAEDICT_ASSIGN_OR_RETURN(features, client->DocumentFeatures(req));
  }

  if (env.global().json) {
    env.out() << "{\"document\":" << MessageToJson(doc);
    if (features.has_value()) env.out() << ",\"features\":" << MessageToJson(*features);
    env.out() << "}\n";
    return absl::OkStatus();
  }
  env.out() << "corpus " << corpus << " document " << doc_id << ": "
            << FormatCount(doc.token_ids_size()) << " tokens\n"
            << RenderDocumentText(doc,
                                  position.has_value()
                                      ? std::optional<size_t>(static_cast<size_t>(*position))
                                      : std::nullopt,
                                  ansi)
            << "\n";
  if (!features.has_value()) return absl::OkStatus();
  env.out() << "\n";
  if (position.has_value()) {
    env.out() << "features of " << dictionary << " at position " << *position << " "
              << TokenCell(doc, *position) << ":\n";
  } else {
    env.out() << "features of " << dictionary << " over the whole document ("
              << FormatCount(features->num_tokens()) << " tokens):\n";
  }
  std::vector<std::vector<std::string>> rows;
  for (const v1::FeatureActivity& f : features->features()) {
    rows.push_back({absl::StrCat(f.feature()), FormatValue(f.max_value()),
                    absl::StrCat(f.max_position()), TokenCell(doc, f.max_position()),
                    absl::StrCat(f.active_tokens()), FormatValue(f.sum())});
  }
  WriteTable(env.out(), {"FEATURE", "MAX", "AT", "TOKEN", "ACTIVE", "SUM"}, rows);
  return absl::OkStatus();
}

}  // namespace

const Command& DocCommand() {
  static const Command* const kCommand = new Command{
      .name = "doc",
      .positional = {"CORPUS", "DOC_ID"},
      .summary = "show a stored document and, with --dictionary, its most active features",
      .details =
          "Prints the document's text (its token strings, or its token ids when it has\n"
          "none). With --dictionary DICT also the features of DICT most active in it:\n"
          "feature, largest value, the position (AT) and token of that value, how many\n"
          "tokens it is active on and the sum of its values; with --position P only the\n"
          "token at P counts (and is highlighted in the text). --json prints\n"
          "{\"document\": Document, \"features\": DocumentFeaturesResponse}.",
      .flags = {ValueFlag("dictionary", FlagKind::kString, "", "DICT",
                          "also list the document's features under this dictionary"),
                ValueFlag("position", FlagKind::kInt, "", "P",
                          "only the token at position P (0-based)"),
                ValueFlag("top", FlagKind::kInt, "20", "N", "features to list (1..10000)"),
                ValueFlag("color", FlagKind::kString, "auto", "WHEN",
                          "highlight with ANSI colour: auto (terminal), always, never")},
      .run = &RunDoc,
  };
  return *kCommand;
}

}  // namespace saedict::client
