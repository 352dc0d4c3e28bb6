// kill -9 of a real saedictd process in the middle of a long ingest: after a
// restart every acknowledged batch is complete (documents, codes, counted in
// the statistics), every other batch is either wholly present or wholly
// absent, and the feature statistics equal a recomputation from the stored
// codes — nothing half-written is visible. ingest_crash_cycles_test.cc
// repeats this over many cycles (label `slow`).
//
// Links no server code (see saedictd_process_test.cc).
#include <iostream>

#include "tests/integration/ingest_crash_fixture.h"

namespace saedict::testing {
namespace {

constexpr int kBatches = 5000;  // far more than get through before the kill
constexpr int kKillAfterAcks = 25;

using IngestCrashTest = IngestCrashFixture;

TEST_F(IngestCrashTest, KillNineDuringIngestKeepsEveryAcknowledgedBatchAndNoPartialOne) {
  Start();
  LoadDictionary();
  const KilledStream killed = IngestAndKill(0, kBatches, kKillAfterAcks);
  ASSERT_GT(killed.written, killed.acked) << "the kill should land while batches are in flight";
  std::cout << "[ info ] killed after " << killed.acked << " acks with " << killed.written
            << " batches sent\n";

  Start();
  std::vector<uint64_t> present;
  int complete_unacked = 0;
  for (int b = 0; b < killed.written; ++b) {
    const int here = DocsPresent(b);
    for (int d = 0; d < here; ++d) present.push_back(static_cast<uint64_t>(b) * kDocsPerBatch + d);
    if (b < killed.acked) {
      EXPECT_EQ(here, kDocsPerBatch) << "acknowledged batch " << b << " is not complete";
    } else {
      EXPECT_TRUE(here == 0 || here == kDocsPerBatch)
          << "batch " << b << " is partly visible: " << here << " of " << kDocsPerBatch;
      complete_unacked += here == kDocsPerBatch;
    }
  }
  std::cout << "[ info ] " << complete_unacked
            << " unacknowledged batches were written whole before the kill\n";
  ExpectStatisticsMatch(present);
}

}  // namespace
}  // namespace saedict::testing
