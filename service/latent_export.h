// LatentExport: ExportLatents — a stored corpus's latents under one
// dictionary, streamed in the order delphi's latent cache is written
// (layout: saedict.proto, ExportLatentsRequest), so an auto-interpretation
// pipeline runs on what saedict stored without re-encoding.
//
// Messages: one Header; Sequences messages covering every sequence in
// order (documents in id order, each split into ceil(length / ctx_len)
// sequences); then for each split in order its entries in SplitChunk
// messages, in (sequence, position, latent) order, the last one marked.
// Values are the stored ones rounded to f16 (delphi keeps f16).
//
// The corpus is read once to list its documents and once per split; a
// document added, removed or re-ingested with another length in between
// fails the export with ABORTED (run it again) rather than mixing states.
//
// Errors: INVALID_ARGUMENT (empty corpus name, n_splits / ctx_len /
// pad_token_id out of range), NOT_FOUND (unknown dictionary; a corpus with
// no documents stored under the dictionary), ABORTED (see above),
// CANCELLED when the sink refuses a message or `cancelled` turns true.
//
// Thread safety: Export may be called concurrently.
#ifndef SAEDICT_SERVICE_LATENT_EXPORT_H_
#define SAEDICT_SERVICE_LATENT_EXPORT_H_

#include <functional>

#include "absl/status/status.h"
#include "saedict/v1/saedict.pb.h"
#include "service/dictionary_registry.h"
#include "storage/corpus_store.h"

namespace saedict::service {

class LatentExport {
 public:
  // Both must outlive this object.
  LatentExport(DictionaryRegistry* registry, storage::CorpusStore* store)
      : registry_(registry), store_(store) {}

  // `sink` returns false when the client is gone.
  using Sink = std::function<bool(const v1::ExportLatentsResponse&)>;
  absl::Status Export(const v1::ExportLatentsRequest& r, const Sink& sink,
                      const std::function<bool()>& cancelled = nullptr) const;

 private:
  DictionaryRegistry* const registry_;
  storage::CorpusStore* const store_;
};

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_LATENT_EXPORT_H_
