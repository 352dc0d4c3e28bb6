// The kill -9 ingest test repeated over many cycles on one data directory
// (20 in the test suite, 200 in bash deploy/dev.sh slow): each cycle restarts saedictd,
// checks every batch of every earlier cycle — acknowledged ones complete,
// the others wholly present or wholly absent and unchanged since the
// restart that first saw them — and that the feature statistics equal a
// recomputation from the stored codes, then ingests more batches and kills
// the server after a varying number of acknowledgements.
//
// SAEDICT_CRASH_CYCLES sets the number of kills (default 20).
#include <cstdlib>
#include <iostream>
#include <string>

#include "tests/integration/ingest_crash_fixture.h"

namespace saedict::testing {
namespace {

constexpr int kBatchesPerStream = 400;  // more than get through before the kill

int Cycles() {
  const char* value = std::getenv("SAEDICT_CRASH_CYCLES");
  return value != nullptr && std::atoi(value) > 0 ? std::atoi(value) : 20;
}

using IngestCrashCyclesTest = IngestCrashFixture;

TEST_F(IngestCrashCyclesTest, ManyKillNineCyclesLoseNothingAcknowledgedAndShowNoPartialBatch) {
  const int cycles = Cycles();
  // state[b]: -1 unknown (never checked after its stream died), 0 absent,
  // kDocsPerBatch present; acked[b]: acknowledged before a kill.
  std::vector<int> state;
  std::vector<bool> acked;
  int next_batch = 0;
  Start();
  LoadDictionary();
  for (int cycle = 0; cycle < cycles; ++cycle) {
    const int kill_after = 1 + (cycle * 7) % 23;  // 1 .. 23 acks, varying
    const KilledStream killed = IngestAndKill(next_batch, kBatchesPerStream, kill_after);
    if (HasFatalFailure() || HasNonfatalFailure()) return;
    for (int b = 0; b < killed.written; ++b) {
      state.push_back(-1);
      acked.push_back(b < killed.acked);
    }
    next_batch += killed.written;

    Start();
    if (HasFatalFailure()) return;
    std::vector<uint64_t> present;
    for (int b = 0; b < next_batch; ++b) {
      const int here = DocsPresent(b);
      if (acked[b]) {
        ASSERT_EQ(here, kDocsPerBatch)
            << "cycle " << cycle << ": acknowledged batch " << b << " is not complete";
      } else {
        ASSERT_TRUE(here == 0 || here == kDocsPerBatch)
            << "cycle " << cycle << ": batch " << b << " is partly visible: " << here;
      }
      if (state[b] >= 0) {
        ASSERT_EQ(here, state[b]) << "cycle " << cycle << ": batch " << b
                                  << " changed after an earlier restart";
      }
      state[b] = here;
      for (int d = 0; d < here; ++d) {
        present.push_back(static_cast<uint64_t>(b) * kDocsPerBatch + d);
      }
    }
    ExpectStatisticsMatch(present);
    if (HasFatalFailure()) return;
    std::cout << "[ info ] cycle " << cycle + 1 << "/" << cycles << ": killed after "
              << killed.acked << " acks (" << killed.written << " sent); " << present.size()
              << " documents stored\n";
  }
}

}  // namespace
}  // namespace saedict::testing
