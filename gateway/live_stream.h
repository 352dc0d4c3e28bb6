// LiveStream: runs one server-streaming call on its own thread and hands its
// NDJSON lines to the HTTP writer as they come, through a bounded queue — so
// a comparison's progress reaches the page while it runs, and a big export
// is never held in memory whole.
//
//   auto s = std::make_shared<LiveStream>([&](const LiveStream::LineSink& emit,
//                                             const std::function<bool()>& cancelled) {
//     return core->CompareDictionaries(r, [&](const auto& m) { return emit(ToJson(m)); },
//                                      cancelled);
//   });
//   if (std::optional<absl::Status> early = s->WaitForFirstLine()) ...  // ended with no line
//   while (std::optional<std::string> line = s->Next()) write(*line);
//   s->status();  // how the call ended
//
// The call sees cancelled() true once Cancel() ran or the LiveStream is
// destroyed (the client went away); emit() then returns false. The
// destructor cancels and joins the thread.
//
// Thread safety: one consumer thread calls WaitForFirstLine/Next/status;
// Cancel() may come from any thread.
#ifndef SAEDICT_GATEWAY_LIVE_STREAM_H_
#define SAEDICT_GATEWAY_LIVE_STREAM_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace saedict::gateway {

class LiveStream {
 public:
  using LineSink = std::function<bool(std::string line)>;
  using Call =
      std::function<absl::Status(const LineSink& emit, const std::function<bool()>& cancelled)>;

  // Starts `call` on a new thread; at most `max_queued` lines wait for the
  // consumer (the call blocks in emit() beyond that).
  explicit LiveStream(Call call, size_t max_queued = 64);
  ~LiveStream();
  LiveStream(const LiveStream&) = delete;
  LiveStream& operator=(const LiveStream&) = delete;

  // Blocks until the first line is queued (nullopt) or the call ended
  // without one (its status).
  std::optional<absl::Status> WaitForFirstLine();
  // The next line, blocking; nullopt once the call ended and every line
  // was taken.
  std::optional<std::string> Next();
  // The call's status; valid once Next() returned nullopt.
  absl::Status status();
  void Cancel();

 private:
  bool RoomOrCancelled() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool LineOrDone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_queued_;
  mutable absl::Mutex mu_;
  std::deque<std::string> lines_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace saedict::gateway

#endif  // SAEDICT_GATEWAY_LIVE_STREAM_H_
