// ExampleBuilder: turns inverted-index entries (TokenRef) of one feature into
// wire Examples with a context window: the tokens [position - window,
// position + window] of the document (clipped to it) and the feature's
// activation on each, from the document's stored codes: those the store
// attached to the TokenRef (read under the index scan's snapshot, no second
// read), else read here once per document per builder.
//
// Thread safety: not thread-safe; use one per request.
#ifndef SAEDICT_SERVICE_EXAMPLE_BUILDER_H_
#define SAEDICT_SERVICE_EXAMPLE_BUILDER_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "saedict/v1/saedict.pb.h"
#include "storage/corpus_store.h"

namespace saedict::service {

class ExampleBuilder {
 public:
  ExampleBuilder(storage::CorpusStore* store, std::string dictionary_id, uint32_t feature,
                 int window)
      : store_(store), dictionary_id_(std::move(dictionary_id)), feature_(feature), window_(window) {}

  // nullopt when the entry no longer matches its document (a concurrent
  // re-ingest replaced it between the index read and this one).
  absl::StatusOr<std::optional<v1::Example>> Build(const storage::TokenRef& ref);

 private:
  struct Loaded {
    std::optional<storage::StoredDocument> document;
    std::optional<storage::StoredCodes> codes;
    std::vector<float> feature_values;  // the feature's value at each row of codes
  };
  absl::StatusOr<const Loaded*> Load(const std::string& corpus, uint64_t doc_id);

  storage::CorpusStore* const store_;
  const std::string dictionary_id_;
  const uint32_t feature_;
  const int window_;
  std::map<std::pair<std::string, uint64_t>, Loaded> cache_;
};

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_EXAMPLE_BUILDER_H_
