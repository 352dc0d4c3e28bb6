// EncodeBatcher: dynamic batching in front of Encoder::Encode.
//
// Concurrent callers' requests for the same encoder and the same options are
// merged into one Encode call of up to max_batch_tokens rows; a batch is
// dispatched when full or when its oldest request has waited
// max_queue_delay. The queue is bounded: a request that would push the
// queued rows past max_queued_tokens fails at once with RESOURCE_EXHAUSTED.
// A single request larger than max_batch_tokens is encoded on its own.
// Results are bit-identical to calling Encode directly (F32 mode is
// batch-invariant, encoder.h), whether or not the request was merged. BF16
// mode has no such guarantee.
//
// Thread safety: Encode() may be called from any number of threads. The
// destructor drains the queue (every pending caller gets its result) and
// joins the worker threads.
#ifndef SAEDICT_ENGINE_BATCHER_H_
#define SAEDICT_ENGINE_BATCHER_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/batch_runner.h"
#include "engine/clock.h"
#include "engine/encoder.h"

namespace saedict::engine {

// What the batcher reports about each batch it runs, for metrics.
struct BatchReport {
  int64_t rows = 0;                              // rows encoded in one Encoder::Encode call
  int requests = 0;                              // callers merged into it
  absl::Duration queue_delay;                    // how long its oldest request waited
  absl::Duration encode_time;                    // Encoder::Encode's wall time
  ComputeMode compute_mode = ComputeMode::kF32;  // the mode that ran (requested on failure)
  bool ok = true;
};

// Receives BatchReports. Called from the batch threads and from Encode()
// callers (rejections), so implementations must be thread-safe and quick.
class BatchObserver {
 public:
  virtual ~BatchObserver() = default;
  virtual void OnBatch(const BatchReport& report) = 0;
  // A request of `rows` rows refused because the queue was full.
  virtual void OnRejected(int64_t rows) = 0;
  // A queued request of `rows` rows dropped because its deadline passed.
  virtual void OnExpired(int64_t rows) = 0;
};

struct BatcherOptions {
  int64_t max_batch_tokens = 4096;
  absl::Duration max_queue_delay = absl::Milliseconds(2);
  int64_t max_queued_tokens = 1 << 20;
  int num_batch_threads = 1;
  // Time source of the queue delay and request deadlines; null: Clock::Real().
  // Must outlive the batcher.
  Clock* clock = nullptr;
  // Told about every batch; null: nobody. Must outlive the batcher.
  BatchObserver* observer = nullptr;
  // Runs each batch (batch_runner.h: the worker pool); null: the encoder
  // in-process. Must outlive the batcher.
  BatchRunner* runner = nullptr;
};

class EncodeBatcher {
 public:
  // INVALID_ARGUMENT for non-positive sizes or thread count.
  static absl::StatusOr<std::unique_ptr<EncodeBatcher>> Create(const BatcherOptions& options);
  virtual ~EncodeBatcher() = default;

  // Blocks until this request's rows are encoded. `encoder` must stay alive
  // until the call returns (callers hold a shared_ptr). DEADLINE_EXCEEDED,
  // without encoding, when `deadline` has passed on arrival or passes while
  // the request waits in the queue (the caller's RPC deadline: nobody would
  // read the answer); a request already being encoded is finished.
  virtual absl::StatusOr<EncodeResult> Encode(std::shared_ptr<const Encoder> encoder,
                                              absl::Span<const float> x, int64_t n,
                                              const EncodeOptions& options,
                                              absl::Time deadline) = 0;
  // Without a deadline.
  absl::StatusOr<EncodeResult> Encode(std::shared_ptr<const Encoder> encoder,
                                      absl::Span<const float> x, int64_t n,
                                      const EncodeOptions& options) {
    return Encode(std::move(encoder), x, n, options, absl::InfiniteFuture());
  }

  virtual int64_t queued_tokens() const = 0;  // rows waiting right now
};

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_BATCHER_H_
