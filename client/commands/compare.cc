// `saedict compare A B --method decoder|activation`: CompareDictionaries as a
// CI gate. Prints the summary (or writes the whole report with --json FILE),
// and with --fail-below X exits 1 when --metric is below X; every error
// exits 2 (Command::gate). Progress on stderr when it is a terminal.
// Thread safety: see command.h.
#include <cmath>
#include <filesystem>
#include <fstream>
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

// The summary value a gate compares, by --metric name.
absl::StatusOr<double> MetricValue(const v1::CompareSummary& s, const std::string& metric) {
  if (metric == "mmcs") return s.mean_max_a_to_b();
  if (metric == "frac_matched") return s.frac_matched_a();
  if (metric == "hungarian_mean") {
    if (!s.has_assignment()) {
      return InputError(
          "--metric hungarian_mean needs the one-to-one assignment: use --method decoder "
          "without --skip_assignment");
    }
    return s.assignment_mean();
  }
  if (metric == "svcca") {
    if (s.method() != v1::COMPARE_METHOD_ACTIVATION) {
      return InputError("--metric svcca needs --method activation");
    }
    return s.svcca();
  }
  return InputError(absl::StrCat("--metric: '", metric,
                                 "' is not a metric; want mmcs, hungarian_mean, frac_matched or "
                                 "svcca"));
}

// Writes `text` to `path` through a temporary file and a rename.
absl::Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return absl::PermissionDeniedError(absl::StrCat("--json: cannot write ", tmp));
    f << text;
    if (!f.flush()) return absl::DataLossError(absl::StrCat("--json: writing ", tmp, " failed"));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    return absl::PermissionDeniedError(
        absl::StrCat("--json: rename to ", path, ": ", ec.message()));
  return absl::OkStatus();
}

std::string Report(const v1::CompareSummary& summary, const std::vector<std::string>& matches_a,
                   const std::vector<std::string>& matches_b, const std::string& gate) {
  std::string out = absl::StrCat("{\"summary\":", MessageToJson(summary));
  if (!gate.empty()) absl::StrAppend(&out, ",\"gate\":", gate);
  for (const auto& [name, list] : {std::pair{"matches_a", &matches_a}, {"matches_b", &matches_b}}) {
    absl::StrAppend(&out, ",\"", name, "\":[");
    for (size_t i = 0; i < list->size(); ++i) absl::StrAppend(&out, i ? "," : "", (*list)[i]);
    absl::StrAppend(&out, "]");
  }
  absl::StrAppend(&out, "}\n");
  return out;
}

void WriteSummary(std::ostream& out, const v1::CompareSummary& s) {
  const bool decoder = s.method() == v1::COMPARE_METHOD_DECODER;
  out << s.dictionary_a() << " (" << s.size_a() << " features, d_in " << s.d_in_a() << ") vs "
      << s.dictionary_b() << " (" << s.size_b() << " features, d_in " << s.d_in_b() << "), "
      << (decoder ? "decoder cosine" : "activation correlation") << "\n";
  const char* what = decoder ? "mean max cosine (MMCS)" : "mean max correlation";
  out << absl::StrFormat("  %-34s A->B %.4f   B->A %.4f\n", what, s.mean_max_a_to_b(),
                         s.mean_max_b_to_a());
  out << absl::StrFormat("  %-34s A %.4f   B %.4f\n",
                         absl::StrFormat("matched (>= %.2f)", s.match_threshold()),
                         s.frac_matched_a(), s.frac_matched_b());
  if (s.has_assignment()) {
    out << absl::StrFormat("  %-34s mean %.4f over %d pairs; unmatched A %d, B %d\n",
                           "one-to-one (exact assignment)", s.assignment_mean(), s.assigned_pairs(),
                           s.unmatched_a(), s.unmatched_b());
  }
  if (!decoder) {
    out << absl::StrFormat("  %-34s %d tokens, %d passes; alive A %d, B %d\n", "corpus", s.tokens(),
                           s.passes(), s.alive_a(), s.alive_b());
    out << absl::StrFormat("  %-34s %.4f over %d pairs (dims %d / %d)\n", "SVCCA of activations",
                           s.svcca(), s.svcca_pairs(), s.svcca_dims_a(), s.svcca_dims_b());
    if (s.has_svcca_decoder()) {
      out << absl::StrFormat("  %-34s %.4f over %d pairs\n", "SVCCA of paired decoders (Lan)",
                             s.svcca_decoder(), s.svcca_decoder_pairs());
    }
  }
  out << absl::StrFormat("  %-34s %.2f s (gemm %.2f s, assignment %.2f s)\n", "server time",
                         s.seconds(), s.gemm_seconds(), s.assignment_seconds());
}

absl::Status RunCompare(CommandEnv& env) {
  const ParsedArgs& args = env.args();
  v1::CompareDictionariesRequest req;
  req.set_dictionary_a(env.positional(0));
  req.set_dictionary_b(env.positional(1));
  const std::string& method = args.GetString("method");
  if (method == "decoder") {
    req.set_method(v1::COMPARE_METHOD_DECODER);
  } else if (method == "activation") {
    req.set_method(v1::COMPARE_METHOD_ACTIVATION);
  } else {
    return InputError(absl::StrCat("--method: '", method, "'; want decoder or activation"));
  }
  if (args.IsSet("corpus")) {
    SAEDICT_RETURN_IF_ERROR(CheckName("--corpus", args.GetString("corpus")));
    req.set_corpus(args.GetString("corpus"));
  }
  if (req.method() == v1::COMPARE_METHOD_ACTIVATION && req.corpus().empty()) {
    return InputError("--method activation needs --corpus NAME (the corpus both were ingested on)");
  }
  const double threshold = args.GetDouble("threshold");
  SAEDICT_RETURN_IF_ERROR(CheckRange("--threshold", threshold, -1.0, 1.0));
  req.set_match_threshold(threshold);
  req.set_skip_assignment(args.GetBool("skip_assignment"));
  const std::string json_path = args.GetString("json");
  req.set_skip_matches(json_path.empty());
  const std::string metric = args.GetString("metric");
  const bool gated = args.IsSet("fail_below");
  const double fail_below = args.GetDouble("fail_below");
  if (gated) SAEDICT_RETURN_IF_ERROR(CheckRange("--fail_below", fail_below, -1.0, 1.0));

  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  const bool terminal = IsTerminal(env.err());
  v1::CompareSummary summary;
  bool have_summary = false;
  std::vector<std::string> matches_a, matches_b;
  SAEDICT_RETURN_IF_ERROR(
      client->CompareDictionaries(req, [&](v1::CompareDictionariesResponse&& m) -> absl::Status {
        switch (m.item_case()) {
          case v1::CompareDictionariesResponse::kProgress:
            if (terminal) {
              env.err() << absl::StrFormat("\r\x1b[Kcompare: %s %5.1f%%", m.progress().phase(),
                                           100 * m.progress().fraction())
                        << std::flush;
            }
            break;
          case v1::CompareDictionariesResponse::kSummary:
            if (terminal) env.err() << "\r\x1b[K" << std::flush;
            summary = m.summary();
            have_summary = true;
            break;
          case v1::CompareDictionariesResponse::kMatches: {
            auto& list = m.matches().side() == v1::COMPARE_SIDE_B ? matches_b : matches_a;
            for (const v1::FeatureMatch& f : m.matches().matches()) {
              list.push_back(MessageToJson(f));
            }
            break;
          }
          default:
            break;
        }
        return absl::OkStatus();
      }));
  if (!have_summary) return absl::InternalError("compare: the server sent no summary");

  std::string gate;
  bool passed = true;
  double value = 0;
  if (gated) {
    SAEDICT_ASSIGN_OR_RETURN(value, MetricValue(summary, metric));
    passed = value >= fail_below;
    gate = absl::StrFormat("{\"metric\":%s,\"fail_below\":%.17g,\"value\":%.17g,\"passed\":%s}",
                           JsonQuote(metric), fail_below, value, passed ? "true" : "false");
  }
  if (!json_path.empty()) {
    const std::string report = Report(summary, matches_a, matches_b, gate);
    if (json_path == "-") {
      env.out() << report;
    } else {
      SAEDICT_RETURN_IF_ERROR(WriteFileAtomically(json_path, report));
    }
  }
  if (json_path != "-") WriteSummary(env.out(), summary);
  if (gated && json_path != "-") {
    env.out() << absl::StrFormat("  gate: %s %.4f %s %.4f: %s\n", metric, value,
                                 passed ? ">=" : "<", fail_below, passed ? "PASS" : "FAIL");
  }
  if (!passed) {
    return ThresholdMissed(
        absl::StrFormat("%s %.4f is below --fail_below %.4f", metric, value, fail_below));
  }
  return absl::OkStatus();
}

}  // namespace

const Command& CompareCommand() {
  static const Command* const kCommand = new Command{
      .name = "compare",
      .positional = {"A", "B"},
      .summary = "compare two dictionaries (a CI gate: exit 1 below --fail_below, 2 on errors)",
      .details =
          "--method decoder (same d_in): each feature's best decoder-cosine match in the\n"
          "other dictionary both ways, MMCS, the fraction matched at --threshold, and the\n"
          "exact one-to-one assignment (Jonker-Volgenant on the full cosine matrix) with\n"
          "its mean. --method activation --corpus C (any d_in; both ingested on C): the\n"
          "best-correlated partner per feature by Pearson correlation over C's tokens,\n"
          "mean max correlation, SVCCA over the matched pairs.\n"
          "--fail_below X with --metric mmcs|hungarian_mean|frac_matched|svcca makes it a\n"
          "gate: exit 0 when the metric is >= X, 1 when below, 2 on any error. --json FILE\n"
          "writes the report (summary, gate, per-feature matches of A and B) to FILE\n"
          "('-': stdout, instead of the text summary).",
      .flags = {ValueFlag("method", FlagKind::kString, "decoder", "decoder|activation",
                          "how features are matched"),
                ValueFlag("corpus", FlagKind::kString, "", "NAME",
                          "activation method: the corpus both dictionaries were ingested on"),
                ValueFlag("threshold", FlagKind::kDouble, "0.7", "X",
                          "a feature is matched when its best similarity is >= X"),
                BoolFlag("skip_assignment", "decoder method: no one-to-one assignment"),
                ValueFlag("fail_below", FlagKind::kDouble, "", "X",
                          "exit 1 when --metric is below X"),
                ValueFlag("metric", FlagKind::kString, "mmcs", "NAME",
                          "gate metric: mmcs, hungarian_mean, frac_matched or svcca"),
                ValueFlag("json", FlagKind::kString, "", "FILE",
                          "write the JSON report to FILE ('-' for stdout)")},
      .run = &RunCompare,
      .gate = true,
  };
  return *kCommand;
}

}  // namespace saedict::client
