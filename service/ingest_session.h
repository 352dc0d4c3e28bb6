// IngestSession: the pipeline behind one Ingest stream. The caller (the gRPC
// handler's thread) validates and encodes each request message in Submit();
// a writer thread owned by the session stores the encoded batches through
// CorpusStore::WriteIngestBatch (one atomic, synced WriteBatch each) and then
// hands the acknowledgement to the AckSink, in request order. Encoding batch
// N+1 therefore overlaps storing batch N; at most `max_pending_batches`
// encoded batches wait for the writer (back-pressure on the stream).
//
// Errors end the session: nothing of the failing message is stored, and the
// batches before it are still written and acknowledged (a failed write
// stops the batches after it). Finish() returns the error of the lowest
// message index: INVALID_ARGUMENT (missing or
// changed dictionary_id / corpus, empty batch, token/activation count
// mismatch, wrong d_in, NaN, bad enum), NOT_FOUND (unknown dictionary, or
// deleted during the ingest), FAILED_PRECONDITION (the dictionary was
// replaced during the ingest — its later batches are refused, never stored
// under the new weights — or a document stored with other tokens that
// another dictionary uses), CANCELLED (the sink refused an
// ack: the client went away), and the store's INTERNAL / UNAVAILABLE.
// Messages are prefixed "stream message N: ".
//
// Thread safety: Submit() and Finish() must be called from one thread; the
// sink is called from the writer thread.
#ifndef SAEDICT_SERVICE_INGEST_SESSION_H_
#define SAEDICT_SERVICE_INGEST_SESSION_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/batcher.h"
#include "engine/encoder.h"
#include "saedict/v1/saedict.pb.h"
#include "service/dictionary_registry.h"
#include "storage/corpus_store.h"

namespace saedict::service {

struct IngestSessionOptions {
  int max_pending_batches = 2;  // encoded batches queued for the writer
  // Encodes go through this batcher (its queue bound answers
  // RESOURCE_EXHAUSTED, its deadline DEADLINE_EXCEEDED); null: the encoder
  // is called directly.
  engine::EncodeBatcher* batcher = nullptr;
  absl::Time deadline = absl::InfiniteFuture();  // the stream's
  // Tokens (activation rows) one request message may carry; 0: no limit.
  // A bigger message fails with RESOURCE_EXHAUSTED before it is encoded.
  int64_t max_request_tokens = 0;
};

class IngestSession {
 public:
  // Returns false when the ack cannot be delivered (client gone).
  using AckSink = std::function<bool(const v1::IngestAck&)>;

  // registry and store must outlive the session.
  IngestSession(DictionaryRegistry* registry, storage::CorpusStore* store, AckSink sink,
                IngestSessionOptions options = {});
  ~IngestSession();  // Finish()es if the caller did not

  // Validates and encodes one request message, then queues it for storage.
  // Blocks while the writer is max_pending_batches behind. Returns the error
  // of this message, or of an earlier batch's write / ack.
  absl::Status Submit(v1::IngestRequest request);

  // Waits for every queued batch to be stored and acknowledged; returns the
  // session's first error or OK.
  absl::Status Finish();

  int64_t batches_acknowledged() const;

 private:
  struct Pending {
    int64_t index = 0;
    storage::IngestBatch batch;
    engine::ComputeMode compute_mode = engine::ComputeMode::kF32;
  };
  // The batch to store and the compute mode that encoded it.
  absl::StatusOr<std::pair<storage::IngestBatch, engine::ComputeMode>> Prepare(
      const v1::IngestRequest& request);
  void WriterLoop();
  absl::Status FirstError() const;
  void RecordError(int64_t index, const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  DictionaryRegistry* const registry_;
  storage::CorpusStore* const store_;
  const AckSink sink_;
  const IngestSessionOptions options_;

  // Stream state, touched only by the Submit() thread.
  std::string dictionary_id_;
  std::string corpus_;
  std::shared_ptr<const engine::Encoder> encoder_;
  int64_t next_index_ = 0;
  bool finished_ = false;

  mutable absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);  // of the lowest message index
  int64_t error_index_ ABSL_GUARDED_BY(mu_) = 0;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;  // stop writing queued batches
  int64_t acknowledged_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t total_documents_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t total_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread writer_;  // last: started after everything above exists
};

// [A-Za-z0-9._-]{1,128}, not "." or "..": the rule for corpus names.
// INVALID_ARGUMENT naming `field` and the value otherwise.
absl::Status ValidateCorpusName(const std::string& corpus, const char* field = "corpus");

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_INGEST_SESSION_H_
