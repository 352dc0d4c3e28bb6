// IngestCrashFixture: what the kill -9 ingest tests share — a real saedictd
// child process over one data directory (restartable), a TopK dictionary
// folder it loads, deterministic ingest batches, and the checks that follow a
// crash: which documents are present, and that the feature statistics equal
// a recomputation from the stored codes.
//
// One fixture per test (not thread-safe); links no server code.
#ifndef SAEDICT_TESTS_INTEGRATION_INGEST_CRASH_FIXTURE_H_
#define SAEDICT_TESTS_INTEGRATION_INGEST_CRASH_FIXTURE_H_

#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "saedict/v1/saedict.grpc.pb.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/integration/saedictd_process.h"
#include "tests/server/corpus_test_util.h"
#include "tests/server/grpc_test_util.h"
#include "tests/test_util/test_env.h"

namespace saedict::testing {

inline constexpr int64_t kCrashDIn = 64, kCrashDSae = 512;
inline constexpr int kDocsPerBatch = 4, kTokensPerDoc = 64;

inline std::unique_ptr<grpc::ClientContext> CrashCtx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return ctx;
}

// Batch b (a global number across streams): kDocsPerBatch documents with ids
// b * kDocsPerBatch + [0, kDocsPerBatch).
inline std::vector<TestDoc> CrashBatchDocs(int b) {
  return MakeDocs(kDocsPerBatch, kTokensPerDoc, kTokensPerDoc, kCrashDIn, 1000 + b,
                  static_cast<uint64_t>(b) * kDocsPerBatch);
}

// What one killed ingest stream got through.
struct KilledStream {
  int acked = 0;    // batches acknowledged (the stream's first `acked` batches)
  int written = 0;  // batches the client had handed to gRPC when the server died
};

class IngestCrashFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = scratch_.path() / "root";
    std::filesystem::create_directories(root_);
    ASSERT_TRUE(WriteSaeLensFolder(root_ / "sae", RandomDictionary(engine::Architecture::kTopK,
                                                                   kCrashDIn, kCrashDSae, 16, 3))
                    .ok());
  }

  std::filesystem::path DataDir() const { return scratch_.path() / "data"; }

  // How every Start() runs saedictd (tests that expect a start to fail
  // adjust these and call SaedictdProcess::Start themselves).
  SaedictdProcess::Options ProcessOptions() const {
    SaedictdProcess::Options options;
    options.data_dir = DataDir();
    options.dictionary_root = root_;
    options.port_file = scratch_.path() / "port";
    options.extra_flags = extra_flags_;
    return options;
  }

  void Start() {
    absl::StatusOr<std::unique_ptr<SaedictdProcess>> process =
        SaedictdProcess::Start(ProcessOptions());
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = *std::move(process);
    stub_ = v1::Saedict::NewStub(process_->Connect());
  }

  void LoadDictionary() {
    v1::LoadDictionaryRequest load;
    load.set_id("d");
    load.set_path("sae");
    v1::LoadDictionaryResponse loaded;
    ASSERT_THAT(stub_->LoadDictionary(CrashCtx().get(), load, &loaded), GrpcOk());
  }

  // Streams batches first_batch, first_batch + 1, ... (up to max_batches of
  // them) into corpus "c", waits for kill_after_acks acknowledgements, then
  // kill -9s the server and reaps it.
  KilledStream IngestAndKill(int first_batch, int max_batches, int kill_after_acks) {
    KilledStream result;
    grpc::ClientContext ctx;
    auto stream = stub_->Ingest(&ctx);
    std::atomic<int> sent{0};
    std::thread writer([&] {
      for (int b = 0; b < max_batches; ++b) {
        if (!stream->Write(MakeIngestRequest(b == 0 ? "d" : "", b == 0 ? "c" : "",
                                             CrashBatchDocs(first_batch + b)))) {
          break;
        }
        sent = b + 1;
      }
      stream->WritesDone();
    });
    v1::IngestAck ack;
    while (result.acked < kill_after_acks && stream->Read(&ack)) {
      EXPECT_EQ(ack.batch(), result.acked);
      ++result.acked;
    }
    EXPECT_EQ(result.acked, kill_after_acks)
        << "the stream ended early: " << stream->Finish().error_message();
    std::optional<int> killed = process_->SignalAndWait(SIGKILL, absl::Seconds(30));
    EXPECT_TRUE(killed.has_value() && WIFSIGNALED(*killed));
    while (stream->Read(&ack)) ++result.acked;  // acks already in flight before the kill
    EXPECT_FALSE(stream->Finish().ok()) << "the stream cannot have finished: the server was killed";
    writer.join();
    result.written = sent.load();
    process_.reset();
    stub_.reset();
    return result;
  }

  // How many of batch b's documents the (running) server has, each checked
  // whole.
  int DocsPresent(int b) {
    int here = 0;
    for (int d = 0; d < kDocsPerBatch; ++d) {
      v1::GetDocumentRequest r;
      r.set_corpus("c");
      r.set_doc_id(static_cast<uint64_t>(b) * kDocsPerBatch + d);
      v1::GetDocumentResponse out;
      grpc::Status s = stub_->GetDocument(CrashCtx().get(), r, &out);
      EXPECT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::NOT_FOUND) << s.error_message();
      if (!s.ok()) continue;
      EXPECT_EQ(out.document().token_ids_size(), kTokensPerDoc);
      ++here;
    }
    return here;
  }

  // Every feature's statistics equal a recomputation over `present`.
  void ExpectStatisticsMatch(const std::vector<uint64_t>& present) {
    std::map<uint64_t, engine::SparseCodes> codes;
    std::map<uint32_t, RecomputedFeature> truth = Recompute(*stub_, "d", "c", present, &codes);
    for (const auto& [id, c] : codes) ASSERT_EQ(c.num_rows, kTokensPerDoc) << "doc " << id;
    for (uint32_t f = 0; f < kCrashDSae; ++f) {
      v1::GetFeatureRequest r;
      r.set_dictionary_id("d");
      r.set_feature(f);
      r.set_top_n(1);
      v1::GetFeatureResponse out;
      ASSERT_THAT(stub_->GetFeature(CrashCtx().get(), r, &out), GrpcOk());
      ASSERT_EQ(out.stats().total_tokens(), static_cast<int64_t>(present.size()) * kTokensPerDoc);
      ASSERT_EQ(out.stats().count(), truth[f].count) << "feature " << f;
      if (truth[f].count > 0) {
        ASSERT_EQ(out.stats().max(), truth[f].max) << "feature " << f;
        ASSERT_EQ(out.top_examples_size(), 1);
      }
    }
  }

  ScratchDir scratch_;
  std::vector<std::string> extra_flags_;  // for every Start()
  std::filesystem::path root_;
  std::unique_ptr<SaedictdProcess> process_;
  std::unique_ptr<v1::Saedict::Stub> stub_;
};

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_INTEGRATION_INGEST_CRASH_FIXTURE_H_
