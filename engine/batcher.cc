// EncodeBatcher implementation (see batcher.h).
//
// Requests wait in one FIFO queue. A batch thread takes the oldest request
// and every later request with the same encoder and options, in arrival
// order, while they fit in max_batch_tokens; it dispatches when the next
// such request would not fit (the batch is full), when the oldest request
// has waited max_queue_delay, or at shutdown. A batch is encoded with one
// Encode call over the concatenated rows and split back per caller; if that
// call fails, each request is retried alone so every caller gets its own
// error.
#include "engine/batcher.h"

#include <algorithm>
#include <deque>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace saedict::engine {
namespace {

struct Request {
  std::shared_ptr<const Encoder> encoder;
  absl::Span<const float> x;
  int64_t n = 0;
  EncodeOptions options;
  absl::Time enqueued;
  absl::Time deadline = absl::InfiniteFuture();
  absl::StatusOr<EncodeResult> result;
  absl::Notification done;
};

bool SameGroup(const Request& a, const Request& b) {
  return a.encoder == b.encoder && a.options.top_k == b.options.top_k &&
         a.options.return_reconstruction == b.options.return_reconstruction &&
         a.options.return_row_error == b.options.return_row_error &&
         a.options.compute_mode == b.options.compute_mode;
}

// Rows [row, row + n) of a batch result, with offsets rebased to 0.
// `d_out`: the width of a reconstruction row (DictionaryConfig::decoder_dim).
EncodeResult Slice(const EncodeResult& all, int64_t row, int64_t n, int64_t d_out) {
  EncodeResult out;
  out.codes = SliceRows(all.codes, row, row + n);
  out.compute_mode = all.compute_mode;
  if (!all.reconstruction.empty()) {
    out.reconstruction.assign(all.reconstruction.begin() + row * d_out,
                              all.reconstruction.begin() + (row + n) * d_out);
  }
  if (!all.row_squared_error.empty()) {
    out.row_squared_error.assign(all.row_squared_error.begin() + row,
                                 all.row_squared_error.begin() + row + n);
  }
  return out;
}

class BatcherImpl final : public EncodeBatcher {
 public:
  explicit BatcherImpl(const BatcherOptions& options)
      : options_(options), clock_(options.clock != nullptr ? options.clock : Clock::Real()) {
    for (int i = 0; i < options_.num_batch_threads; ++i) {
      threads_.emplace_back([this] { WorkerLoop(); });
    }
  }

  ~BatcherImpl() override {
    {
      absl::MutexLock lock(&mu_);
      shutdown_ = true;
      cv_.SignalAll();
    }
    for (std::thread& t : threads_) t.join();
  }

  absl::StatusOr<EncodeResult> Encode(std::shared_ptr<const Encoder> encoder,
                                      absl::Span<const float> x, int64_t n,
                                      const EncodeOptions& options, absl::Time deadline) override {
    if (encoder == nullptr) return absl::InvalidArgumentError("encoder is null");
    if (clock_->Now() >= deadline) {
      return absl::DeadlineExceededError("the request's deadline passed before it was encoded");
    }
    // Malformed or empty requests go straight to the encoder, which reports them.
    const int64_t d_in = encoder->dictionary().config.d_in;
    const int64_t size = static_cast<int64_t>(x.size());
    if (n <= 0 || size % d_in != 0 || size / d_in != n) {
      return encoder->Encode(x, n, options);
    }
    Request request;
    request.encoder = std::move(encoder);
    request.x = x;
    request.n = n;
    request.options = options;
    request.deadline = deadline;
    {
      absl::MutexLock lock(&mu_);
      if (shutdown_) return absl::UnavailableError("encode batcher is shutting down");
      if (queued_tokens_ + n > options_.max_queued_tokens) {
        if (options_.observer != nullptr) options_.observer->OnRejected(n);
        return absl::ResourceExhaustedError(
            absl::StrCat("encode queue full: ", queued_tokens_, " rows queued + ", n,
                         " rows requested > max_queued_tokens ", options_.max_queued_tokens));
      }
      request.enqueued = clock_->Now();
      queue_.push_back(&request);
      queued_tokens_ += n;
      cv_.SignalAll();
    }
    request.done.WaitForNotification();
    return std::move(request.result);
  }

  int64_t queued_tokens() const override {
    absl::MutexLock lock(&mu_);
    return queued_tokens_;
  }

 private:
  void WorkerLoop() {
    for (;;) {
      std::vector<Request*> batch;
      {
        absl::MutexLock lock(&mu_);
        if (!TakeBatch(&batch)) return;
      }
      Run(batch);
    }
  }

  // Waits for a batch that is ready and removes it from the queue. False
  // when shut down with nothing left.
  bool TakeBatch(std::vector<Request*>* batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (;;) {
      DropExpired();
      if (queue_.empty()) {
        if (shutdown_) return false;
        cv_.Wait(&mu_);
        continue;
      }
      const Request* head = queue_.front();
      int64_t rows = 0;
      bool full = head->n >= options_.max_batch_tokens;
      for (const Request* r : queue_) {
        if (full) break;
        if (!SameGroup(*head, *r)) continue;
        if (rows + r->n > options_.max_batch_tokens) {
          full = true;
        } else {
          rows += r->n;
          full = rows == options_.max_batch_tokens;
        }
      }
      absl::Time wake = head->enqueued + options_.max_queue_delay;
      if (full || shutdown_ || clock_->Now() >= wake) break;
      for (const Request* r : queue_) wake = std::min(wake, r->deadline);  // to drop it
      clock_->WaitUntil(&mu_, &cv_, wake);
    }
    // Take the head and the same-group requests that fit, in FIFO order.
    const Request* head = queue_.front();
    int64_t rows = 0;
    std::deque<Request*> rest;
    bool closed = false;
    for (Request* r : queue_) {
      if (!closed && SameGroup(*head, *r) &&
          (batch->empty() || rows + r->n <= options_.max_batch_tokens)) {
        batch->push_back(r);
        rows += r->n;
      } else {
        // Stop at the first same-group request that does not fit, so it leads the next batch.
        if (SameGroup(*head, *r)) closed = true;
        rest.push_back(r);
      }
    }
    queue_.swap(rest);
    queued_tokens_ -= rows;
    return true;
  }

  // Answers and removes the queued requests whose deadline has passed.
  void DropExpired() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time now = clock_->Now();
    std::deque<Request*> live;
    for (Request* r : queue_) {
      if (now < r->deadline) {
        live.push_back(r);
        continue;
      }
      queued_tokens_ -= r->n;
      if (options_.observer != nullptr) options_.observer->OnExpired(r->n);
      r->result = absl::DeadlineExceededError(absl::StrCat(
          "the request's deadline passed after ", absl::FormatDuration(now - r->enqueued),
          " in the encode queue (", queued_tokens_, " rows still queued)"));
      r->done.Notify();
    }
    queue_.swap(live);
  }

  void Run(const std::vector<Request*>& batch) {
    // Copies: a caller may return (destroying its request) once notified.
    const std::shared_ptr<const Encoder> keep_alive = batch.front()->encoder;
    const Encoder& encoder = *keep_alive;
    const EncodeOptions options = batch.front()->options;
    BatchReport report;
    report.requests = static_cast<int>(batch.size());
    report.compute_mode = options.compute_mode;
    const absl::Time start = clock_->Now();
    for (const Request* r : batch) {
      report.rows += r->n;
      report.queue_delay = std::max(report.queue_delay, start - r->enqueued);
    }
    if (batch.size() == 1) {
      Request* r = batch.front();
      r->result = RunBatch(encoder, r->x, r->n, options);
      Report(report, start, r->result);
      r->done.Notify();
      return;
    }
    const int64_t d_in = encoder.dictionary().config.d_in;
    std::vector<float> x;
    x.reserve(static_cast<size_t>(report.rows * d_in));
    for (const Request* r : batch) x.insert(x.end(), r->x.begin(), r->x.end());
    absl::StatusOr<EncodeResult> all = RunBatch(encoder, x, report.rows, options);
    Report(report, start, all);
    int64_t row = 0;
    for (Request* r : batch) {
      if (all.ok()) {
        r->result = Slice(*all, row, r->n, encoder.dictionary().config.decoder_dim());
      } else {
        r->result = encoder.Encode(r->x, r->n, options);  // each caller gets its own error
      }
      row += r->n;
      r->done.Notify();
    }
  }

  absl::StatusOr<EncodeResult> RunBatch(const Encoder& encoder, absl::Span<const float> x,
                                        int64_t n, const EncodeOptions& options) {
    if (options_.runner != nullptr) return options_.runner->Run(encoder, x, n, options);
    return encoder.Encode(x, n, options);
  }

  void Report(BatchReport& report, absl::Time start, const absl::StatusOr<EncodeResult>& result) {
    if (options_.observer == nullptr) return;
    report.encode_time = clock_->Now() - start;
    report.ok = result.ok();
    if (result.ok()) report.compute_mode = result->compute_mode;
    options_.observer->OnBatch(report);
  }

  const BatcherOptions options_;
  Clock* const clock_;
  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<Request*> queue_ ABSL_GUARDED_BY(mu_);
  int64_t queued_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<EncodeBatcher>> EncodeBatcher::Create(
    const BatcherOptions& options) {
  if (options.max_batch_tokens <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_tokens must be > 0, got ", options.max_batch_tokens));
  }
  if (options.max_queued_tokens <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_queued_tokens must be > 0, got ", options.max_queued_tokens));
  }
  if (options.max_queue_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("max_queue_delay must be >= 0, got ",
                                                   absl::FormatDuration(options.max_queue_delay)));
  }
  if (options.num_batch_threads <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_batch_threads must be > 0, got ", options.num_batch_threads));
  }
  return std::unique_ptr<EncodeBatcher>(new BatcherImpl(options));
}

}  // namespace saedict::engine
