// LiveStream: lines in order with the call's status, an early end, and a
// consumer that goes away while the producer waits on a full queue.
#include "gateway/live_stream.h"

#include <atomic>
#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace saedict::gateway {
namespace {

TEST(LiveStreamTest, HandsOverEveryLineInOrderThenTheStatus) {
  LiveStream stream(
      [](const LiveStream::LineSink& emit, const std::function<bool()>&) {
        for (int i = 0; i < 200; ++i) {  // more than the queue holds
          if (!emit(std::to_string(i))) return absl::CancelledError("stopped");
        }
        return absl::DataLossError("after 200");
      },
      8);
  EXPECT_EQ(stream.WaitForFirstLine(), std::nullopt);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(stream.Next(), std::to_string(i));
  EXPECT_EQ(stream.Next(), std::nullopt);
  EXPECT_EQ(stream.status(), absl::DataLossError("after 200"));
}

TEST(LiveStreamTest, ACallThatEndsWithoutALineGivesItsStatusAtOnce) {
  LiveStream failed([](const LiveStream::LineSink&, const std::function<bool()>&) {
    return absl::NotFoundError("nothing");
  });
  EXPECT_EQ(failed.WaitForFirstLine(), absl::NotFoundError("nothing"));
  LiveStream empty(
      [](const LiveStream::LineSink&, const std::function<bool()>&) { return absl::OkStatus(); });
  EXPECT_EQ(empty.WaitForFirstLine(), absl::OkStatus());
  EXPECT_EQ(empty.Next(), std::nullopt);
}

TEST(LiveStreamTest, DestroyingItCancelsAProducerBlockedOnAFullQueue) {
  std::atomic<bool> saw_cancel{false}, emit_refused{false};
  {
    LiveStream stream(
        [&](const LiveStream::LineSink& emit, const std::function<bool()>& cancelled) {
          for (int i = 0;; ++i) {
            if (!emit("x")) {
              emit_refused = true;
              saw_cancel = cancelled();
              return absl::CancelledError("consumer gone");
            }
          }
        },
        2);
    EXPECT_EQ(stream.WaitForFirstLine(), std::nullopt);
    EXPECT_EQ(stream.Next(), "x");
  }  // the producer is blocked in emit(): the destructor must free and join it
  EXPECT_TRUE(emit_refused);
  EXPECT_TRUE(saw_cancel);
}

}  // namespace
}  // namespace saedict::gateway
