// ParallelFor: every index exactly once, for any n / grain, from many
// concurrent callers and from inside another ParallelFor.
#include "engine/parallel.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace saedict::engine {
namespace {

void ExpectCoversOnce(int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(n);
  std::atomic<int64_t> calls{0};
  ParallelFor(n, grain, [&](int64_t begin, int64_t end) {
    EXPECT_LT(begin, end);
    for (int64_t i = begin; i < end; ++i) hits[i]++;
    calls++;
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
  if (n == 0) {
    EXPECT_EQ(calls.load(), 0);
  }
}

TEST(ParallelForTest, CoversEveryIndexOnce) {
  for (int64_t n : {0, 1, 2, 7, 100, 1000}) {
    for (int64_t grain : {0, 1, 3, 64, 5000}) ExpectCoversOnce(n, grain);
  }
}

TEST(ParallelForTest, ChunksRespectGrain) {
  std::atomic<int64_t> largest{0};
  ParallelFor(1000, 7, [&](int64_t begin, int64_t end) {
    int64_t size = end - begin;
    int64_t seen = largest.load();
    while (size > seen && !largest.compare_exchange_weak(seen, size)) {
    }
  });
  EXPECT_LE(largest.load(), 7);
}

TEST(ParallelForTest, ConcurrentAndNestedCallers) {
  constexpr int kThreads = 8;
  std::vector<int64_t> sums(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::atomic<int64_t> sum{0};
      ParallelFor(64, 4, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          // A nested loop from inside a chunk must not deadlock.
          ParallelFor(10, 2, [&](int64_t b, int64_t e) { sum += (e - b) * (i + 1); });
        }
      });
      sums[t] = sum.load();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(sums[t], 10 * (64 * 65 / 2));
}

}  // namespace
}  // namespace saedict::engine
