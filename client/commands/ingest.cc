// `saedict ingest DICT --corpus NAME --tokens T.npy --activations A.npy`:
// stores documents (token ids, optional display strings) and their sparse
// codes under dictionary DICT through the Ingest stream, one message per
// batch of whole documents, with a progress line on stderr. Every input is
// read and checked before anything is sent (bad input exits 2).
// Thread safety: see command.h.
#include <algorithm>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands/array_files.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/ingest_input.h"
#include "client/commands/output.h"
#include "client/commands/progress.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

// What the command sends: the files, read and checked.
struct IngestInput {
  std::vector<int32_t> tokens;
  Activations activations;
  std::vector<DocSpan> docs;
  std::vector<std::string> vocab;  // empty: no display strings
  int64_t total_tokens = 0;        // of `docs`
};

absl::StatusOr<v1::ValuePrecision> ParsePrecision(absl::string_view name) {
  if (name == "f32") return v1::VALUE_PRECISION_F32;
  if (name == "f16") return v1::VALUE_PRECISION_F16;
  return InputError(absl::StrCat("--values wants f32 or f16, got '", name, "'"));
}

// Reads and cross-checks the input files the flags name.
absl::StatusOr<IngestInput> ReadInput(const ParsedArgs& args) {
  const std::string& tokens_path = args.GetString("tokens");
  const std::string& acts_path = args.GetString("activations");
  if (tokens_path.empty()) return InputError("--tokens is required (token ids, .npy [T])");
  if (acts_path.empty()) return InputError("--activations is required (.npy [T, d_in])");

  IngestInput in;
  SAEDICT_ASSIGN_OR_RETURN(in.tokens, AsInputError(ReadTokenIds(tokens_path)));
  const int64_t num_tokens = static_cast<int64_t>(in.tokens.size());
  if (num_tokens == 0) return InputError(absl::StrCat(tokens_path, ": no tokens"));
  SAEDICT_ASSIGN_OR_RETURN(in.activations, AsInputError(ReadActivationsNpy(acts_path)));
  if (in.activations.rows != num_tokens) {
    return InputError(absl::StrCat(acts_path, " has ", in.activations.rows, " rows but ",
                                   tokens_path, " has ", num_tokens,
                                   " tokens; want one activation row per token"));
  }

  if (const std::string& docs_path = args.GetString("docs"); !docs_path.empty()) {
    SAEDICT_ASSIGN_OR_RETURN(in.docs, AsInputError(ReadDocsJsonl(docs_path, num_tokens)));
  } else {
    in.docs.push_back(DocSpan{0, 0, num_tokens});  // the whole file is document 0
  }
  if (const int64_t limit = args.GetInt("limit_docs"); limit > 0) {
    in.docs.resize(std::min<size_t>(in.docs.size(), static_cast<size_t>(limit)));
  }
  for (const DocSpan& d : in.docs) in.total_tokens += d.length;

  if (const std::string& vocab_path = args.GetString("vocab"); !vocab_path.empty()) {
    SAEDICT_ASSIGN_OR_RETURN(in.vocab, AsInputError(ReadVocabJson(vocab_path)));
    SAEDICT_RETURN_IF_ERROR(InputError(
        CheckTokensInVocab(in.tokens, in.docs, static_cast<int64_t>(in.vocab.size()), vocab_path)));
  }
  return in;
}

// The IngestDocument of `doc`: its token ids, display strings and rows.
absl::StatusOr<v1::IngestDocument> MakeDocument(const IngestInput& in, const DocSpan& doc) {
  v1::IngestDocument out;
  out.set_doc_id(doc.doc_id);
  out.mutable_token_ids()->assign(reinterpret_cast<const char*>(in.tokens.data() + doc.start),
                                  doc.length * sizeof(int32_t));
  if (!in.vocab.empty()) {
    for (int64_t p = 0; p < doc.length; ++p) {
      out.add_token_strings(in.vocab[in.tokens[doc.start + p]]);
    }
  }
  const Activations& a = in.activations;
  const int64_t row_bytes = a.cols * wire::DTypeSize(a.dtype);
  const int64_t shape[2] = {doc.length, a.cols};
  SAEDICT_ASSIGN_OR_RETURN(
      *out.mutable_activations(),
      wire::RawToTensor(absl::string_view(a.data).substr(doc.start * row_bytes, doc.length * row_bytes),
                  shape, a.dtype));
  return out;
}

absl::Status RunIngest(CommandEnv& env) {
  const ParsedArgs& args = env.args();
  const std::string& dictionary = env.positional(0);
  const std::string& corpus = args.GetString("corpus");
  if (corpus.empty()) return InputError("--corpus is required (the corpus name)");
  SAEDICT_RETURN_IF_ERROR(CheckName("--corpus", corpus));
  const int64_t batch_tokens = args.GetInt("batch_tokens");
  SAEDICT_RETURN_IF_ERROR(CheckRange("--batch_tokens", batch_tokens, 1, int64_t{1} << 30));
  SAEDICT_RETURN_IF_ERROR(CheckRange("--limit_docs", args.GetInt("limit_docs"), 0, INT64_MAX));
  SAEDICT_ASSIGN_OR_RETURN(const v1::ValuePrecision precision,
                           ParsePrecision(args.GetString("values")));
  SAEDICT_ASSIGN_OR_RETURN(const IngestInput in, ReadInput(args));
  const std::vector<std::pair<size_t, size_t>> batches = PlanBatches(in.docs, batch_tokens);

  v1::IngestRequest base;
  base.set_dictionary_id(dictionary);
  base.set_corpus(corpus);
  base.set_value_precision(precision);
  SAEDICT_ASSIGN_OR_RETURN(std::optional<v1::ComputeMode> mode,
                           ComputeModeArg(args.GetString("compute_mode"), args.GetBool("bf16")));
  if (mode.has_value()) base.set_compute_mode(*mode);

  std::optional<ProgressBar> progress;
  if (args.GetBool("progress") || IsTerminal(env.err())) {
    ProgressOptions options;
    options.label = "ingest";
    options.unit = "tokens";
    options.terminal = IsTerminal(env.err());
    progress.emplace(env.err(), in.total_tokens, std::move(options));
  }

  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  size_t next_batch = 0;  // writer thread
  v1::IngestAck last;     // this thread: the latest ack
  int64_t replaced = 0;
  // --timeout bounds each message; the stream as a whole gets one per batch.
  CallOptions call;
  call.timeout = env.global().timeout * static_cast<int64_t>(batches.size());
  const absl::Time start = absl::Now();
  absl::Status status = client->Ingest(
      [&]() -> absl::StatusOr<std::optional<v1::IngestRequest>> {
        if (next_batch == batches.size()) return std::nullopt;
        const auto [begin, end] = batches[next_batch++];
        v1::IngestRequest req = base;
        for (size_t d = begin; d < end; ++d) {
          SAEDICT_ASSIGN_OR_RETURN(*req.add_documents(), MakeDocument(in, in.docs[d]));
        }
        return req;
      },
      [&](const v1::IngestAck& ack) -> absl::Status {
        last = ack;
        replaced += ack.replaced_documents();
        if (progress.has_value()) progress->Update(ack.total_tokens());
        return absl::OkStatus();
      },
      call);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (progress.has_value()) progress->Finish();
  if (!status.ok()) {
    if (last.total_documents() == 0) return status;
    // Acknowledged batches stay stored: say how far it got.
    return absl::Status(
        status.code(),
        absl::StrCat(status.message(), " (", last.batch() + 1, " of ", batches.size(),
                     " batches were stored before the error: ", last.total_documents(),
                     " documents, ", last.total_tokens(), " tokens)"));
  }

  const double rate = seconds > 0 ? static_cast<double>(last.total_tokens()) / seconds : 0.0;
  if (env.global().json) {
    env.out() << absl::StrFormat(
        "{\"dictionary_id\":%s,\"corpus\":%s,\"documents\":%d,\"tokens\":%d,"
        "\"replaced_documents\":%d,\"batches\":%d,\"seconds\":%.3f,\"tokens_per_second\":%.1f}\n",
        JsonQuote(dictionary), JsonQuote(corpus), last.total_documents(), last.total_tokens(),
        replaced, batches.size(), seconds, rate);
  } else {
    env.out() << absl::StrFormat(
        "ingested %s documents (%s tokens, %s replaced) into corpus %s with %s in %.2f s "
        "(%s tokens/s, %d batches)\n",
        FormatCount(last.total_documents()), FormatCount(last.total_tokens()),
        FormatCount(replaced), corpus, dictionary, seconds, FormatCount(static_cast<int64_t>(rate)),
        batches.size());
  }
  return absl::OkStatus();
}

}  // namespace

const Command& IngestCommand() {
  static const Command* const kCommand = new Command{
      .name = "ingest",
      .positional = {"DICT"},
      .summary = "store a corpus's documents and their sparse codes under a dictionary",
      .details =
          "--tokens is a .npy of token ids [T] (int32 or int64); --activations a .npy\n"
          "[T, d_in] of the model's activations on those tokens (float32 or float16, sent\n"
          "as is; float64 is converted to float32). --docs is JSON lines\n"
          "  {\"doc_id\": 7, \"start\": 0, \"length\": 128, \"text\": \"...\"}\n"
          "(document = tokens[start, start+length); without it the whole file is document\n"
          "0); --vocab a JSON list of strings, token id -> display string, sent with each\n"
          "token. Whole documents are packed into messages of up to --batch_tokens tokens\n"
          "(a longer document goes alone); each is stored atomically and acknowledged,\n"
          "and on an error the batches acknowledged before it stay stored. Re-ingesting a\n"
          "document replaces it. Inputs are checked before anything is sent: bad input\n"
          "exits 2, a server error exits 1. Progress goes to stderr on a terminal or with\n"
          "--progress; the summary to stdout.",
      .flags = {ValueFlag("corpus", FlagKind::kString, "", "NAME",
                          "corpus to store the documents in (required)"),
                ValueFlag("tokens", FlagKind::kString, "", "TOKENS.npy",
                          "token ids [T], int32 or int64 (required)"),
                ValueFlag("activations", FlagKind::kString, "", "ACTS.npy",
                          "activations [T, d_in], float32 or float16 (required)"),
                ValueFlag("docs", FlagKind::kString, "", "DOCS.jsonl",
                          "document boundaries, one JSON object per line"),
                ValueFlag("vocab", FlagKind::kString, "", "VOCAB.json",
                          "JSON list of token display strings, indexed by token id"),
                ValueFlag("batch_tokens", FlagKind::kInt, "8192", "N",
                          "tokens per message (whole documents)"),
                ValueFlag("values", FlagKind::kString, "f32", "f32|f16",
                          "precision the latent values are stored in"),
                ValueFlag("compute_mode", FlagKind::kString, "", "MODE",
                          "f32, fast_exact (the f32 codes, faster) or bf16 (approximate); "
                          "default: the dictionary's default_compute_mode"),
                BoolFlag("bf16", "same as --compute_mode=bf16"),
                ValueFlag("limit_docs", FlagKind::kInt, "0", "N",
                          "ingest only the first N documents; 0 = all"),
                BoolFlag("progress", "show progress on stderr even when it is not a terminal")},
      .run = &RunIngest,
  };
  return *kCommand;
}

}  // namespace saedict::client
