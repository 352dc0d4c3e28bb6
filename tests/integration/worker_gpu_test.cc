// The CUDA backend behind the worker protocol (label gpu): a saedict-worker
// with --backend=cuda behind an in-process saedictd. Encode, EncodeStream
// and Ingest run on the GPU; the codes match local CPU encode within the
// CUDA backend's tolerances (engine/cuda/cuda_encoder.h), the worker's
// Health names the device and its memory. Skips visibly without a device.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_encoder.h"
#include "tests/integration/worker_pool_fixture.h"

namespace saedict::testing {
namespace {

class WorkerGpuTest : public WorkerPoolTest {
 protected:
  void SetUp() override {
    if (engine::cuda::DeviceCount() == 0) {
      GTEST_SKIP() << "SKIPPED: no CUDA device (BuiltWithCuda="
                   << engine::cuda::BuiltWithCuda() << "): the GPU worker is not tested here";
    }
    WorkerPoolTest::SetUp();
  }
  int WorkerCount() override { return 1; }
  std::vector<std::string> WorkerFlags() override { return {"--backend=cuda"}; }
  // Same rows, same features except where the CPU's margin is within
  // float rounding; values within 1e-4 relative (the F32 tolerance with room
  // for the tiny test dictionary's sums).
  void ExpectCloseCodes(const engine::SparseCodes& got, const engine::SparseCodes& want,
                        const std::string& what) {
    ASSERT_EQ(got.num_rows, want.num_rows) << what;
    int64_t differing_rows = 0;
    for (int64_t r = 0; r < want.num_rows; ++r) {
      const auto g = Row(got, r), w = Row(want, r);
      if (g.size() != w.size()) {
        ++differing_rows;
        continue;
      }
      for (size_t i = 0; i < w.size(); ++i) {
        if (g[i].first != w[i].first) {
          ++differing_rows;
          break;
        }
        EXPECT_NEAR(g[i].second, w[i].second, 1e-4 * (1.0 + std::abs(w[i].second)))
            << what << " row " << r << " feature " << w[i].first;
      }
    }
    EXPECT_LE(differing_rows, want.num_rows / 50) << what << ": near-ties only";
  }
};

TEST_F(WorkerGpuTest, EncodeRunsOnTheGpuAndMatchesTheCpuWithinTolerance) {
  server_->workers()->CheckHealthNow();
  const server::WorkerStatus status = server_->workers()->Workers().front();
  EXPECT_EQ(status.backend, "cuda");
  EXPECT_THAT(status.device, ::testing::HasSubstr("cuda:0"));
  for (int64_t rows : {1, 37, 600}) {
    const std::vector<float> x = Rows(rows, rows);
    v1::EncodeResponse response;
    ASSERT_TRUE(EncodeRows("d", x, rows, kDIn, &response).ok());
    absl::StatusOr<engine::EncodeResult> want = reference_->Encode(x, rows);
    ASSERT_TRUE(want.ok());
    ExpectCloseCodes(CodesOf(response.codes()), want->codes, absl::StrCat(rows, " rows"));
  }
  EXPECT_GE(server_->workers()->Workers().front().batches_ok, 3);
  EXPECT_EQ(server_->workers()->fallback_batches(), 0);
}

TEST_F(WorkerGpuTest, IngestStoresTheGpusCodesOnceEach) {
  const std::vector<TestDoc> docs = MakeDocs(30, 4, 20, kDIn, 5, 1000);
  const std::vector<v1::IngestRequest> requests = IngestRequests(docs, 5);
  auto ctx = Ctx();
  auto stream = stub_->Ingest(ctx.get());
  for (const v1::IngestRequest& r : requests) {
    ASSERT_TRUE(stream->Write(r));
    v1::IngestAck ack;
    ASSERT_TRUE(stream->Read(&ack));
  }
  stream->WritesDone();
  ASSERT_TRUE(stream->Finish().ok());
  std::map<uint64_t, engine::SparseCodes> stored = ExpectStatsMatchStoredCodes(docs);
  for (const TestDoc& d : docs) {  // the GPU's codes, within tolerance of the CPU's
    const int64_t n = static_cast<int64_t>(d.tokens.size());
    absl::StatusOr<engine::EncodeResult> want = reference_->Encode(d.activations, n);
    ASSERT_TRUE(want.ok());
    ExpectCloseCodes(stored[d.id], want->codes, absl::StrCat("doc ", d.id));
  }
  EXPECT_EQ(server_->workers()->fallback_batches(), 0);
}

}  // namespace
}  // namespace saedict::testing
