// `saedict feature DICT IDX`: one feature's statistics, activation
// histogram and top examples with their context (GetFeature), and with
// --quantiles examples sampled across its activation range (TopActivations).
// Thread safety: see command.h.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "client/commands/text_render.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

void WriteExamples(std::ostream& out, const google::protobuf::RepeatedPtrField<v1::Example>& ex,
                   bool ansi) {
  std::vector<std::vector<std::string>> rows;
  for (const v1::Example& e : ex) {
    rows.push_back({FormatValue(e.value()), e.corpus(), absl::StrCat(e.doc_id()),
                    absl::StrCat(e.position()), RenderContext(e, ansi)});
  }
  WriteTable(out, {"VALUE", "CORPUS", "DOC", "POS", "CONTEXT"}, rows);
}

void WriteText(std::ostream& out, const v1::GetFeatureResponse& f,
               const v1::TopActivationsResponse* top, int64_t context, bool ansi) {
  const v1::FeatureStats& s = f.stats();
  out << "feature " << f.feature() << " of " << f.dictionary_id() << "\n";
  if (s.count() == 0) {
    out << "no stored activations (inactive on all " << FormatCount(s.total_tokens())
        << " stored tokens)\n";
    return;
  }
  WriteKeyValues(
      out, {
               {"count", FormatCount(s.count())},
               {"total_tokens", FormatCount(s.total_tokens())},
               {"density", absl::StrFormat("%.6g (%.3f%%)", s.density(), 100.0 * s.density())},
               {"mean", FormatValue(s.mean())},
               {"std", FormatValue(s.std())},
               {"max", FormatValue(s.max())},
           });
  if (s.histogram_size() > 0) {
    out << "\nhistogram of the active values:\n";
    for (const std::string& line : RenderHistogram(s.histogram())) out << "  " << line << "\n";
  }
  out << "\ntop " << f.top_examples_size() << " examples (context " << context
      << " tokens each side):\n";
  WriteExamples(out, f.top_examples(), ansi);
  if (top == nullptr) return;
  for (const v1::QuantileBin& bin : top->bins()) {
    out << absl::StrFormat("\nquantiles [%.3g, %.3g), values [%s, %s]: %d examples\n",
                           bin.quantile_lower(), bin.quantile_upper(),
                           FormatValue(bin.value_lower()), FormatValue(bin.value_upper()),
                           bin.examples_size());
    if (bin.examples_size() > 0) WriteExamples(out, bin.examples(), ansi);
  }
}

absl::Status RunFeature(CommandEnv& env) {
  const ParsedArgs& args = env.args();
  const std::string& dictionary = env.positional(0);
  SAEDICT_ASSIGN_OR_RETURN(const int64_t feature,
                           ParseIntArg("IDX", env.positional(1), 0, UINT32_MAX));
  const int64_t top = args.GetInt("top"), context = args.GetInt("context");
  const int64_t quantiles = args.GetInt("quantiles"), per_bin = args.GetInt("per_bin");
  SAEDICT_RETURN_IF_ERROR(CheckRange("--top", top, 1, 1000));
  SAEDICT_RETURN_IF_ERROR(CheckRange("--context", context, 0, 256));
  SAEDICT_RETURN_IF_ERROR(CheckRange("--quantiles", quantiles, 0, 20));
  SAEDICT_RETURN_IF_ERROR(CheckRange("--per_bin", per_bin, 1, 100));
  SAEDICT_ASSIGN_OR_RETURN(const bool ansi, UseColor(args.GetString("color"), env.out()));

  v1::GetFeatureRequest req;
  req.set_dictionary_id(dictionary);
  req.set_feature(static_cast<uint32_t>(feature));
  req.set_top_n(static_cast<int32_t>(top));
  req.set_context_window(static_cast<int32_t>(context));
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  SAEDICT_ASSIGN_OR_RETURN(const v1::GetFeatureResponse resp, client->GetFeature(req));

  std::optional<v1::TopActivationsResponse> sampled;
  if (quantiles > 0) {
    v1::TopActivationsRequest top_req;
    top_req.set_dictionary_id(dictionary);
    top_req.set_feature(static_cast<uint32_t>(feature));
    top_req.set_n(1);  // the top examples came with GetFeature
    top_req.set_context_window(static_cast<int32_t>(context));
    top_req.set_quantile_bins(static_cast<int32_t>(quantiles));
    top_req.set_per_bin(static_cast<int32_t>(per_bin));
    SAEDICT_ASSIGN_OR_RETURN(sampled, client->TopActivations(top_req));
  }

  if (env.global().json) {
    // The GetFeatureResponse, plus "quantile_bins" when they were asked for.
    std::string json = MessageToJson(resp);
    if (sampled.has_value()) {
      std::vector<std::string> bins;
      for (const v1::QuantileBin& b : sampled->bins()) bins.push_back(MessageToJson(b));
      json.pop_back();  // the closing brace
      absl::StrAppend(&json, ",\"quantile_bins\":[", absl::StrJoin(bins, ","), "]}");
    }
    env.out() << json << "\n";
  } else {
    WriteText(env.out(), resp, sampled.has_value() ? &*sampled : nullptr, context, ansi);
  }
  return absl::OkStatus();
}

}  // namespace

const Command& FeatureCommand() {
  static const Command* const kCommand = new Command{
      .name = "feature",
      .positional = {"DICT", "IDX"},
      .summary = "show a feature's statistics, histogram and top examples in stored corpora",
      .details =
          "Statistics cover every token ingested under DICT (see 'saedict ingest'). The\n"
          "histogram has quarter-octave bins over the active values. Each example shows\n"
          "its value, document, position and the tokens around it, the peak token in\n"
          "[[brackets]] (bold red on a terminal); newlines show as \u21b5 and tabs as \u21e5.\n"
          "--quantiles N adds examples from N bins spread over the activation\n"
          "distribution (--per_bin each). --json prints the GetFeatureResponse (plus\n"
          "\"quantile_bins\" with --quantiles) as JSON.",
      .flags = {ValueFlag("top", FlagKind::kInt, "10", "N", "top examples to show (1..1000)"),
                ValueFlag("context", FlagKind::kInt, "8", "N",
                          "context tokens each side of an example (0..256)"),
                ValueFlag("quantiles", FlagKind::kInt, "0", "N",
                          "also show examples from N quantile bins (0..20)"),
                ValueFlag("per_bin", FlagKind::kInt, "5", "N",
                          "examples per quantile bin (1..100)"),
                ValueFlag("color", FlagKind::kString, "auto", "WHEN",
                          "highlight with ANSI colour: auto (terminal), always, never")},
      .run = &RunFeature,
  };
  return *kCommand;
}

}  // namespace saedict::client
