// The demo corpus: a small synthetic corpus "demo" that a fresh saedictd
// ingests into the demo dictionary (through the real ingest pipeline), so
// feature pages, top examples and document views work before any real data
// is sent. 200 documents of 64 tokens over a 256-word made-up vocabulary;
// each word plants three of the dictionary's features in its activation
// (a weighted sum of their decoder directions plus a little noise), so a
// feature's top examples are the words that carry it. Deterministic.
//
// Thread safety: pure functions.
#ifndef SAEDICT_SERVER_DEMO_CORPUS_H_
#define SAEDICT_SERVER_DEMO_CORPUS_H_

#include <vector>

#include "absl/status/status.h"
#include "engine/dictionary.h"
#include "saedict/v1/saedict.pb.h"
#include "service/service_core.h"

namespace saedict::server {

inline constexpr char kDemoCorpus[] = "demo";

// Ingest request messages (about 4k tokens each) for `dict` (the demo
// dictionary: its d_in and decoder directions), the first naming
// `dictionary_id` and kDemoCorpus.
std::vector<v1::IngestRequest> MakeDemoCorpusRequests(const engine::Dictionary& dict,
                                                      const std::string& dictionary_id);

// Ingests the demo corpus into `dictionary_id` unless that dictionary
// already holds documents.
absl::Status EnsureDemoCorpus(service::ServiceCore& core, storage::CorpusStore& store,
                              const engine::Dictionary& dict, const std::string& dictionary_id);

}  // namespace saedict::server

#endif  // SAEDICT_SERVER_DEMO_CORPUS_H_
