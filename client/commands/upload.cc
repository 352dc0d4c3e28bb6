// `saedict upload ID FOLDER|FILE`: sends a local dictionary's files to the
// server (UploadDictionary: checksummed, atomic), which loads and serves it
// like `saedict load`; a progress line on stderr.
// Thread safety: see command.h.
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "client/commands/progress.h"
#include "client/upload_files.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

absl::Status RunUpload(CommandEnv& env) {
  const ParsedArgs& args = env.args();
  v1::UploadDictionaryRequest::Header header;
  header.set_id(env.positional(0));
  SAEDICT_ASSIGN_OR_RETURN(v1::SourceFormat format, ParseSourceFormat(args.GetString("format")));
  header.set_format(format);
  header.set_replace(args.GetBool("replace"));
  SAEDICT_ASSIGN_OR_RETURN(std::optional<v1::ComputeMode> mode,
                           ComputeModeArg(args.GetString("default_compute_mode"), false));
  if (mode.has_value()) header.set_default_compute_mode(*mode);
  absl::StatusOr<UploadPlan> plan = PlanUpload(env.positional(1));
  if (!plan.ok()) return InputError(plan.status());
  std::optional<ProgressBar> progress;
  if (args.GetBool("progress") || IsTerminal(env.err())) {
    ProgressOptions options;
    options.label = "upload";
    options.unit = "bytes";
    options.terminal = IsTerminal(env.err());
    progress.emplace(env.err(), static_cast<int64_t>(plan->total_bytes), std::move(options));
  }
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  SAEDICT_ASSIGN_OR_RETURN(
      const v1::UploadDictionaryResponse resp,
      client->UploadDictionary(UploadStream(*plan, header, [&](uint64_t sent) {
        if (progress) progress->Update(static_cast<int64_t>(sent));
      })));
  if (progress) progress->Finish();
  if (env.global().json) {
    env.out() << MessageToJson(resp.dictionary()) << "\n";
  } else {
    env.out() << "uploaded " << resp.dictionary().id() << " (" << FormatCount(resp.bytes_received())
              << " bytes in " << plan->files.size() << " file" << (plan->files.size() == 1 ? "" : "s")
              << ")\n";
    WriteKeyValues(env.out(), DescribeDictionary(resp.dictionary()));
  }
  return absl::OkStatus();
}

}  // namespace

const Command& UploadCommand() {
  static const Command* const kCommand = new Command{
      .name = "upload",
      .positional = {"ID", "PATH"},
      .summary = "send a local dictionary (SAELens, sparsify, Gemma Scope) to the server",
      .details =
          "PATH is a folder on this machine (every file directly in it is sent:\n"
          "cfg.json + sae_weights.safetensors, cfg.json + sae.safetensors) or one file\n"
          "(Gemma Scope's params.npz). Each file travels with its SHA-256; the server\n"
          "writes them under a temporary name, checks sizes and checksums, then loads\n"
          "the dictionary exactly like 'saedict load'. An interrupted or damaged upload\n"
          "leaves nothing on the server. The server's --max_upload_mb caps the size.",
      .flags = {ValueFlag("format", FlagKind::kString, "auto", "FORMAT",
                          "auto | saelens | sparsify | gemma_scope | gemma_scope_2"),
                BoolFlag("replace", "replace a loaded dictionary with the same ID"),
                ValueFlag("default_compute_mode", FlagKind::kString, "", "MODE",
                          "compute mode of requests that name none: f32, fast_exact or bf16"),
                BoolFlag("progress", "print progress on stderr even when it is not a terminal")},
      .run = &RunUpload,
  };
  return *kCommand;
}

}  // namespace saedict::client
