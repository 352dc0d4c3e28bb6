// Comparisons::CompareDictionaries (see comparisons.h): request checks, the
// decoder or activation method of compare/, and the streamed answer.
#include <chrono>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "compare/activation_matching.h"
#include "compare/decoder_matching.h"
#include "compare/decoder_svcca.h"
#include "service/comparisons.h"
#include "util/status_macros.h"

namespace saedict::service {
namespace {

constexpr double kDefaultThreshold = 0.7;
constexpr int kDefaultMatchesPerMessage = 1024;
constexpr int kMaxMatchesPerMessage = 65536;

// Forwards progress to the sink, at most one message per percent of a phase.
class ProgressStream {
 public:
  explicit ProgressStream(const Comparisons::CompareSink& sink) : sink_(sink) {}
  void operator()(const char* phase, double fraction) {
    if (phase == phase_ && (fraction <= last_ || (fraction < last_ + 0.01 && fraction < 1.0))) {
      return;
    }
    phase_ = phase;
    last_ = fraction;
    v1::CompareDictionariesResponse m;
    m.mutable_progress()->set_phase(phase_);
    m.mutable_progress()->set_fraction(fraction);
    if (!sink_(m)) gone_ = true;
  }
  bool gone() const { return gone_; }

 private:
  const Comparisons::CompareSink& sink_;
  std::string phase_;
  double last_ = -1;
  bool gone_ = false;
};

struct Side {
  std::shared_ptr<const engine::Encoder> encoder;
  const engine::Dictionary& dictionary() const { return encoder->dictionary(); }
};

// Streams one side's matches in batches of `per_message`.
absl::Status SendMatches(v1::CompareSide side, const std::vector<v1::FeatureMatch>& matches,
                         int per_message, const Comparisons::CompareSink& sink) {
  for (size_t first = 0; first < matches.size(); first += per_message) {
    v1::CompareDictionariesResponse m;
    v1::FeatureMatches* batch = m.mutable_matches();
    batch->set_side(side);
    const size_t last = std::min(matches.size(), first + per_message);
    for (size_t i = first; i < last; ++i) *batch->add_matches() = matches[i];
    if (!sink(m)) return absl::CancelledError("the client closed the stream");
  }
  return absl::OkStatus();
}

v1::FeatureMatch Match(int64_t feature, int64_t partner, double similarity, double threshold) {
  v1::FeatureMatch m;
  m.set_feature(feature);
  m.set_best_partner(partner);
  m.set_best_similarity(similarity);
  m.set_assigned_partner(-1);
  m.set_matched(partner >= 0 && similarity >= threshold);
  return m;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

compare::TokenPairSource StoredTokenPairs(storage::CorpusStore* corpus, std::string dictionary_a,
                                          std::string dictionary_b, std::string corpus_name,
                                          int64_t* documents) {
  return [=](const compare::TokenPairVisitor& visit) -> absl::Status {
    if (documents != nullptr) *documents = 0;
    return corpus->ScanCodePairs(
        dictionary_a, dictionary_b, corpus_name,
        [&](uint64_t doc, const storage::StoredCodes& sa,
            const storage::StoredCodes& sb) -> absl::Status {
          if (documents != nullptr) ++*documents;
          const SparseCodes& xa = sa.codes;
          const SparseCodes& xb = sb.codes;
          if (xa.num_rows != xb.num_rows) {
            return absl::FailedPreconditionError(
                absl::StrCat("corpus '", corpus_name, "' document ", doc, " has ", xa.num_rows,
                             " tokens under '", dictionary_a, "' and ", xb.num_rows, " under '",
                             dictionary_b, "'"));
          }
          for (int64_t t = 0; t < xa.num_rows; ++t) {
            const uint64_t a0 = xa.row_offsets[t], a1 = xa.row_offsets[t + 1];
            const uint64_t b0 = xb.row_offsets[t], b1 = xb.row_offsets[t + 1];
            SAEDICT_RETURN_IF_ERROR(visit({absl::MakeConstSpan(xa.indices).subspan(a0, a1 - a0),
                                           absl::MakeConstSpan(xa.values).subspan(a0, a1 - a0)},
                                          {absl::MakeConstSpan(xb.indices).subspan(b0, b1 - b0),
                                           absl::MakeConstSpan(xb.values).subspan(b0, b1 - b0)}));
          }
          return absl::OkStatus();
        });
  };
}

absl::Status Comparisons::CompareDictionaries(const v1::CompareDictionariesRequest& r,
                                              const CompareSink& sink,
                                              const std::function<bool()>& cancelled) const {
  const auto start = std::chrono::steady_clock::now();
  if (r.dictionary_a().empty()) {
    return absl::InvalidArgumentError("dictionary_a: empty; expected a loaded dictionary id");
  }
  if (r.dictionary_b().empty()) {
    return absl::InvalidArgumentError("dictionary_b: empty; expected a loaded dictionary id");
  }
  if (r.method() != v1::COMPARE_METHOD_DECODER && r.method() != v1::COMPARE_METHOD_ACTIVATION) {
    return absl::InvalidArgumentError(
        absl::StrCat("method: ", v1::CompareMethod_Name(r.method()),
                     " is not a method; expected COMPARE_METHOD_DECODER or "
                     "COMPARE_METHOD_ACTIVATION"));
  }
  const double threshold = r.has_match_threshold() ? r.match_threshold() : kDefaultThreshold;
  if (!(threshold >= -1 && threshold <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "match_threshold: ", r.match_threshold(), " is out of range; expected -1..1 (unset: 0.7)"));
  }
  const int per_message =
      r.matches_per_message() == 0 ? kDefaultMatchesPerMessage : r.matches_per_message();
  if (per_message < 1 || per_message > kMaxMatchesPerMessage) {
    return absl::InvalidArgumentError(absl::StrCat("matches_per_message: ", r.matches_per_message(),
                                                   " is out of range; expected 0..",
                                                   kMaxMatchesPerMessage));
  }
  if (r.method() == v1::COMPARE_METHOD_ACTIVATION && r.corpus().empty()) {
    return absl::InvalidArgumentError(
        "corpus: empty; the activation method needs the corpus both dictionaries were "
        "ingested on");
  }
  Side a, b;
  SAEDICT_ASSIGN_OR_RETURN(a.encoder, registry_->GetEncoder(r.dictionary_a()));
  SAEDICT_ASSIGN_OR_RETURN(b.encoder, registry_->GetEncoder(r.dictionary_b()));
  const engine::DictionaryConfig& ca = a.dictionary().config;
  const engine::DictionaryConfig& cb = b.dictionary().config;

  ProgressStream progress(sink);
  auto stop = [&] { return progress.gone() || (cancelled && cancelled()); };
  auto on_progress = [&](const char* phase, double fraction) { progress(phase, fraction); };

  v1::CompareDictionariesResponse head;
  v1::CompareSummary& s = *head.mutable_summary();
  s.set_method(r.method());
  s.set_dictionary_a(r.dictionary_a());
  s.set_dictionary_b(r.dictionary_b());
  s.set_weights_sha256_a(a.encoder->content_sha256());
  s.set_weights_sha256_b(b.encoder->content_sha256());
  s.set_size_a(ca.d_sae);
  s.set_size_b(cb.d_sae);
  s.set_d_in_a(ca.d_in);
  s.set_d_in_b(cb.d_in);
  s.set_match_threshold(threshold);
  std::vector<v1::FeatureMatch> matches_a, matches_b;

  if (r.method() == v1::COMPARE_METHOD_DECODER) {
    compare::DecoderMatchOptions options;
    options.match_threshold = threshold;
    options.one_to_one = !r.skip_assignment();
    SAEDICT_ASSIGN_OR_RETURN(
        compare::DecoderComparison c,
        compare::CompareDecoders(a.dictionary(), b.dictionary(), options, on_progress, stop));
    s.set_mean_max_a_to_b(c.mmcs_a_to_b);
    s.set_mean_max_b_to_a(c.mmcs_b_to_a);
    s.set_frac_matched_a(c.frac_matched_a);
    s.set_frac_matched_b(c.frac_matched_b);
    s.set_has_assignment(c.has_assignment);
    s.set_gemm_seconds(c.gemm_seconds);
    s.set_assignment_seconds(c.assignment_seconds);
    for (size_t i = 0; i < c.a_to_b.size(); ++i) {
      matches_a.push_back(Match(i, c.a_to_b[i].partner, c.a_to_b[i].cosine, threshold));
    }
    for (size_t j = 0; j < c.b_to_a.size(); ++j) {
      matches_b.push_back(Match(j, c.b_to_a[j].partner, c.b_to_a[j].cosine, threshold));
    }
    if (c.has_assignment) {
      int64_t pairs = 0;
      for (size_t i = 0; i < c.assignment_a_to_b.size(); ++i) {
        const int64_t j = c.assignment_a_to_b[i];
        if (j < 0) continue;
        ++pairs;
        matches_a[i].set_assigned_partner(j);
        matches_a[i].set_assigned_similarity(c.assignment_cosine[i]);
        matches_b[j].set_assigned_partner(static_cast<int64_t>(i));
        matches_b[j].set_assigned_similarity(c.assignment_cosine[i]);
      }
      s.set_assigned_pairs(pairs);
      s.set_assignment_mean(c.assignment_mean);
      s.set_unmatched_a(static_cast<int64_t>(c.unmatched_a.size()));
      s.set_unmatched_b(static_cast<int64_t>(c.unmatched_b.size()));
    }
  } else {
    const std::string& corpus = r.corpus();
    int64_t shared_documents = 0;
    const compare::TokenPairSource source =
        StoredTokenPairs(corpus_, r.dictionary_a(), r.dictionary_b(), corpus, &shared_documents);
    compare::ActivationMatchOptions options;
    options.match_threshold = threshold;
    absl::StatusOr<compare::ActivationComparison> run =
        compare::CompareActivations(source, ca.d_sae, cb.d_sae, options, on_progress, stop);
    if (absl::IsFailedPrecondition(run.status()) && shared_documents == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("'", r.dictionary_a(), "' and '", r.dictionary_b(),
                       "' share no ingested tokens on corpus '", corpus,
                       "'; ingest the same documents under both first"));
    }
    SAEDICT_RETURN_IF_ERROR(run.status());
    const compare::ActivationComparison& c = *run;
    s.set_mean_max_a_to_b(c.mean_max_corr_a_to_b);
    s.set_mean_max_b_to_a(c.mean_max_corr_b_to_a);
    s.set_frac_matched_a(c.frac_matched_a);
    s.set_frac_matched_b(c.frac_matched_b);
    s.set_tokens(c.tokens);
    s.set_passes(c.passes);
    s.set_alive_a(c.alive_a);
    s.set_alive_b(c.alive_b);
    s.set_svcca(c.svcca);
    s.set_svcca_pairs(c.svcca_pairs);
    s.set_svcca_dims_a(c.svcca_dims_a);
    s.set_svcca_dims_b(c.svcca_dims_b);
    for (double v : c.svcca_correlations) s.add_svcca_correlations(v);
    absl::StatusOr<compare::DecoderSvccaResult> lan =
        compare::DecoderSvcca(a.dictionary(), b.dictionary(), c.a_to_b, threshold);
    if (lan.ok()) {
      s.set_svcca_decoder(lan->svcca.mean);
      s.set_svcca_decoder_pairs(lan->pairs);
    } else if (lan.status().code() != absl::StatusCode::kFailedPrecondition) {
      return lan.status();  // too few pairs leaves it unset; anything else is an error
    }
    for (size_t i = 0; i < c.a_to_b.size(); ++i) {
      matches_a.push_back(Match(i, c.a_to_b[i].partner, c.a_to_b[i].correlation, threshold));
    }
    for (size_t j = 0; j < c.b_to_a.size(); ++j) {
      matches_b.push_back(Match(j, c.b_to_a[j].partner, c.b_to_a[j].correlation, threshold));
    }
  }
  if (progress.gone()) return absl::CancelledError("the client closed the stream");
  s.set_seconds(SecondsSince(start));
  if (!sink(head)) return absl::CancelledError("the client closed the stream");
  if (r.skip_matches()) return absl::OkStatus();
  SAEDICT_RETURN_IF_ERROR(SendMatches(v1::COMPARE_SIDE_A, matches_a, per_message, sink));
  return SendMatches(v1::COMPARE_SIDE_B, matches_b, per_message, sink);
}

}  // namespace saedict::service
