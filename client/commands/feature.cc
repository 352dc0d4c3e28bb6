// `saedict feature DICT IDX`: one feature's statistics, activation
// histogram and top examples with their context, its nearest decoder
// neighbours and its family (GetFeature), and with --quantiles examples
// sampled across its activation range (TopActivations).
// Thread safety: see command.h.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/family_output.h"
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

// The precomputed nearest decoder directions and the family, when asked.
void WriteGeometry(std::ostream& out, const v1::GetFeatureResponse& f, bool with_family) {
  if (f.neighbours_state() != v1::INDEX_STATE_READY) {
    out << "\nnearest decoder neighbours: not available, the neighbours are "
        << IndexStateName(f.neighbours_state()) << " ('saedict info " << f.dictionary_id()
        << "' shows the index)\n";
  } else {
    out << "\nnearest decoder neighbours:\n";
    std::vector<std::vector<std::string>> rows;
    for (const v1::Neighbour& n : f.neighbours()) {
      rows.push_back({absl::StrCat(n.feature()), absl::StrFormat("%.4f", n.cosine())});
    }
    WriteTable(out, {"FEATURE", "COSINE"}, rows);
  }
  if (!with_family) return;
  out << "\n";
  if (f.has_family()) {
    WriteFamilySummary(out, f.family());
  } else {
    out << "family: not available until the neighbours are ready\n";
  }
}

void WriteExplanations(std::ostream& out, const v1::GetFeatureResponse& f) {
  if (f.explanations_size() == 0) return;  // 'saedict explain' adds them
  out << "explanations:\n";
  for (const v1::Explanation& e : f.explanations()) {
    out << "  " << e.text() << "  (" << e.source();
    if (e.has_score()) out << ", score " << absl::StrFormat("%.3g", e.score());
    if (!e.explainer_model().empty()) out << ", by " << e.explainer_model();
    if (!e.author().empty()) out << ", author " << e.author();
    out << ", id " << e.id() << ")\n";
  }
}

void WriteText(std::ostream& out, const v1::GetFeatureResponse& f,
               const v1::TopActivationsResponse* top, int64_t context, bool ansi,
               bool with_family) {
  const v1::FeatureStats& s = f.stats();
  out << "feature " << f.feature() << " of " << f.dictionary_id() << "\n";
  WriteExplanations(out, f);
  if (s.count() == 0) {
    out << "no stored activations (inactive on all " << FormatCount(s.total_tokens())
        << " stored tokens)\n";
    WriteGeometry(out, f, with_family);
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
  if (top != nullptr) {
    for (const v1::QuantileBin& bin : top->bins()) {
      out << absl::StrFormat("\nquantiles [%.3g, %.3g), values [%s, %s]: %d examples\n",
                             bin.quantile_lower(), bin.quantile_upper(),
                             FormatValue(bin.value_lower()), FormatValue(bin.value_upper()),
                             bin.examples_size());
      if (bin.examples_size() > 0) WriteExamples(out, bin.examples(), ansi);
    }
  }
  WriteGeometry(out, f, with_family);
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
  const int64_t neighbours = args.GetInt("neighbours");
  SAEDICT_RETURN_IF_ERROR(CheckRange("--neighbours", neighbours, 1, 1000));
  const bool with_family = !args.GetBool("no_family");
  SAEDICT_ASSIGN_OR_RETURN(const bool ansi, UseColor(args.GetString("color"), env.out()));

  v1::GetFeatureRequest req;
  req.set_dictionary_id(dictionary);
  req.set_feature(static_cast<uint32_t>(feature));
  req.set_top_n(static_cast<int32_t>(top));
  req.set_context_window(static_cast<int32_t>(context));
  req.set_neighbours(static_cast<int32_t>(neighbours));
  req.set_skip_family(!with_family);
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
    WriteText(env.out(), resp, sampled.has_value() ? &*sampled : nullptr, context, ansi,
              with_family);
  }
  return absl::OkStatus();
}

}  // namespace

const Command& FeatureCommand() {
  static const Command* const kCommand = new Command{
      .name = "feature",
      .positional = {"DICT", "IDX"},
      .summary = "show a feature's statistics, top examples, neighbours and family",
      .details =
          "Statistics cover every token ingested under DICT (see 'saedict ingest'). The\n"
          "histogram has quarter-octave bins over the active values. Each example shows\n"
          "its value, document, position and the tokens around it, the peak token in\n"
          "[[brackets]] (bold red on a terminal); newlines show as \u21b5 and tabs as \u21e5.\n"
          "--quantiles N adds examples from N bins spread over the activation\n"
          "distribution (--per_bin each). Then the --neighbours nearest decoder\n"
          "directions (precomputed once the index is ready; 'saedict similar' searches\n"
          "further) and the feature's family at the default thresholds: its parent\n"
          "chain, children and siblings ('saedict family' shows the scores;\n"
          "--no_family leaves it out, it may need a scan of the stored tokens).\n"
          "--json prints the GetFeatureResponse (plus \"quantile_bins\" with\n"
          "--quantiles) as JSON.",
      .flags = {ValueFlag("top", FlagKind::kInt, "10", "N", "top examples to show (1..1000)"),
                ValueFlag("context", FlagKind::kInt, "8", "N",
                          "context tokens each side of an example (0..256)"),
                ValueFlag("quantiles", FlagKind::kInt, "0", "N",
                          "also show examples from N quantile bins (0..20)"),
                ValueFlag("per_bin", FlagKind::kInt, "5", "N",
                          "examples per quantile bin (1..100)"),
                ValueFlag("neighbours", FlagKind::kInt, "10", "N",
                          "nearest decoder neighbours to show (1..1000; at most those stored)"),
                BoolFlag("no_family", "leave out the feature's family"),
                ValueFlag("color", FlagKind::kString, "auto", "WHEN",
                          "highlight with ANSI colour: auto (terminal), always, never")},
      .run = &RunFeature,
  };
  return *kCommand;
}

}  // namespace saedict::client
