// EncodeBatcher: concurrent callers get what a direct Encode gives, bit for
// bit, whether their request ran alone or merged (batch invariance), full batches go
// without waiting, the bounded queue answers RESOURCE_EXHAUSTED, bad
// requests fail alone, destruction drains.
#include "engine/batcher.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "engine/encoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/reference_sae.h"
#include "tests/test_util/manual_clock.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::engine {
namespace {

using ::saedict::engine::testing::MakeDictionary;
using ::saedict::engine::testing::RandomInput;
using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::shared_ptr<const Encoder> MakeEncoder(uint32_t seed = 3) {
  auto encoder = Encoder::Create(MakeDictionary(
      {.architecture = Architecture::kTopK, .d_in = 64, .d_sae = 512, .k = 16, .seed = seed}));
  EXPECT_TRUE(encoder.ok()) << encoder.status();
  return std::shared_ptr<const Encoder>(std::move(encoder).value());
}

void ExpectIdentical(const EncodeResult& a, const EncodeResult& b) {
  EXPECT_EQ(a.codes.num_rows, b.codes.num_rows);
  EXPECT_EQ(a.codes.num_features, b.codes.num_features);
  EXPECT_EQ(a.codes.row_offsets, b.codes.row_offsets);
  EXPECT_EQ(a.codes.indices, b.codes.indices);
  EXPECT_EQ(a.codes.values, b.codes.values);
  EXPECT_EQ(a.reconstruction, b.reconstruction);
  EXPECT_EQ(a.row_squared_error, b.row_squared_error);
}

// Merged into a batch or not, F32 results are bit-identical to a direct
// Encode (batch invariance, engine/encoder.h).
::testing::AssertionResult Identical(const EncodeResult& batched, const EncodeResult& direct) {
  if (batched.codes.row_offsets != direct.codes.row_offsets ||
      batched.codes.indices != direct.codes.indices) {
    return ::testing::AssertionFailure() << "selected features differ";
  }
  if (batched.codes.values != direct.codes.values) {
    return ::testing::AssertionFailure() << "values differ";
  }
  if (batched.reconstruction != direct.reconstruction) {
    return ::testing::AssertionFailure() << "reconstructions differ";
  }
  if (batched.row_squared_error != direct.row_squared_error) {
    return ::testing::AssertionFailure() << "row errors differ";
  }
  return ::testing::AssertionSuccess();
}

TEST(BatcherTest, CreateValidatesOptions) {
  EXPECT_THAT(EncodeBatcher::Create({.max_batch_tokens = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_batch_tokens")));
  EXPECT_THAT(EncodeBatcher::Create({.max_queued_tokens = -1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_queued_tokens")));
  EXPECT_THAT(EncodeBatcher::Create({.max_queue_delay = absl::Milliseconds(-1)}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_queue_delay")));
  EXPECT_THAT(EncodeBatcher::Create({.num_batch_threads = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_batch_threads")));
}

TEST(BatcherTest, ConcurrentCallersMatchDirectEncode) {
  auto encoder_a = MakeEncoder(3);
  auto encoder_b = MakeEncoder(4);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto batcher,
                               EncodeBatcher::Create({.max_batch_tokens = 128,
                                                      .max_queue_delay = absl::Milliseconds(1),
                                                      .num_batch_threads = 2}));
  const int64_t sizes[] = {1, 3, 17, 64, 130, 5};
  const EncodeOptions variants[] = {
      {}, {.top_k = 4}, {.return_reconstruction = true, .return_row_error = true}};
  constexpr int kThreads = 8;
  constexpr int kRequests = 12;
  std::atomic<int> mismatches{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequests; ++i) {
        const auto& encoder = (t + i) % 3 == 0 ? encoder_b : encoder_a;
        const int64_t n = sizes[(t * 7 + i) % 6];
        const EncodeOptions& options = variants[(t + 2 * i) % 3];
        const std::vector<float> x = RandomInput(n, 64, 1000 * t + i);
        auto batched = batcher->Encode(encoder, x, n, options);
        auto direct = encoder->Encode(x, n, options);
        if (!batched.ok() || !direct.ok()) {
          ++failures;
          continue;
        }
        if (batched->codes.num_rows != n || !Identical(*batched, *direct)) ++mismatches;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(batcher->queued_tokens(), 0);
}

TEST(BatcherTest, FullBatchDoesNotWaitForTheDelay) {
  auto encoder = MakeEncoder();
  // The manual clock never moves: only a full batch can be dispatched.
  ::saedict::testing::ManualClock clock;
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto batcher,
                               EncodeBatcher::Create({.max_batch_tokens = 8,
                                                      .max_queue_delay = absl::Seconds(30),
                                                      .clock = &clock}));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      const std::vector<float> x = RandomInput(4, 64, t);
      if (batcher->Encode(encoder, x, 4, {}).ok()) ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 2);
  EXPECT_EQ(clock.Now(), absl::UnixEpoch());
}

// A lone request waits exactly max_queue_delay on the batcher's clock.
TEST(BatcherTest, ALoneRequestWaitsForTheQueueDelay) {
  auto encoder = MakeEncoder();
  ::saedict::testing::ManualClock clock;
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto batcher,
                               EncodeBatcher::Create({.max_batch_tokens = 1000,
                                                      .max_queue_delay = absl::Seconds(30),
                                                      .clock = &clock}));
  const std::vector<float> x = RandomInput(3, 64, 9);
  absl::Notification done;
  absl::StatusOr<EncodeResult> result;
  std::thread caller([&] {
    result = batcher->Encode(encoder, x, 3, {});
    done.Notify();
  });
  while (batcher->queued_tokens() != 3) absl::SleepFor(absl::Milliseconds(1));
  clock.Advance(absl::Seconds(29));
  EXPECT_FALSE(done.WaitForNotificationWithTimeout(absl::Milliseconds(50)))
      << "dispatched before its queue delay";
  EXPECT_EQ(batcher->queued_tokens(), 3);
  clock.Advance(absl::Seconds(1));
  caller.join();
  ASSERT_THAT(result, IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult direct, encoder->Encode(x, 3));
  ExpectIdentical(*result, direct);
}

TEST(BatcherTest, OversizedRequestIsEncodedAlone) {
  auto encoder = MakeEncoder();
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto batcher, EncodeBatcher::Create({.max_batch_tokens = 4}));
  const std::vector<float> x = RandomInput(10, 64, 5);
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult batched, batcher->Encode(encoder, x, 10, {}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult direct, encoder->Encode(x, 10));
  ExpectIdentical(batched, direct);
}

TEST(BatcherTest, BadRequestFailsAloneInsideABatch) {
  auto encoder = MakeEncoder();
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      auto batcher,
      EncodeBatcher::Create({.max_batch_tokens = 6, .max_queue_delay = absl::Seconds(30)}));
  std::vector<float> bad = RandomInput(3, 64, 1);
  bad[64 + 7] = std::nanf("");
  const std::vector<float> good = RandomInput(3, 64, 2);
  absl::StatusOr<EncodeResult> bad_result, good_result;
  std::thread t1([&] { bad_result = batcher->Encode(encoder, bad, 3, {}); });
  std::thread t2([&] { good_result = batcher->Encode(encoder, good, 3, {}); });
  t1.join();
  t2.join();
  EXPECT_THAT(bad_result, StatusIs(absl::StatusCode::kInvalidArgument,
                                   AllOf(HasSubstr("row 1"), HasSubstr("column 7"))));
  ASSERT_THAT(good_result, IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult direct, encoder->Encode(good, 3));
  ExpectIdentical(*good_result, direct);
  // Malformed sizes and nulls are answered without queueing.
  EXPECT_THAT(batcher->Encode(encoder, good, 4, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected n * d_in")));
  EXPECT_THAT(batcher->Encode(nullptr, good, 3, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("null")));
}

TEST(BatcherTest, QueueFullIsResourceExhaustedAndDestructionDrains) {
  auto encoder = MakeEncoder();
  ::saedict::testing::ManualClock clock;  // never advanced: only the drain dispatches
  auto batcher_or = EncodeBatcher::Create({.max_batch_tokens = 1000,
                                           .max_queue_delay = absl::Seconds(60),
                                           .max_queued_tokens = 10,
                                           .clock = &clock});
  ASSERT_THAT(batcher_or, IsOk());
  std::unique_ptr<EncodeBatcher> batcher = std::move(batcher_or).value();
  const std::vector<float> x8 = RandomInput(8, 64, 1);
  const std::vector<float> x5 = RandomInput(5, 64, 2);
  absl::StatusOr<EncodeResult> pending;
  std::thread waiter([&] { pending = batcher->Encode(encoder, x8, 8, {}); });
  while (batcher->queued_tokens() != 8) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(batcher->queued_tokens(), 8);
  EXPECT_THAT(
      batcher->Encode(encoder, x5, 5, {}),
      StatusIs(absl::StatusCode::kResourceExhausted,
               AllOf(HasSubstr("8 rows queued"), HasSubstr("5 rows requested"), HasSubstr("10"))));
  batcher.reset();  // drains: the waiter gets its result though no delay ever passed
  waiter.join();
  ASSERT_THAT(pending, IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult direct, encoder->Encode(x8, 8));
  ExpectIdentical(*pending, direct);
}

TEST(BatcherTest, DestructionDrainsManyPendingCallers) {
  auto encoder = MakeEncoder();
  ::saedict::testing::ManualClock clock;  // never advanced: only the drain dispatches
  auto batcher_or = EncodeBatcher::Create({.max_batch_tokens = 1000,
                                           .max_queue_delay = absl::Seconds(60),
                                           .num_batch_threads = 2,
                                           .clock = &clock});
  ASSERT_THAT(batcher_or, IsOk());
  std::unique_ptr<EncodeBatcher> batcher = std::move(batcher_or).value();
  constexpr int kCallers = 6;
  std::vector<absl::StatusOr<EncodeResult>> results(kCallers);
  std::vector<std::vector<float>> inputs;
  for (int i = 0; i < kCallers; ++i) inputs.push_back(RandomInput(2, 64, 50 + i));
  std::vector<std::thread> threads;
  for (int i = 0; i < kCallers; ++i) {
    // Two option groups, so the drain runs more than one batch.
    threads.emplace_back([&, i] {
      results[i] = batcher->Encode(encoder, inputs[i], 2, EncodeOptions{.top_k = i % 2 ? 4 : 0});
    });
  }
  // Nothing fills a batch, so every caller parks in the queue.
  while (batcher->queued_tokens() != 2 * kCallers) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(batcher->queued_tokens(), 2 * kCallers);
  batcher.reset();
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kCallers; ++i) {
    ASSERT_THAT(results[i], IsOk()) << "caller " << i;
    SAEDICT_ASSERT_OK_AND_ASSIGN(
        EncodeResult direct, encoder->Encode(inputs[i], 2, EncodeOptions{.top_k = i % 2 ? 4 : 0}));
    EXPECT_TRUE(Identical(*results[i], direct)) << "caller " << i;
  }
}

}  // namespace
}  // namespace saedict::engine

namespace saedict::engine {
namespace {

// A request whose deadline passes while it waits is answered
// DEADLINE_EXCEEDED without being encoded (nobody would read it), long
// before the batch would have been dispatched; one whose deadline already
// passed is refused at once; others in the queue are unaffected.
TEST(BatcherDeadlineTest, ExpiredRequestsAreDroppedFromTheQueue) {
  ::saedict::testing::ManualClock clock;
  BatcherOptions options;
  options.max_batch_tokens = 1 << 20;           // never full
  options.max_queue_delay = absl::Seconds(30);  // dispatch only after 30 s
  options.clock = &clock;
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<EncodeBatcher> batcher,
                               EncodeBatcher::Create(options));
  std::shared_ptr<const Encoder> encoder = MakeEncoder();
  const std::vector<float> x = RandomInput(4, 64, 3);
  EXPECT_THAT(batcher->Encode(encoder, x, 4, {}, clock.Now() - absl::Seconds(1)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("before it was encoded")));

  absl::StatusOr<EncodeResult> expired, kept;
  std::thread short_deadline(
      [&] { expired = batcher->Encode(encoder, x, 4, {}, clock.Now() + absl::Seconds(5)); });
  std::thread no_deadline([&] { kept = batcher->Encode(encoder, x, 4, {}); });
  while (batcher->queued_tokens() != 8) absl::SleepFor(absl::Milliseconds(1));
  clock.Advance(absl::Seconds(5));
  short_deadline.join();
  EXPECT_THAT(expired, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                AllOf(HasSubstr("in the encode queue"), HasSubstr("5s"))));
  EXPECT_EQ(batcher->queued_tokens(), 4) << "the other request stays queued";
  clock.Advance(absl::Seconds(25));
  no_deadline.join();
  EXPECT_THAT(kept, IsOk());
}

}  // namespace
}  // namespace saedict::engine
