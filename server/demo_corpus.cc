#include "server/demo_corpus.h"

#include <cmath>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "util/log.h"
#include "util/status_macros.h"

namespace saedict::server {
namespace {

constexpr int kDocuments = 200;
constexpr int kTokensPerDocument = 64;
constexpr int kWords = 256;
constexpr int kFeaturesPerWord = 3;
constexpr int kDocumentsPerMessage = 64;

// kWords made-up words from syllables ("kalo", "mirute", ...), each with a
// leading space like a tokenizer's word pieces.
std::vector<std::string> Vocabulary() {
  static const char* kSyllables[] = {"ka", "lo", "mi", "ru", "te", "sa", "no", "vi",
                                     "pe", "zu", "ba", "do", "fi", "go", "ha", "ju"};
  std::vector<std::string> words;
  for (int w = 0; w < kWords; ++w) {
    words.push_back(absl::StrCat(" ", kSyllables[w % 16], kSyllables[(w / 16) % 16],
                                 w % 3 == 0 ? kSyllables[(w * 7) % 16] : ""));
  }
  return words;
}

}  // namespace

std::vector<v1::IngestRequest> MakeDemoCorpusRequests(const engine::Dictionary& dict,
                                                      const std::string& dictionary_id) {
  const int64_t d_in = dict.config.d_in, d_sae = dict.config.d_sae;
  const std::vector<std::string> vocab = Vocabulary();
  std::mt19937_64 rng(20261130);
  std::normal_distribution<float> noise(0.0f, 0.05f);
  std::uniform_real_distribution<float> weight(0.5f, 3.0f);
  // Zipf-like word frequencies: word w drawn with weight 1 / (w + 1).
  std::vector<double> freq(kWords);
  for (int w = 0; w < kWords; ++w) freq[w] = 1.0 / (w + 1);
  std::discrete_distribution<int> word(freq.begin(), freq.end());

  std::vector<v1::IngestRequest> requests;
  for (int doc = 0; doc < kDocuments; ++doc) {
    if (doc % kDocumentsPerMessage == 0) requests.emplace_back();
    v1::IngestDocument* out = requests.back().add_documents();
    out->set_doc_id(doc);
    std::vector<int32_t> ids(kTokensPerDocument);
    std::vector<float> x(static_cast<size_t>(kTokensPerDocument * d_in));
    for (int t = 0; t < kTokensPerDocument; ++t) {
      const int w = word(rng);
      ids[t] = w;
      out->add_token_strings(vocab[w]);
      float* row = x.data() + static_cast<int64_t>(t) * d_in;
      for (int64_t i = 0; i < d_in; ++i) row[i] = noise(rng);
      for (int j = 0; j < kFeaturesPerWord; ++j) {
        const int64_t f = (static_cast<int64_t>(w) * 131 + j * 17) % d_sae;
        const float a = weight(rng);
        for (int64_t i = 0; i < d_in; ++i) row[i] += a * dict.w_dec[f * d_in + i];
      }
    }
    out->set_token_ids(
        std::string(reinterpret_cast<const char*>(ids.data()), ids.size() * sizeof(int32_t)));
    v1::Tensor* acts = out->mutable_activations();
    acts->set_dtype(v1::DTYPE_F32);
    acts->add_shape(kTokensPerDocument);
    acts->add_shape(d_in);
    acts->set_data(std::string(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float)));
  }
  requests.front().set_dictionary_id(dictionary_id);
  requests.front().set_corpus(kDemoCorpus);
  return requests;
}

absl::Status EnsureDemoCorpus(service::ServiceCore& core, storage::CorpusStore& store,
                              const engine::Dictionary& dict, const std::string& dictionary_id) {
  SAEDICT_ASSIGN_OR_RETURN(storage::DictionaryTotals totals,
                           store.GetDictionaryTotals(dictionary_id));
  if (totals.documents > 0) return absl::OkStatus();
  std::unique_ptr<service::IngestSession> session =
      core.StartIngest([](const v1::IngestAck&) { return true; });
  for (v1::IngestRequest& request : MakeDemoCorpusRequests(dict, dictionary_id)) {
    SAEDICT_RETURN_IF_ERROR(session->Submit(std::move(request)));
  }
  SAEDICT_RETURN_IF_ERROR(session->Finish());
  LogInfo(absl::StrCat("ingested the demo corpus '", kDemoCorpus, "' (", kDocuments, " documents, ",
                       kDocuments * kTokensPerDocument, " tokens) into '", dictionary_id, "'"));
  return absl::OkStatus();
}

}  // namespace saedict::server
