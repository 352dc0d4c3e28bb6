// `saedict eval DICT --activations FILE.npy | --corpus C`: Evaluate. Sends
// the activations in chunks (progress on stderr on a terminal) or names a
// stored corpus, prints the headline metrics and writes the SAEBench core
// report with --json FILE. Exit 2 on any error (Command::gate, as compare).
// Thread safety: see command.h.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands/array_files.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "client/commands/progress.h"
#include "formats/codecs/json.h"
#include "util/status_macros.h"
#include "wire/tensor_wire.h"

namespace saedict::client {
namespace {

constexpr int64_t kChunkBytes = int64_t{8} << 20;  // activation bytes per message

int64_t ElementBytes(v1::DType dtype) { return dtype == v1::DTYPE_F32 ? 4 : 2; }

// The number at `path` (a.b.c) in the report; nullopt when absent or null.
std::optional<double> NumberAt(const google::protobuf::Struct& root,
                               std::initializer_list<const char*> path) {
  const google::protobuf::Struct* node = &root;
  const google::protobuf::Value* value = nullptr;
  for (const char* key : path) {
    if (node == nullptr) return std::nullopt;
    auto it = node->fields().find(key);
    if (it == node->fields().end()) return std::nullopt;
    value = &it->second;
    node = value->has_struct_value() ? &value->struct_value() : nullptr;
  }
  if (value == nullptr || !value->has_number_value()) return std::nullopt;
  return value->number_value();
}

void WriteSummary(std::ostream& out, const std::string& dictionary,
                  const v1::EvaluateResponse& resp, const google::protobuf::Struct& report) {
  out << dictionary << ": " << resp.tokens() << " tokens, " << resp.prompts() << " prompts\n";
  const struct {
    const char* label;
    const char* group;
    const char* name;
  } rows[] = {
      {"L0", "sparsity", "l0"},
      {"L1", "sparsity", "l1"},
      {"explained variance", "reconstruction_quality", "explained_variance"},
      {"MSE", "reconstruction_quality", "mse"},
      {"cosine(x, x_hat)", "reconstruction_quality", "cossim"},
      {"L2 ratio", "shrinkage", "l2_ratio"},
      {"relative reconstruction bias", "shrinkage", "relative_reconstruction_bias"},
      {"fraction alive", "misc_metrics", "frac_alive"},
      {"denser than 1% / 10%", "misc_metrics", "freq_over_1_percent"},
      {"mean max decoder cosine", "misc_metrics", "average_max_decoder_cosine_sim"},
  };
  for (const auto& row : rows) {
    const std::optional<double> v = NumberAt(report, {"eval_result_metrics", row.group, row.name});
    if (!v.has_value()) continue;
    out << absl::StrFormat("  %-30s %.6g", row.label, *v);
    if (std::string(row.name) == "freq_over_1_percent") {
      if (auto ten =
              NumberAt(report, {"eval_result_metrics", "misc_metrics", "freq_over_10_percent"})) {
        out << absl::StrFormat(" / %.6g", *ten);
      }
    }
    out << "\n";
  }
  if (auto dm = NumberAt(report, {"saedict", "dark_matter_share"})) {
    out << absl::StrFormat("  %-30s %.6g\n", "dark matter (linear share)", *dm);
  }
  if (resp.absent_metrics_size() > 0) {
    out << "  absent (need the language model or activations):";
    for (const std::string& name : resp.absent_metrics()) out << " " << name;
    out << "\n";
  }
}

absl::Status RunEval(CommandEnv& env) {
  const ParsedArgs& args = env.args();
  const std::string& dictionary = env.positional(0);
  const bool has_acts = args.IsSet("activations"), has_corpus = args.IsSet("corpus");
  if (has_acts == has_corpus) {
    return InputError(has_acts ? "give --activations or --corpus, not both"
                               : "give --activations FILE.npy or --corpus NAME to evaluate on");
  }
  v1::EvaluateRequest first;
  first.set_dictionary_id(dictionary);
  const int64_t context_size = args.GetInt("context_size");
  SAEDICT_RETURN_IF_ERROR(CheckRange("--context_size", context_size, 1, int64_t{1} << 20));
  first.mutable_options()->set_context_size(context_size);
  const std::string errors_path = args.GetString("token_errors");
  first.mutable_options()->set_per_token_error_norms(!errors_path.empty());
  if (!errors_path.empty() && has_corpus) {
    return InputError("--token_errors needs --activations (a corpus keeps no activations)");
  }

  std::optional<Activations> acts;
  if (has_corpus) {
    SAEDICT_RETURN_IF_ERROR(CheckName("--corpus", args.GetString("corpus")));
    first.set_corpus(args.GetString("corpus"));
  } else {
    SAEDICT_ASSIGN_OR_RETURN(Activations read,
                             AsInputError(ReadActivationsNpy(args.GetString("activations"))));
    if (read.rows == 0) return InputError("--activations holds no rows");
    acts = std::move(read);
  }
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());

  std::optional<ProgressBar> progress;
  if (acts.has_value() && IsTerminal(env.err())) {
    ProgressOptions options;
    options.label = "eval";
    options.unit = "rows";
    options.terminal = true;
    progress.emplace(env.err(), acts->rows, std::move(options));
  }
  int64_t next_row = 0;
  bool sent_first = false;
  auto next = [&]() -> absl::StatusOr<std::optional<v1::EvaluateRequest>> {
    if (!acts.has_value()) {
      if (sent_first) return std::optional<v1::EvaluateRequest>();
      sent_first = true;
      return std::optional<v1::EvaluateRequest>(first);
    }
    if (next_row >= acts->rows) return std::optional<v1::EvaluateRequest>();
    const int64_t row_bytes = acts->cols * ElementBytes(acts->dtype);
    const int64_t rows =
        std::min(acts->rows - next_row, std::max<int64_t>(1, kChunkBytes / row_bytes));
    v1::EvaluateRequest req = sent_first ? v1::EvaluateRequest() : first;
    sent_first = true;
    const int64_t shape[2] = {rows, acts->cols};
    SAEDICT_ASSIGN_OR_RETURN(
        *req.mutable_activations(),
        wire::RawToTensor(
            absl::string_view(acts->data).substr(next_row * row_bytes, rows * row_bytes), shape,
            acts->dtype));
    next_row += rows;
    if (progress) progress->Update(next_row);
    return std::optional<v1::EvaluateRequest>(std::move(req));
  };
  SAEDICT_ASSIGN_OR_RETURN(v1::EvaluateResponse resp, client->Evaluate(next));
  if (progress) progress->Finish();

  SAEDICT_ASSIGN_OR_RETURN(google::protobuf::Struct report,
                           formats::ParseJsonObject(resp.saebench_json(), "the server's report"));
  const std::string json_path = args.GetString("json");
  if (json_path == "-") {
    env.out() << resp.saebench_json() << "\n";
  } else {
    if (!json_path.empty()) {
      std::ofstream f(json_path, std::ios::binary | std::ios::trunc);
      f << resp.saebench_json() << "\n";
      if (!f.flush())
        return absl::PermissionDeniedError(absl::StrCat("--json: cannot write ", json_path));
    }
    WriteSummary(env.out(), dictionary, resp, report);
  }
  if (!errors_path.empty()) {
    SAEDICT_ASSIGN_OR_RETURN(
        std::vector<float> norms,
        wire::TensorToFloats(resp.per_token_error_norms(), "per_token_error_norms"));
    SAEDICT_RETURN_IF_ERROR(
        WriteMatrixNpy(errors_path, static_cast<int64_t>(norms.size()), 1, norms));
  }
  return absl::OkStatus();
}

}  // namespace

const Command& EvalCommand() {
  static const Command* const kCommand = new Command{
      .name = "eval",
      .positional = {"DICT"},
      .summary = "evaluate a dictionary: SAEBench core metrics as JSON",
      .details =
          "--activations FILE.npy ([rows, d_in], f32 / f16 / bf16-as-uint16): the server\n"
          "encodes and decodes every row and reports sparsity, reconstruction, shrinkage,\n"
          "feature density and weight metrics, plus the dark-matter share (the part of\n"
          "the reconstruction error a linear map of x predicts, held-out). --corpus NAME:\n"
          "from the codes stored by ingest alone (no activations are stored), so the\n"
          "reconstruction and shrinkage metrics are absent and listed as such. Metrics\n"
          "that need the language model (CE loss, KL) are always absent. --json FILE\n"
          "writes the report in SAEBench's core layout ('-': stdout). Exit 2 on errors.",
      .flags = {ValueFlag("activations", FlagKind::kString, "", "FILE.npy",
                          "evaluate on these activations"),
                ValueFlag("corpus", FlagKind::kString, "", "NAME",
                          "evaluate on the codes stored for this corpus"),
                ValueFlag("context_size", FlagKind::kInt, "128", "N",
                          "rows per prompt (consistent_activation_heuristic)"),
                ValueFlag("token_errors", FlagKind::kString, "", "FILE.npy",
                          "also write ||x - x_hat|| per row to FILE.npy"),
                ValueFlag("json", FlagKind::kString, "", "FILE",
                          "write the SAEBench core JSON report to FILE ('-' for stdout)")},
      .run = &RunEval,
      .gate = true,
  };
  return *kCommand;
}

}  // namespace saedict::client
