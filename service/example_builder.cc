#include "service/example_builder.h"

#include <algorithm>

#include "util/status_macros.h"

namespace saedict::service {

absl::StatusOr<const ExampleBuilder::Loaded*> ExampleBuilder::Load(const std::string& corpus,
                                                                   uint64_t doc_id) {
  auto key = std::make_pair(corpus, doc_id);
  auto it = cache_.find(key);
  if (it != cache_.end()) return &it->second;
  Loaded loaded;
  SAEDICT_ASSIGN_OR_RETURN(loaded.document, store_->GetDocument(corpus, doc_id));
  SAEDICT_ASSIGN_OR_RETURN(loaded.codes, store_->GetCodes(dictionary_id_, corpus, doc_id));
  if (loaded.codes.has_value()) {
    const storage::DocumentCodes& codes = loaded.codes->codes;
    loaded.feature_values.resize(codes.num_rows);
    for (int64_t t = 0; t < codes.num_rows; ++t) {
      loaded.feature_values[t] = codes.ValueAt(t, feature_);
    }
  }
  return &cache_.emplace(std::move(key), std::move(loaded)).first->second;
}

absl::StatusOr<std::optional<v1::Example>> ExampleBuilder::Build(const storage::TokenRef& ref) {
  const storage::StoredDocument* document = ref.document.get();
  const std::vector<float>* values = ref.feature_values.get();
  if (document == nullptr || values == nullptr) {  // the store did not attach them: read
    SAEDICT_ASSIGN_OR_RETURN(const Loaded* loaded, Load(ref.corpus, ref.doc_id));
    if (!loaded->document.has_value() || !loaded->codes.has_value()) return std::nullopt;
    document = &*loaded->document;
    values = &loaded->feature_values;
  }
  const storage::StoredDocument& doc = *document;
  const int64_t n = static_cast<int64_t>(doc.token_ids.size());
  const int64_t pos = ref.position;
  if (pos >= n || static_cast<int64_t>(values->size()) != n) return std::nullopt;
  v1::Example example;
  example.set_corpus(ref.corpus);
  example.set_doc_id(ref.doc_id);
  example.set_position(pos);
  example.set_value(ref.value);
  const int64_t first = std::max<int64_t>(0, pos - window_);
  const int64_t last = std::min<int64_t>(n - 1, pos + window_);
  for (int64_t t = first; t <= last; ++t) {
    v1::ContextToken* token = example.add_context();
    token->set_token_id(doc.token_ids[t]);
    if (!doc.token_strings.empty()) token->set_token(doc.token_strings[t]);
    token->set_value((*values)[t]);
  }
  example.set_peak_index(static_cast<int32_t>(pos - first));
  return example;
}

}  // namespace saedict::service
