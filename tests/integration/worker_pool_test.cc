// The worker pool end to end on the CPU: real saedict-worker processes on
// loopback ports behind an in-process saedictd (--workers). During a long
// EncodeStream and during an Ingest one worker is killed with SIGKILL and
// another drained with SIGTERM; every request is answered once, with the
// codes local CPU encode gives, and the stored statistics equal a
// recomputation from the stored codes. With every worker gone the server
// encodes itself; a replaced dictionary's new weights reach the workers.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/worker_pool_fixture.h"
#include "tests/server/corpus_test_util.h"
#include "tests/server/grpc_test_fixture.h"
#include "tests/test_util/loopback_http.h"
#include "tests/test_util/test_certificates.h"

namespace saedict::testing {
namespace {

namespace fs = std::filesystem;

TEST_F(WorkerPoolTest, EncodeStreamSurvivesAKilledAndADrainedWorker) {
  constexpr int kMessages = 240;
  constexpr int64_t kRows = 64;
  auto ctx = Ctx();
  auto stream = stub_->EncodeStream(ctx.get());
  int answered = 0;
  for (int m = 0; m < kMessages; ++m) {
    if (m == 80) {
      EXPECT_TRUE(WIFSIGNALED(workers_[0]->SignalAndReap(SIGKILL)));
    }
    if (m == 160) {
      const int status = workers_[1]->SignalAndReap(SIGTERM);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
    }
    const std::vector<float> x = Rows(kRows, m);
    v1::EncodeRequest request;
    if (m == 0) request.set_dictionary_id("d");
    *request.mutable_activations() = F32Tensor(x, {kRows, kDIn});
    ASSERT_TRUE(stream->Write(request));
    v1::EncodeResponse response;
    ASSERT_TRUE(stream->Read(&response)) << "message " << m;
    ++answered;
    absl::StatusOr<engine::EncodeResult> want = reference_->Encode(x, kRows);
    ASSERT_TRUE(want.ok());
    ExpectSameCodes(CodesOf(response.codes()), want->codes, 0.0f, absl::StrCat("message ", m));
  }
  stream->WritesDone();
  v1::EncodeResponse extra;
  EXPECT_FALSE(stream->Read(&extra)) << "one answer per message";
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answered, kMessages);
  EXPECT_GT(StatusOf(2).batches_ok, 0) << "the surviving worker took batches";
}

TEST_F(WorkerPoolTest, IngestSurvivesAKilledAndADrainedWorkerAndStatsMatchTheCodes) {
  const std::vector<TestDoc> docs = MakeDocs(90, 4, 24, kDIn, 17, 1000);
  const std::vector<v1::IngestRequest> requests = IngestRequests(docs, 3);
  auto ctx = Ctx();
  auto stream = stub_->Ingest(ctx.get());
  std::vector<v1::IngestAck> acks;
  for (size_t m = 0; m < requests.size(); ++m) {
    if (m == 10) workers_[0]->SignalAndReap(SIGKILL);
    if (m == 20) workers_[1]->SignalAndReap(SIGTERM);
    ASSERT_TRUE(stream->Write(requests[m]));
    v1::IngestAck ack;
    ASSERT_TRUE(stream->Read(&ack)) << "message " << m;
    acks.push_back(ack);
  }
  stream->WritesDone();
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(acks.size(), requests.size());
  for (size_t m = 0; m < acks.size(); ++m) EXPECT_EQ(acks[m].batch(), static_cast<int64_t>(m));
  EXPECT_EQ(acks.back().total_documents(), static_cast<int64_t>(docs.size()));

  std::map<uint64_t, engine::SparseCodes> stored = ExpectStatsMatchStoredCodes(docs);
  for (const TestDoc& d : docs) {  // the stored codes are local CPU encode's
    const int64_t n = static_cast<int64_t>(d.tokens.size());
    absl::StatusOr<engine::EncodeResult> want = reference_->Encode(d.activations, n);
    ASSERT_TRUE(want.ok());
    ExpectSameCodes(stored[d.id], want->codes, 0.0f, absl::StrCat("doc ", d.id));
  }
}

// Concurrent callers through the pool (several batch threads, merged
// batches) each get their own rows' codes. (Which worker takes a batch
// depends on timing, so the spread itself is not asserted.)
TEST_F(WorkerPoolTest, ConcurrentCallersEachGetTheirOwnCodes) {
  std::vector<std::thread> clients;
  for (int c = 0; c < 6; ++c) {
    clients.emplace_back([&, c] {
      for (int m = 0; m < 20; ++m) {
        const std::vector<float> x = Rows(256, 100 * c + m);
        v1::EncodeResponse response;
        ASSERT_TRUE(EncodeRows("d", x, 256, kDIn, &response).ok());
        absl::StatusOr<engine::EncodeResult> want = reference_->Encode(x, 256);
        ASSERT_TRUE(want.ok());
        ExpectSameCodes(CodesOf(response.codes()), want->codes, 0.0f,
                        absl::StrCat("client ", c, " call ", m));
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_GT(BatchesOkOnAllWorkers(), 0);
  EXPECT_EQ(server_->workers()->fallback_batches(), 0);
}

TEST_F(WorkerPoolTest, MetricsReportEachWorkerAndPassPromtool) {
  workers_[0]->SignalAndReap(SIGKILL);
  for (int m = 0; m < 4; ++m) {
    v1::EncodeResponse response;
    ASSERT_TRUE(EncodeRows("d", Rows(8, m), 8, kDIn, &response).ok());
  }
  server_->workers()->CheckHealthNow();
  absl::StatusOr<HttpResponse> scrape = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  const std::string& text = scrape->body;
  const std::string dead = workers_[0]->address(), alive = workers_[1]->address();
  EXPECT_THAT(text, ::testing::HasSubstr("saedict_worker_up{worker=\"" + dead + "\"} 0"));
  EXPECT_THAT(text, ::testing::HasSubstr("saedict_worker_up{worker=\"" + alive + "\"} 1"));
  // (the dead one may or may not have been tried before a health check saw it)
  EXPECT_THAT(text, ::testing::HasSubstr("saedict_worker_batches_total{worker=\"" + dead +
                                         "\",outcome=\"failed\"}"));
  EXPECT_THAT(text, ::testing::ContainsRegex("saedict_worker_batches_total\\{worker=\"[0-9.:]+\","
                                             "outcome=\"ok\"\\} [1-9]"));
  EXPECT_THAT(text, ::testing::HasSubstr("saedict_worker_fallback_batches_total 0"));
  std::string promtool = SAEDICT_PROMTOOL;
  if (!fs::exists(promtool)) {
    GTEST_SKIP() << "SKIPPED: no promtool at " << promtool
                 << " (bash deploy/dev.sh build fetches it)";
  }
  const fs::path file = scratch_.path() / "metrics.txt";
  std::ofstream(file) << text;
  const std::string command =
      absl::StrCat("'", promtool, "' check metrics < '", file.string(), "' 2>&1");
  EXPECT_EQ(std::system(command.c_str()), 0);
}

TEST_F(WorkerPoolTest, WithEveryWorkerGoneTheServerEncodesItself) {
  for (auto& w : workers_) w->SignalAndReap(SIGKILL);
  const int64_t fallbacks = server_->workers()->fallback_batches();
  const std::vector<float> x = Rows(32, 5);
  v1::EncodeResponse response;
  ASSERT_TRUE(EncodeRows("d", x, 32, kDIn, &response).ok());
  absl::StatusOr<engine::EncodeResult> want = reference_->Encode(x, 32);
  ASSERT_TRUE(want.ok());
  ExpectSameCodes(CodesOf(response.codes()), want->codes, 0.0f, "fallback");
  EXPECT_GT(server_->workers()->fallback_batches(), fallbacks);
}

TEST_F(WorkerPoolTest, AReplacedDictionarysNewWeightsAreWhatWorkersServe) {
  const std::vector<float> x = Rows(16, 9);
  v1::EncodeResponse before;
  ASSERT_TRUE(EncodeRows("d", x, 16, kDIn, &before).ok());
  const WrittenSae other =
      WriteSae("other", engine::Architecture::kTopK, v1::SOURCE_FORMAT_SAELENS, 99);
  ASSERT_TRUE(Load("d", other.path, nullptr, /*replace=*/true).ok());
  v1::EncodeResponse after;
  ASSERT_TRUE(EncodeRows("d", x, 16, kDIn, &after).ok());
  absl::StatusOr<engine::EncodeResult> want = ReferenceEncoder(other.path)->Encode(x, 16);
  ASSERT_TRUE(want.ok());
  ExpectSameCodes(CodesOf(after.codes()), want->codes, 0.0f, "after replace");
  EXPECT_NE(before.weights_sha256(), after.weights_sha256());
  int64_t failed = 0;
  for (const server::WorkerStatus& w : server_->workers()->Workers()) failed += w.batches_failed;
  EXPECT_EQ(failed, 0) << "healthy workers fail no batch";
  EXPECT_EQ(server_->workers()->fallback_batches(), 0);
}

// Mutual TLS on the worker protocol: workers that require a client
// certificate signed by the CA serve a pool that presents one, and refuse a
// pool that presents none (its batches then run on the server's CPU).
class WorkerPoolTlsTest : public WorkerPoolTest {
 protected:
  void SetUp() override {
    if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "SKIPPED: no openssl command to make test certificates";
    }
    certs_ = scratch_.path() / "certs";
    fs::create_directories(certs_);
    ASSERT_TRUE(MakeCertificates(certs_));
    WorkerPoolTest::SetUp();
  }
  int WorkerCount() override { return 1; }
  std::vector<std::string> WorkerFlags() override {
    return {"--tls_cert_file=" + (certs_ / "server.pem").string(),
            "--tls_key_file=" + (certs_ / "server.key").string(),
            "--tls_client_ca_file=" + (certs_ / "ca.pem").string()};
  }
  void CustomizePool(server::ServerOptions* options) override {
    options->worker_tls_ca_file = certs_ / "ca.pem";
    if (present_client_certificate_) {
      options->worker_tls_cert_file = certs_ / "client.pem";
      options->worker_tls_key_file = certs_ / "client.key";
    }
  }
  int64_t Encoded() {
    const std::vector<float> x = Rows(16, 3);
    v1::EncodeResponse response;
    EXPECT_TRUE(EncodeRows("d", x, 16, kDIn, &response).ok());
    absl::StatusOr<engine::EncodeResult> want = reference_->Encode(x, 16);
    EXPECT_TRUE(want.ok());
    ExpectSameCodes(CodesOf(response.codes()), want->codes, 0.0f, "tls");
    return server_->workers()->Workers().front().batches_ok;
  }
  fs::path certs_;
  bool present_client_certificate_ = true;
};

TEST_F(WorkerPoolTlsTest, AClientCertificateSignedByTheCaIsServed) {
  EXPECT_GT(Encoded(), 0);
  EXPECT_EQ(server_->workers()->fallback_batches(), 0);
}

class WorkerPoolTlsNoClientCertTest : public WorkerPoolTlsTest {
 protected:
  void SetUp() override {
    present_client_certificate_ = false;
    WorkerPoolTlsTest::SetUp();
  }
};

TEST_F(WorkerPoolTlsNoClientCertTest, APoolWithoutAClientCertificateIsRefused) {
  EXPECT_EQ(Encoded(), 0) << "the worker served a client without a certificate";
  EXPECT_GT(server_->workers()->fallback_batches(), 0);
  EXPECT_FALSE(server_->workers()->Workers().front().healthy);
}

}  // namespace
}  // namespace saedict::testing
