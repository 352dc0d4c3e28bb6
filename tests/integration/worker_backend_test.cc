// saedict-worker's --backend flag, everywhere: an unknown backend and
// --backend=cuda without a usable CUDA device are refused at start with the
// reason (exit 2), and the default (auto) serves on the CPU where there is
// no device, which its Health reports. The CUDA backend itself behind the
// pool is worker_gpu_test (label gpu).
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_encoder.h"
#include "tests/integration/worker_pool_fixture.h"

namespace saedict::testing {
namespace {

// Runs saedict-worker with `flags` on a free port; its exit code and stderr.
struct WorkerRun {
  int exit_code = -1;
  std::string stderr_text;
};
WorkerRun RunWorker(const std::filesystem::path& dir, const std::string& flags) {
  std::filesystem::create_directories(dir);
  const std::filesystem::path err = dir / "stderr";
  const std::string command =
      absl::StrCat("'", SAEDICT_WORKER_PATH, "' --port=0 --metrics_port=-1 --cache_dir='",
                   (dir / "cache").string(), "' ", flags, " 2>'", err.string(), "'");
  const int status = std::system(command.c_str());
  WorkerRun run;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err);
  std::stringstream text;
  text << in.rdbuf();
  run.stderr_text = text.str();
  return run;
}

TEST(WorkerBackendFlagTest, AnUnknownBackendIsRefusedByName) {
  ScratchDir scratch;
  const WorkerRun run = RunWorker(scratch.path(), "--backend=tpu");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.stderr_text, ::testing::HasSubstr("--backend: 'tpu' is not one of cpu, cuda, auto"));
}

TEST(WorkerBackendFlagTest, CudaWithoutAUsableDeviceIsRefusedWithTheReason) {
  if (engine::cuda::DeviceCount() > 0) {
    GTEST_SKIP() << "SKIPPED: this machine has a CUDA device; worker_gpu_test serves on it";
  }
  ScratchDir scratch;
  const WorkerRun run = RunWorker(scratch.path(), "--backend=cuda");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.stderr_text, ::testing::HasSubstr("--backend=cuda: "));
  EXPECT_THAT(run.stderr_text,
              ::testing::HasSubstr(engine::cuda::BuiltWithCuda() ? "no usable CUDA device"
                                                                 : "no CUDA backend"));
}

// The default backend (auto) behind the pool: Health names it, and the
// codes are local CPU encode's where it is the CPU.
class WorkerAutoBackendTest : public WorkerPoolTest {
 protected:
  int WorkerCount() override { return 1; }
};

TEST_F(WorkerAutoBackendTest, TheDefaultBackendIsCudaWhereADeviceIsUsableElseCpu) {
  server_->workers()->CheckHealthNow();
  const server::WorkerStatus status = server_->workers()->Workers().front();
  ASSERT_TRUE(status.healthy);
  const bool gpu = engine::cuda::DeviceCount() > 0;
  EXPECT_EQ(status.backend, gpu ? "cuda" : "cpu");
  EXPECT_THAT(status.device, ::testing::HasSubstr(gpu ? "cuda:0" : "threads"));
  if (gpu) return;  // worker_gpu_test compares the GPU's codes within tolerance
  const std::vector<float> x = Rows(24, 4);
  v1::EncodeResponse response;
  ASSERT_TRUE(EncodeRows("d", x, 24, kDIn, &response).ok());
  absl::StatusOr<engine::EncodeResult> want = reference_->Encode(x, 24);
  ASSERT_TRUE(want.ok());
  ExpectSameCodes(CodesOf(response.codes()), want->codes, 0.0f, "auto backend");
  EXPECT_EQ(server_->workers()->Workers().front().batches_ok, 1);
}

}  // namespace
}  // namespace saedict::testing
