// EvaluateSession (see comparisons.h): the first message chooses the
// dictionary and the source (a stored corpus, or sent activations in
// chunks), then each chunk is encoded through the batcher, decoded and fed
// to compare::Evaluation; Finish() writes the SAEBench core report.
#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "compare/saebench_json.h"
#include "service/comparisons.h"
#include "service/proto_convert.h"
#include "util/status_macros.h"
#include "wire/wire_codec.h"

namespace saedict::service {
namespace {

constexpr int64_t kDefaultContextSize = 128;
constexpr int64_t kMaxContextSize = int64_t{1} << 20;
// Dark matter costs ~2 d_in^2 flops per token (two moment matrices): the
// default keeps it near 2^37 flops (seconds on 2 cores even with OpenBLAS's
// baseline kernels), between 4096 and 131072 tokens.
int64_t DefaultDarkMatterTokens(int64_t d_in) {
  return std::clamp<int64_t>((int64_t{1} << 36) / (d_in * d_in), 4096, 131072);
}
constexpr int64_t kMaxDarkMatterTokens = int64_t{1} << 24;

// A random version-4 UUID (the report's eval_id when the caller names none).
std::string RandomUuid() {
  std::random_device rd;
  std::mt19937_64 rng((uint64_t{rd()} << 32) ^ rd());
  const uint64_t hi = (rng() & ~uint64_t{0xF000}) | 0x4000;                      // version 4
  const uint64_t lo = (rng() & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);  // variant 10
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF,
                         lo >> 48, lo & 0xFFFFFFFFFFFFull);
}

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

absl::Status EvaluateSession::Start(const v1::EvaluateRequest& r) {
  if (r.dictionary_id().empty()) {
    return absl::InvalidArgumentError(
        "dictionary_id: empty; the first message names the dictionary to evaluate");
  }
  dictionary_id_ = r.dictionary_id();
  SAEDICT_ASSIGN_OR_RETURN(encoder_, registry_->GetEncoder(dictionary_id_));
  if (const engine::DictionaryConfig& c = encoder_->dictionary().config; c.is_transcoder()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dictionary_id: '", dictionary_id_, "' is a transcoder (decodes to ",
        c.hook_name_out.empty() ? absl::StrCat("d_out ", c.d_out) : c.hook_name_out,
        "); evaluation compares reconstructions with their input and needs an SAE"));
  }
  const v1::EvaluateOptions& o = r.options();
  options_.context_size = o.context_size() == 0 ? kDefaultContextSize : o.context_size();
  if (options_.context_size < 1 || options_.context_size > kMaxContextSize) {
    return absl::InvalidArgumentError(absl::StrCat("options.context_size: ", o.context_size(),
                                                   " is out of range; expected 0 (128) or 1..",
                                                   kMaxContextSize));
  }
  options_.dark_matter_max_tokens =
      o.dark_matter_max_tokens() == 0 ? DefaultDarkMatterTokens(encoder_->dictionary().config.d_in)
                                      : o.dark_matter_max_tokens();
  if (options_.dark_matter_max_tokens < 0 ||
      options_.dark_matter_max_tokens > kMaxDarkMatterTokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.dark_matter_max_tokens: ", o.dark_matter_max_tokens(),
                     " is out of range; expected 0 (automatic) or 1..", kMaxDarkMatterTokens));
  }
  options_.per_token_error_norms = o.per_token_error_norms();
  eval_id_ = r.eval_id().empty() ? RandomUuid() : r.eval_id();
  corpus_name_ = r.corpus();
  if (!corpus_name_.empty() && r.has_activations()) {
    return absl::InvalidArgumentError(
        "activations: sent with corpus; evaluate either a stored corpus or sent activations");
  }
  evaluation_.emplace(encoder_->shared_dictionary(), options_);
  return absl::OkStatus();
}

absl::Status EvaluateSession::Add(const v1::EvaluateRequest& r) {
  const int64_t index = messages_++;
  auto prefixed = [index](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("evaluate message ", index, ": ", s.message()));
  };
  if (index == 0) {
    if (absl::Status s = Start(r); !s.ok()) return prefixed(s);
  } else {
    if (!r.dictionary_id().empty() && r.dictionary_id() != dictionary_id_) {
      return prefixed(absl::InvalidArgumentError(
          absl::StrCat("dictionary_id: '", r.dictionary_id(), "' differs from the stream's '",
                       dictionary_id_, "'; leave it empty after the first message")));
    }
    if (!corpus_name_.empty()) {
      return prefixed(absl::InvalidArgumentError(
          "a corpus evaluation is one message; later messages are not accepted"));
    }
    if (!r.corpus().empty()) {
      return prefixed(
          absl::InvalidArgumentError("corpus: only the first message may name a corpus"));
    }
  }
  if (!r.has_activations()) {
    if (r.end_of_prompt()) evaluation_->EndPrompt();
    return absl::OkStatus();
  }
  const engine::DictionaryConfig& config = encoder_->dictionary().config;
  absl::StatusOr<wire::DenseRows> x =
      wire::DecodeMatrix(r.activations(), config.d_in, "activations");
  if (!x.ok()) return prefixed(x.status());
  engine::EncodeOptions encode;
  encode.return_reconstruction = true;
  absl::StatusOr<engine::EncodeResult> encoded =
      batcher_->Encode(encoder_, x->values, x->rows, encode, deadline_);
  if (!encoded.ok()) return prefixed(encoded.status());
  if (absl::Status s =
          evaluation_->AddActivations(x->values, encoded->codes, encoded->reconstruction);
      !s.ok()) {
    return prefixed(s);
  }
  if (r.end_of_prompt()) evaluation_->EndPrompt();
  return absl::OkStatus();
}

absl::StatusOr<v1::EvaluateResponse> EvaluateSession::Finish(
    const std::function<bool()>& cancelled) {
  if (!evaluation_.has_value()) {
    return absl::InvalidArgumentError("evaluate: the stream sent no message");
  }
  if (!corpus_name_.empty()) {
    int64_t documents = 0;
    SAEDICT_RETURN_IF_ERROR(corpus_->ScanCodePairs(
        dictionary_id_, dictionary_id_, corpus_name_,
        [&](uint64_t, const storage::StoredCodes& stored, const storage::StoredCodes&) {
          ++documents;
          if (cancelled && cancelled()) return absl::CancelledError("evaluate: cancelled");
          SparseCodes codes = stored.codes;  // the store does not keep d_sae per record
          codes.num_features = encoder_->dictionary().config.d_sae;
          return evaluation_->AddDocumentCodes(codes);
        }));
    if (documents == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "corpus '", corpus_name_, "' has no documents ingested under '", dictionary_id_, "'"));
    }
  }
  if (evaluation_->tokens() == 0) {
    return absl::InvalidArgumentError("activations: the stream sent no rows to evaluate");
  }
  SAEDICT_ASSIGN_OR_RETURN(compare::EvaluationResult result, evaluation_->Finish(cancelled));
  compare::SaeBenchContext context = compare::SaeBenchContextFor(encoder_->dictionary().config);
  context.eval_id = eval_id_;
  context.dictionary_id = dictionary_id_;
  context.weights_sha256 = encoder_->content_sha256();
  context.source = corpus_name_.empty() ? "activations" : absl::StrCat("corpus:", corpus_name_);
  context.datetime_epoch_millis = NowMillis();
  context.context_size = options_.context_size;

  v1::EvaluateResponse out;
  out.set_saebench_json(compare::SaeBenchCoreJson(result, context));
  out.set_tokens(result.tokens);
  out.set_prompts(result.prompts);
  out.set_weights_sha256(encoder_->content_sha256());
  out.set_compute_mode(ToProto(engine::ComputeMode::kF32));
  for (const std::string& name : compare::AbsentMetrics(result)) out.add_absent_metrics(name);
  if (options_.per_token_error_norms && corpus_name_.empty()) {
    const int64_t n = static_cast<int64_t>(result.per_token_error_norms.size());
    *out.mutable_per_token_error_norms() = wire::EncodeTensor(result.per_token_error_norms, {n});
  }
  return out;
}

}  // namespace saedict::service
