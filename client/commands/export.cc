// `saedict export DICT CORPUS DIR --format delphi`: a stored corpus's
// latents under DICT written as delphi's latent cache in DIR (layout:
// delphi_cache.h), streamed from ExportLatents with a progress line.
// Thread safety: see command.h.
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/delphi_cache.h"
#include "client/commands/output.h"
#include "client/commands/progress.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

absl::Status RunExport(CommandEnv& env) {
  const ParsedArgs& args = env.args();
  if (args.GetString("format") != "delphi") {
    return InputError(absl::StrCat("--format wants delphi (the only export layout), got '",
                                   args.GetString("format"), "'"));
  }
  const int64_t n_splits = args.GetInt("n_splits");
  SAEDICT_RETURN_IF_ERROR(CheckRange("--n_splits", n_splits, 0, 1024));
  const int64_t ctx_len = args.GetInt("ctx_len");
  SAEDICT_RETURN_IF_ERROR(CheckRange("--ctx_len", ctx_len, 0, 1 << 20));
  const int64_t pad = args.GetInt("pad_token_id");
  SAEDICT_RETURN_IF_ERROR(CheckRange("--pad_token_id", pad, 0, INT32_MAX));
  v1::ExportLatentsRequest req;
  req.set_dictionary_id(env.positional(0));
  req.set_corpus(env.positional(1));
  req.set_n_splits(static_cast<int32_t>(n_splits));
  req.set_ctx_len(static_cast<int32_t>(ctx_len));
  req.set_pad_token_id(static_cast<int32_t>(pad));
  DelphiCacheWriter writer(env.positional(2), req.corpus(), req.pad_token_id());
  std::optional<ProgressBar> progress;
  const bool show = args.GetBool("progress") || IsTerminal(env.err());
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  SAEDICT_RETURN_IF_ERROR(client->ExportLatents(req, [&](v1::ExportLatentsResponse&& m) {
    const bool header = m.has_header();
    const bool chunk = m.has_chunk();
    SAEDICT_RETURN_IF_ERROR(writer.Add(std::move(m)));
    if (header && show) {
      ProgressOptions options;
      options.label = "export";
      options.unit = "latents";
      options.terminal = IsTerminal(env.err());
      progress.emplace(env.err(), writer.header().n_entries(), std::move(options));
    }
    if (chunk && progress) progress->Update(writer.entries_written());
    return absl::OkStatus();
  }));
  SAEDICT_RETURN_IF_ERROR(writer.Finish());
  if (progress) {
    progress->Update(writer.entries_written());
    progress->Finish();
  }
  const auto& h = writer.header();
  if (env.global().json) {
    env.out() << "{\"dir\":" << JsonQuote(writer.output_dir().string())
              << ",\"sequences\":" << h.n_sequences() << ",\"tokens\":" << h.n_tokens()
              << ",\"entries\":" << h.n_entries() << ",\"splits\":" << h.splits_size() << "}\n";
  } else {
    env.out() << "exported " << FormatCount(h.n_entries()) << " latents of "
              << FormatCount(h.n_tokens()) << " tokens (" << h.n_sequences() << " sequences of "
              << h.ctx_len() << ") in " << h.splits_size() << " splits to "
              << writer.output_dir().string() << "\n";
  }
  return absl::OkStatus();
}

}  // namespace

const Command& ExportCommand() {
  static const Command* const kCommand = new Command{
      .name = "export",
      .positional = {"DICT", "CORPUS", "DIR"},
      .summary = "write a stored corpus's latents as delphi's latent cache",
      .details =
          "Writes DIR/HOOKPOINT/{start}_{end}.safetensors (locations, activations,\n"
          "tokens, as delphi's LatentCache.save_splits does), config.json and\n"
          "saedict_sequences.json (which document each sequence comes from), so\n"
          "delphi's explainers run on what the server stored without re-encoding.\n"
          "HOOKPOINT is DICT's hook_name. Documents become sequences of --ctx_len\n"
          "tokens (0: the longest document), padded with --pad_token_id. The cache\n"
          "appears only when complete; DIR/HOOKPOINT must not exist yet.",
      .flags = {ValueFlag("format", FlagKind::kString, "delphi", "F", "the layout: delphi"),
                ValueFlag("n_splits", FlagKind::kInt, "0", "N",
                          "latent ranges, one file each (0: delphi's 5)"),
                ValueFlag("ctx_len", FlagKind::kInt, "0", "N",
                          "tokens per sequence (0: the longest document)"),
                ValueFlag("pad_token_id", FlagKind::kInt, "0", "ID",
                          "token that pads sequences past a document's end"),
                BoolFlag("progress", "print progress on stderr even when it is not a terminal")},
      .run = &RunExport,
  };
  return *kCommand;
}

}  // namespace saedict::client
