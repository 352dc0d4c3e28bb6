// `saedict import-explanations PATH`: explanations in bulk from a Neuronpedia
// export (explanations/batch-N.jsonl(.gz)) or a delphi run
// ({module}_latent{index}.txt files), streamed to ImportExplanations with a
// progress line on stderr; prints the counts and the rejected rows with
// their file and line.
// Thread safety: see command.h.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "client/commands/progress.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

namespace fs = std::filesystem;

constexpr size_t kChunkBytes = 1 << 20;

bool IsNeuronpediaFile(const fs::path& p) {
  const std::string name = p.filename().string();
  return absl::EndsWith(name, ".jsonl") || absl::EndsWith(name, ".jsonl.gz");
}
bool IsDelphiFile(const fs::path& p) {
  const std::string name = p.filename().string();
  return absl::EndsWith(name, ".txt") && absl::StrContains(name, "_latent");
}

struct InputFile {
  fs::path path;
  std::string name;  // as sent: relative to PATH when PATH is a folder
  uint64_t size = 0;
};

// The files to send: PATH itself, or every file of the format under it
// (recursively, in name order).
absl::StatusOr<std::vector<InputFile>> ListInput(const std::string& path, v1::ExplanationFormat f) {
  std::error_code ec;
  std::vector<InputFile> files;
  if (fs::is_regular_file(path, ec)) {
    files.push_back({path, fs::path(path).filename().string(), fs::file_size(path, ec)});
    return files;
  }
  if (!fs::is_directory(path, ec)) {
    return InputError(absl::NotFoundError(absl::StrCat("PATH ", path, " is not a file or folder")));
  }
  for (fs::recursive_directory_iterator it(path, ec), end; it != end && !ec; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const bool want = f == v1::EXPLANATION_FORMAT_NEURONPEDIA ? IsNeuronpediaFile(it->path())
                                                              : IsDelphiFile(it->path());
    if (!want) continue;
    files.push_back({it->path(), fs::relative(it->path(), path, ec).string(),
                     it->file_size(ec)});
  }
  if (ec) return InputError(absl::StrCat("PATH ", path, ": ", ec.message()));
  std::sort(files.begin(), files.end(),
            [](const InputFile& a, const InputFile& b) { return a.name < b.name; });
  if (files.empty()) {
    return InputError(absl::StrCat(
        "PATH ", path, " holds no ",
        f == v1::EXPLANATION_FORMAT_NEURONPEDIA ? "*.jsonl or *.jsonl.gz files (Neuronpedia)"
                                                : "*_latent*.txt files (delphi)"));
  }
  return files;
}

// --format, or detected from PATH.
absl::StatusOr<v1::ExplanationFormat> FormatOf(const std::string& flag, const std::string& path) {
  if (flag == "neuronpedia") return v1::EXPLANATION_FORMAT_NEURONPEDIA;
  if (flag == "delphi") return v1::EXPLANATION_FORMAT_DELPHI;
  if (flag != "auto") {
    return InputError(absl::StrCat("--format wants auto, neuronpedia or delphi, got '", flag, "'"));
  }
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    if (IsNeuronpediaFile(path)) return v1::EXPLANATION_FORMAT_NEURONPEDIA;
    if (IsDelphiFile(path)) return v1::EXPLANATION_FORMAT_DELPHI;
  } else if (fs::is_directory(path, ec)) {
    for (fs::recursive_directory_iterator it(path, ec), end; it != end && !ec; it.increment(ec)) {
      if (IsNeuronpediaFile(it->path())) return v1::EXPLANATION_FORMAT_NEURONPEDIA;
      if (IsDelphiFile(it->path())) return v1::EXPLANATION_FORMAT_DELPHI;
    }
  }
  return InputError(absl::StrCat("cannot tell the format of ", path,
                                 " (no *.jsonl(.gz) or *_latent*.txt files); give --format"));
}

absl::Status RunImport(CommandEnv& env) {
  const ParsedArgs& args = env.args();
  const std::string& path = env.positional(0);
  SAEDICT_ASSIGN_OR_RETURN(const v1::ExplanationFormat format,
                           FormatOf(args.GetString("format"), path));
  v1::ImportExplanationsRequest first;
  v1::ImportExplanationsRequest::Header* header = first.mutable_header();
  header->set_format(format);
  header->set_default_dictionary_id(args.GetString("dictionary"));
  header->set_replace_same_source(args.GetBool("replace_same_source"));
  if (args.IsSet("map")) {
    for (absl::string_view pair : absl::StrSplit(args.GetString("map"), ',', absl::SkipEmpty())) {
      const size_t eq = pair.rfind('=');
      if (eq == absl::string_view::npos || eq == 0 || eq + 1 == pair.size()) {
        return InputError(absl::StrCat("--map entry '", pair, "' is not KEY=DICT"));
      }
      (*header->mutable_dictionaries())[std::string(pair.substr(0, eq))] =
          std::string(pair.substr(eq + 1));
    }
  }
  if (header->default_dictionary_id().empty() && header->dictionaries().empty()) {
    return InputError("give --dictionary DICT or --map KEY=DICT,... to say where rows go");
  }
  SAEDICT_ASSIGN_OR_RETURN(const std::vector<InputFile> files, ListInput(path, format));
  uint64_t total = 0;
  for (const InputFile& f : files) total += f.size;

  std::optional<ProgressBar> progress;
  if (args.GetBool("progress") || IsTerminal(env.err())) {
    ProgressOptions options;
    options.label = "import";
    options.unit = "bytes";
    options.terminal = IsTerminal(env.err());
    progress.emplace(env.err(), static_cast<int64_t>(total), std::move(options));
  }
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  size_t file = 0;
  std::ifstream in;
  bool opened = false, header_sent = false;
  uint64_t sent = 0;
  std::string buffer(kChunkBytes, '\0');
  auto next = [&]() -> absl::StatusOr<std::optional<v1::ImportExplanationsRequest>> {
    for (;;) {
      if (file >= files.size()) {
        if (header_sent) return std::nullopt;
        header_sent = true;
        return first;
      }
      if (!opened) {
        in.open(files[file].path, std::ios::binary);
        if (!in) {
          return InputError(absl::StrCat("cannot read ", files[file].path.string()));
        }
        opened = true;
      }
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      const size_t n = static_cast<size_t>(in.gcount());
      if (n == 0) {
        in.close();
        in.clear();
        opened = false;
        ++file;
        continue;
      }
      v1::ImportExplanationsRequest m = header_sent ? v1::ImportExplanationsRequest() : first;
      header_sent = true;
      m.set_file_name(files[file].name);
      m.set_data(buffer.data(), n);
      sent += n;
      if (progress) progress->Update(static_cast<int64_t>(sent));
      return m;
    }
  };
  SAEDICT_ASSIGN_OR_RETURN(const v1::ImportExplanationsResponse resp,
                           client->ImportExplanations(next));
  if (progress) progress->Finish();
  if (env.global().json) {
    env.out() << MessageToJson(resp) << "\n";
    return absl::OkStatus();
  }
  env.out() << "imported " << resp.imported() << " explanation" << (resp.imported() == 1 ? "" : "s")
            << " from " << resp.files() << " file" << (resp.files() == 1 ? "" : "s") << ", rejected "
            << resp.rejected() << "\n";
  for (const v1::ImportProblem& p : resp.problems()) {
    env.out() << "  " << p.file_name();
    if (p.line() > 0) env.out() << ":" << p.line();
    env.out() << ": " << p.message() << "\n";
  }
  if (resp.rejected() > resp.problems_size()) {
    env.out() << "  ... and " << resp.rejected() - resp.problems_size() << " more\n";
  }
  return absl::OkStatus();
}

}  // namespace

const Command& ImportExplanationsCommand() {
  static const Command* const kCommand = new Command{
      .name = "import-explanations",
      .positional = {"PATH"},
      .summary = "import explanations from a Neuronpedia export or a delphi run",
      .details =
          "PATH is one file or a folder searched recursively: Neuronpedia's\n"
          "explanations/batch-N.jsonl(.gz) (one JSON object per line: modelId, layer,\n"
          "index, description, typeName, explanationModelName, scoreV1, ...) or\n"
          "delphi's {module}_latent{index}.txt files (each a JSON string). Rows go to\n"
          "the dictionary that --map names for their 'modelId/layer' (delphi: module),\n"
          "else to --dictionary. Malformed rows are skipped and listed with file and\n"
          "line; the rest is stored. Importing the same file twice updates rather than\n"
          "duplicates; --replace_same_source first removes each touched feature's\n"
          "explanations of the same source.",
      .flags = {ValueFlag("format", FlagKind::kString, "auto", "F", "auto, neuronpedia or delphi"),
                ValueFlag("dictionary", FlagKind::kString, "", "DICT",
                          "dictionary of rows --map does not name"),
                ValueFlag("map", FlagKind::kString, "", "KEY=DICT,...",
                          "'modelId/layer' (delphi: module) to dictionary"),
                BoolFlag("replace_same_source",
                         "replace the touched features' explanations of the same source"),
                BoolFlag("progress", "print progress on stderr even when it is not a terminal")},
      .run = &RunImport,
  };
  return *kCommand;
}

}  // namespace saedict::client
