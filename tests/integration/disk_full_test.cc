// A real saedictd whose data directory is a small tmpfs: ingest until the
// disk is full must fail cleanly (RESOURCE_EXHAUSTED naming the full disk,
// the server still answering reads, every acknowledged batch complete, no
// partial batch, statistics equal to a recomputation), and ingest works
// again once space returns (the tmpfs grown in place), without a restart;
// a read-only data directory is refused at start ("--data_dir X is not
// writable: Read-only file system"),
// and the data in it is untouched.
//
// Mounting needs root (CAP_SYS_ADMIN): elsewhere the tests skip visibly.
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

#include "tests/integration/ingest_crash_fixture.h"

namespace saedict::testing {
namespace {

namespace fs = std::filesystem;

bool ReadFileToString(const fs::path& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

class DiskFullTest : public IngestCrashFixture {
 protected:
  void TearDown() override {
    process_.reset();  // the server first: then nothing holds the mount
    if (mounted_) umount2(DataDir().c_str(), MNT_DETACH);
  }
  // Mounts a tmpfs of `size` (mount(8) syntax) at the data directory.
  bool MountData(const std::string& size) {
    fs::create_directories(DataDir());
    const std::string options = "size=" + size + ",mode=0755";
    if (mount("tmpfs", DataDir().c_str(), "tmpfs", 0, options.c_str()) != 0) {
      skip_reason_ = std::string("SKIPPED: cannot mount a tmpfs for the data directory (") +
                     std::strerror(errno) + "; needs root / CAP_SYS_ADMIN)";
      return false;
    }
    mounted_ = true;
    return true;
  }
  bool Remount(const std::string& options, unsigned long flags = 0) {
    return mount("tmpfs", DataDir().c_str(), "tmpfs", MS_REMOUNT | flags, options.c_str()) == 0;
  }

  // Batch b alone in one Ingest stream: its final status; *acked whether
  // its ack arrived.
  grpc::Status IngestOneBatch(int b, bool* acked) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto stream = stub_->Ingest(&ctx);
    stream->Write(MakeIngestRequest("d", "c", CrashBatchDocs(b)));
    stream->WritesDone();
    v1::IngestAck ack;
    *acked = stream->Read(&ack);
    return stream->Finish();
  }

  bool mounted_ = false;
  std::string skip_reason_;
};

TEST_F(DiskFullTest, IngestIntoAFullDiskFailsCleanlyAndRecoversWhenSpaceReturns) {
  if (!MountData("48m")) GTEST_SKIP() << skip_reason_;
  // Refuse writes with less than 32 MiB free: about 16 MiB of room.
  extra_flags_ = {"--demo=false", "--min_free_disk_mb=32"};
  Start();
  LoadDictionary();
  // One batch per stream: ack or a clean error, until the disk is full.
  int batch = 0, acked_batches = 0;
  grpc::Status failure;
  for (; batch < 2000; ++batch) {
    bool got_ack = false;
    const grpc::Status status = IngestOneBatch(batch, &got_ack);
    if (!status.ok()) {
      ASSERT_FALSE(got_ack) << "an acknowledged batch's stream failed: " << status.error_message();
      failure = status;
      break;
    }
    ASSERT_TRUE(got_ack);
    ++acked_batches;
  }
  ASSERT_FALSE(failure.ok()) << "the disk never filled up after " << batch << " batches";
  std::cout << "[ info ] disk full after " << acked_batches
            << " batches: " << failure.error_message() << "\n";
  EXPECT_EQ(failure.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << failure.error_message();
  EXPECT_THAT(failure.error_message(), ::testing::HasSubstr("disk"));

  // Still serving reads, nothing partial, statistics consistent.
  auto check = [&](int batches_written, int acked) {
    std::vector<uint64_t> present;
    for (int b = 0; b < batches_written; ++b) {
      const int here = DocsPresent(b);
      if (b < acked) {
        EXPECT_EQ(here, kDocsPerBatch) << "acknowledged batch " << b << " is not complete";
      } else {
        EXPECT_EQ(here, 0) << "failed batch " << b << " is visible";
      }
      for (int d = 0; d < here; ++d)
        present.push_back(static_cast<uint64_t>(b) * kDocsPerBatch + d);
    }
    ExpectStatisticsMatch(present);
  };
  check(batch + 1, acked_batches);

  // Space returns: the same server takes the failed batch and more.
  ASSERT_TRUE(Remount("size=128m")) << std::strerror(errno);
  int recovered = 0;
  for (int b = batch; b < batch + 3; ++b) {
    bool acked = false;
    const grpc::Status status = IngestOneBatch(b, &acked);
    EXPECT_TRUE(status.ok() && acked)
        << "after space returned, batch " << b << ": " << status.error_message();
    recovered += status.ok() && acked;
  }
  ASSERT_EQ(recovered, 3);
  check(batch + 3, batch + 3);

  // And the data survives a restart.
  std::optional<int> stopped = process_->SignalAndWait(SIGTERM, absl::Seconds(30));
  ASSERT_TRUE(stopped.has_value() && WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0);
  process_.reset();
  Start();
  check(batch + 3, batch + 3);
}

TEST_F(DiskFullTest, ReadOnlyDataDirectoryIsRefusedAtStartAndLeftUntouched) {
  if (!MountData("16m")) GTEST_SKIP() << skip_reason_;
  extra_flags_ = {"--demo=false", "--min_free_disk_mb=1"};
  Start();
  LoadDictionary();
  bool acked = false;
  ASSERT_THAT(IngestOneBatch(0, &acked), GrpcOk());
  ASSERT_TRUE(acked);
  std::optional<int> stopped = process_->SignalAndWait(SIGTERM, absl::Seconds(30));
  ASSERT_TRUE(stopped.has_value() && WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0);
  process_.reset();
  ASSERT_TRUE(Remount("size=16m", MS_RDONLY)) << std::strerror(errno);

  // Refused with a clear error, exit status non-zero, no crash.
  SaedictdProcess::Options options = ProcessOptions();
  options.start_timeout = absl::Seconds(30);
  const fs::path log = scratch_.path() / "stderr.log";
  options.stderr_file = log;
  absl::StatusOr<std::unique_ptr<SaedictdProcess>> refused = SaedictdProcess::Start(options);
  ASSERT_FALSE(refused.ok()) << "saedictd started on a read-only data directory";
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("exited"));
  std::string err;
  ASSERT_TRUE(ReadFileToString(log, &err));
  std::cout << "[ info ] saedictd said: " << err;
  EXPECT_THAT(err, ::testing::HasSubstr("--data_dir " + DataDir().string() +
                                        " is not writable: Read-only file system"));

  // Writable again: everything from before is there.
  ASSERT_TRUE(Remount("size=16m")) << std::strerror(errno);
  Start();
  EXPECT_EQ(DocsPresent(0), kDocsPerBatch);
  ExpectStatisticsMatch({0, 1, 2, 3});
}

}  // namespace
}  // namespace saedict::testing
