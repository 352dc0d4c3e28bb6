// Failover while a batch is on a worker. Each saedict-worker here holds
// every batch for --test_batch_delay before encoding it, so the test can
// see the batch in flight (the pool's in_flight count for that worker) and
// only then SIGKILL the worker, or SIGTERM it. A killed worker's batch is
// retried on another worker; a drained one finishes the batch it holds and
// exits 0. Every EncodeStream message and Ingest batch is answered exactly
// once, with local CPU encode's codes, and the stored statistics equal a
// recomputation. Also: concurrent batches spread over every worker by
// load, and Intervene's encode runs on the workers.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/worker_pool_fixture.h"
#include "tests/server/corpus_test_util.h"

namespace saedict::testing {
namespace {

constexpr absl::Duration kBatchDelay = absl::Milliseconds(120);

class WorkerFailoverTest : public WorkerPoolTest {
 protected:
  std::vector<std::string> WorkerFlags() override {
    return {absl::StrCat("--test_batch_delay=", absl::FormatDuration(kBatchDelay))};
  }
  void CustomizePool(server::ServerOptions* options) override {
    options->batcher.max_batch_tokens = kRows;  // one request, one batch
  }

  // Waits (up to 30 s) until the pool has a batch on `worker`, then until the
  // worker is inside its delay with it.
  bool WaitForBatchOn(int worker) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (StatusOf(worker).in_flight == 0) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(1));
    }
    absl::SleepFor(kBatchDelay / 4);
    return StatusOf(worker).in_flight > 0;
  }

  // In a thread: kills worker 0 with a batch on it, then drains worker 1
  // with a batch on it. Records what the drained worker did.
  void KillThenDrainMidBatch() {
    if (!WaitForBatchOn(0)) {
      ADD_FAILURE() << "no batch ever reached worker 0";
      return;
    }
    killed_status_ = workers_[0]->SignalAndReap(SIGKILL);
    if (!WaitForBatchOn(1)) {
      ADD_FAILURE() << "no batch ever reached worker 1";
      return;
    }
    drained_ok_before_ = StatusOf(1).batches_ok;
    drained_status_ = workers_[1]->SignalAndReap(SIGTERM);
  }
  void ExpectKilledAndDrainedMidBatch() {
    EXPECT_TRUE(WIFSIGNALED(killed_status_) && WTERMSIG(killed_status_) == SIGKILL)
        << "wait status " << killed_status_;
    EXPECT_GE(StatusOf(0).batches_failed, 1) << "the killed worker's batch failed there";
    EXPECT_TRUE(WIFEXITED(drained_status_) && WEXITSTATUS(drained_status_) == 0)
        << "a drained worker exits 0; wait status " << drained_status_;
    EXPECT_GT(StatusOf(1).batches_ok, drained_ok_before_)
        << "the drained worker finished the batch it held";
    EXPECT_GT(StatusOf(2).batches_ok, 0) << "the last worker took the rest";
    EXPECT_EQ(server_->workers()->fallback_batches(), 0) << "a worker was always left";
  }

  static constexpr int64_t kRows = 32;
  int killed_status_ = -1;
  int drained_status_ = -1;
  int64_t drained_ok_before_ = 0;
};

TEST_F(WorkerFailoverTest, EncodeStreamKeepsEveryMessageThroughAKillAndADrainMidBatch) {
  constexpr int kMessages = 30;
  auto ctx = Ctx();
  auto stream = stub_->EncodeStream(ctx.get());
  std::thread writer([&] {  // writes ahead, so a batch is always on its way
    for (int m = 0; m < kMessages; ++m) {
      v1::EncodeRequest request;
      if (m == 0) request.set_dictionary_id("d");
      *request.mutable_activations() = F32Tensor(Rows(kRows, m), {kRows, kDIn});
      if (!stream->Write(request)) return;
    }
    stream->WritesDone();
  });
  std::thread faults([&] { KillThenDrainMidBatch(); });
  int answered = 0;
  v1::EncodeResponse response;
  while (stream->Read(&response)) {
    absl::StatusOr<engine::EncodeResult> want = reference_->Encode(Rows(kRows, answered), kRows);
    ASSERT_TRUE(want.ok());
    ExpectSameCodes(CodesOf(response.codes()), want->codes, 0.0f,
                    absl::StrCat("message ", answered));
    ++answered;
  }
  writer.join();
  faults.join();
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answered, kMessages) << "one answer per message, in order";
  ExpectKilledAndDrainedMidBatch();
}

TEST_F(WorkerFailoverTest, IngestLosesAndDoublesNothingThroughAKillAndADrainMidBatch) {
  const std::vector<TestDoc> docs = MakeDocs(48, 4, 10, kDIn, 23, 1000);  // <= kRows per 3 docs
  const std::vector<v1::IngestRequest> requests = IngestRequests(docs, 3);
  auto ctx = Ctx();
  auto stream = stub_->Ingest(ctx.get());
  std::thread writer([&] {
    for (const v1::IngestRequest& r : requests) {
      if (!stream->Write(r)) return;
    }
    stream->WritesDone();
  });
  std::thread faults([&] { KillThenDrainMidBatch(); });
  std::vector<v1::IngestAck> acks;
  v1::IngestAck ack;
  while (stream->Read(&ack)) acks.push_back(ack);
  writer.join();
  faults.join();
  const grpc::Status finished = stream->Finish();
  ASSERT_TRUE(finished.ok()) << finished.error_message();
  ASSERT_EQ(acks.size(), requests.size());
  for (size_t m = 0; m < acks.size(); ++m) EXPECT_EQ(acks[m].batch(), static_cast<int64_t>(m));
  EXPECT_EQ(acks.back().total_documents(), static_cast<int64_t>(docs.size()));
  ExpectKilledAndDrainedMidBatch();

  std::map<uint64_t, engine::SparseCodes> stored = ExpectStatsMatchStoredCodes(docs);
  for (const TestDoc& d : docs) {
    const int64_t n = static_cast<int64_t>(d.tokens.size());
    absl::StatusOr<engine::EncodeResult> want = reference_->Encode(d.activations, n);
    ASSERT_TRUE(want.ok());
    ExpectSameCodes(stored[d.id], want->codes, 0.0f, absl::StrCat("doc ", d.id));
  }
}

// Batches that overlap go to the least-loaded worker, so with six callers
// at once every worker takes some; each batch is answered once, by a worker.
TEST_F(WorkerFailoverTest, OverlappingBatchesSpreadOverEveryWorker) {
  constexpr int kClients = 6, kCalls = 4;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int m = 0; m < kCalls; ++m) {
        const std::vector<float> x = Rows(kRows, 1000 + 10 * c + m);
        v1::EncodeResponse response;
        ASSERT_TRUE(EncodeRows("d", x, kRows, kDIn, &response).ok());
        absl::StatusOr<engine::EncodeResult> want = reference_->Encode(x, kRows);
        ASSERT_TRUE(want.ok());
        ExpectSameCodes(CodesOf(response.codes()), want->codes, 0.0f,
                        absl::StrCat("client ", c, " call ", m));
      }
    });
  }
  for (std::thread& t : clients) t.join();
  int64_t total = 0;
  for (int w = 0; w < 3; ++w) {
    const server::WorkerStatus status = StatusOf(w);
    EXPECT_GE(status.batches_ok, 2) << "worker " << w << " of 3 took too few of "
                                    << kClients * kCalls << " overlapping batches";
    EXPECT_EQ(status.batches_failed, 0);
    total += status.batches_ok;
  }
  EXPECT_EQ(total, kClients * kCalls) << "one batch per call, each answered once";
  EXPECT_EQ(server_->workers()->fallback_batches(), 0);
}

// Intervene encodes through the batcher, so on a worker; the edits are
// applied here, and the answer equals the local Intervene bit for bit.
TEST_F(WorkerFailoverTest, InterveneEncodesOnAWorkerAndEqualsLocalIntervene) {
  const std::vector<float> x = Rows(kRows, 77);
  absl::StatusOr<engine::EncodeResult> plain = reference_->Encode(x, kRows);
  ASSERT_TRUE(plain.ok());
  ASSERT_GT(plain->codes.indices.size(), 0u);
  const uint32_t active = plain->codes.indices[0];
  v1::InterveneRequest request;
  request.set_dictionary_id("d");
  *request.mutable_activations() = F32Tensor(x, {kRows, kDIn});
  v1::FeatureEdit* scale = request.add_edits();
  scale->set_feature(active);
  scale->set_op(v1::EDIT_OP_SCALE);
  scale->set_value(4.0f);
  v1::FeatureEdit* set = request.add_edits();
  set->set_feature(3);
  set->set_op(v1::EDIT_OP_SET);
  set->set_value(1.5f);
  set->add_rows(2);
  const int64_t before = BatchesOkOnAllWorkers();
  v1::InterveneResponse response;
  const grpc::Status s = stub_->Intervene(Ctx().get(), request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const int64_t after = BatchesOkOnAllWorkers();
  EXPECT_EQ(after, before + 1) << "the encode ran on a worker";

  const std::vector<engine::FeatureEdit> edits = {
      {.feature = active, .op = engine::EditOp::kScale, .value = 4.0f, .rows = {}},
      {.feature = 3, .op = engine::EditOp::kSet, .value = 1.5f, .rows = {2}}};
  absl::StatusOr<engine::InterveneResult> want = reference_->Intervene(x, kRows, edits);
  ASSERT_TRUE(want.ok());
  ExpectSameCodes(CodesOf(response.codes()), want->edited_codes, 0.0f, "edited codes");
  EXPECT_EQ(FloatsOf(response.activations()), want->activations) << "bit for bit";

  // A bad edit is refused before anything is encoded.
  set->add_rows(kRows);
  v1::InterveneResponse refused;
  const grpc::Status bad = stub_->Intervene(Ctx().get(), request, &refused);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), ::testing::HasSubstr("row 32 out of range"));
  const int64_t after_bad = BatchesOkOnAllWorkers();
  EXPECT_EQ(after_bad, after);
}

}  // namespace
}  // namespace saedict::testing
