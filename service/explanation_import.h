// ExplanationImport: one ImportExplanations stream — explanations in bulk
// from a Neuronpedia export or a delphi run (formats: saedict.proto,
// ExplanationFormat).
//
// Neuronpedia: each file is JSON Lines (gzip recognised by its magic bytes),
// one object per line with modelId, layer, index (string or integer),
// description, and optionally typeName (-> source; default "neuronpedia"),
// explanationModelName (-> explainer_model), scoreV1 / scoreV2 (-> score,
// scoreV1 preferred), authorId (-> author). "modelId/layer" picks the
// dictionary through the header's map, else default_dictionary_id.
// delphi: files named {module}_latent{index}.txt (any folder prefix) holding
// one JSON string; module picks the dictionary the same way; source
// "delphi".
//
// A bad row (malformed JSON, missing or wrong-typed field, no dictionary for
// its key, index >= d_sae, empty or too long text) is skipped and reported
// with its file and 1-based line; a file that cannot be read at all (bad
// gzip, over the size limit, a delphi name that does not parse) is reported
// with line 0. Good rows are written in batches as they are parsed: what the
// response counts as imported is stored even if the stream fails later.
// The stream itself fails (and the import stops) only for a missing or
// repeated header, an unknown format, a header naming an unknown dictionary,
// or a storage error.
//
// Thread safety: one stream, one thread.
#ifndef SAEDICT_SERVICE_EXPLANATION_IMPORT_H_
#define SAEDICT_SERVICE_EXPLANATION_IMPORT_H_

#include <cstddef>
#include <map>
#include <tuple>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "saedict/v1/saedict.pb.h"
#include "service/explanations.h"

namespace saedict::service {

struct ImportLimits {
  size_t max_file_bytes = 512u << 20;  // one file as sent (compressed or not)
  size_t max_unpacked_bytes = 2u << 30;  // one file after gunzip
  size_t batch_rows = 2000;              // rows per storage write
  size_t max_problems = 1000;            // problems listed (all are counted)
};

class ExplanationImport {
 public:
  // `explanations` must outlive the import.
  explicit ExplanationImport(Explanations* explanations, ImportLimits limits = {})
      : explanations_(explanations), limits_(limits) {}

  // The next stream message; the first must carry the header.
  absl::Status Add(const v1::ImportExplanationsRequest& message);
  // After the last message: parses the last file and answers.
  absl::StatusOr<v1::ImportExplanationsResponse> Finish();

 private:
  struct Row {
    std::string key;  // modelId/layer or module, for the dictionary map
    uint32_t feature = 0;
    int64_t line = 0;
    v1::SetExplanationRequest fields;  // text, source, score, author, explainer_model
  };
  absl::Status EndFile();
  absl::Status ParseNeuronpedia(const std::string& file, const std::string& bytes);
  absl::Status ParseDelphi(const std::string& file, const std::string& bytes);
  absl::Status AddRow(const std::string& file, Row row);
  absl::Status Flush();
  void Problem(const std::string& file, int64_t line, std::string message);

  Explanations* const explanations_;
  const ImportLimits limits_;
  bool have_header_ = false;
  int64_t messages_ = 0;
  v1::ImportExplanationsRequest::Header header_;
  std::string file_name_;
  std::string file_bytes_;
  bool file_too_big_ = false;
  std::vector<storage::StoredExplanation> pending_;
  std::vector<storage::ExplanationKey> pending_remove_;
  // Keys of this import's earlier rows per (dictionary, feature, source),
  // for replace_same_source: what was there before the import is removed
  // once, what the import itself added stays.
  std::map<std::tuple<std::string, uint32_t, std::string>, bool> replaced_;
  v1::ImportExplanationsResponse response_;
};

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_EXPLANATION_IMPORT_H_
