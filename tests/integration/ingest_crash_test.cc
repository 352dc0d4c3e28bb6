// kill -9 of a real saedictd process in the middle of a long ingest: after a
// restart every acknowledged batch is complete (documents, codes, counted in
// the statistics), every other batch is either wholly present or wholly
// absent, and the feature statistics equal a recomputation from the stored
// codes — nothing half-written is visible.
//
// Links no server code (see saedictd_process_test.cc).
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "saedict/v1/saedict.grpc.pb.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/integration/saedictd_process.h"
#include "tests/server/corpus_test_util.h"
#include "tests/server/grpc_test_util.h"
#include "tests/test_util/test_env.h"

namespace saedict::testing {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kDIn = 64, kDSae = 512;
constexpr int kDocsPerBatch = 4, kTokensPerDoc = 64;
constexpr int kBatches = 5000;     // far more than get through before the kill
constexpr int kKillAfterAcks = 25;

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return ctx;
}

std::vector<TestDoc> BatchDocs(int b) {
  return MakeDocs(kDocsPerBatch, kTokensPerDoc, kTokensPerDoc, kDIn, 1000 + b,
                  static_cast<uint64_t>(b) * kDocsPerBatch);
}

class IngestCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = scratch_.path() / "root";
    fs::create_directories(root_);
    ASSERT_TRUE(WriteSaeLensFolder(root_ / "sae", RandomDictionary(engine::Architecture::kTopK,
                                                                   kDIn, kDSae, 16, 3))
                    .ok());
  }
  void Start() {
    SaedictdProcess::Options options;
    options.data_dir = scratch_.path() / "data";
    options.dictionary_root = root_;
    options.port_file = scratch_.path() / "port";
    absl::StatusOr<std::unique_ptr<SaedictdProcess>> process = SaedictdProcess::Start(options);
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = *std::move(process);
    stub_ = v1::Saedict::NewStub(process_->Connect());
  }
  bool DocPresent(uint64_t id) {
    v1::GetDocumentRequest r;
    r.set_corpus("c");
    r.set_doc_id(id);
    v1::GetDocumentResponse out;
    grpc::Status s = stub_->GetDocument(Ctx().get(), r, &out);
    EXPECT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::NOT_FOUND) << s.error_message();
    if (!s.ok()) return false;
    EXPECT_EQ(out.document().token_ids_size(), kTokensPerDoc);
    return true;
  }

  ScratchDir scratch_;
  fs::path root_;
  std::unique_ptr<SaedictdProcess> process_;
  std::unique_ptr<v1::Saedict::Stub> stub_;
};

TEST_F(IngestCrashTest, KillNineDuringIngestKeepsEveryAcknowledgedBatchAndNoPartialOne) {
  Start();
  {
    v1::LoadDictionaryRequest load;
    load.set_id("d");
    load.set_path("sae");
    v1::LoadDictionaryResponse loaded;
    ASSERT_THAT(stub_->LoadDictionary(Ctx().get(), load, &loaded), GrpcOk());
  }
  grpc::ClientContext ctx;
  auto stream = stub_->Ingest(&ctx);
  std::atomic<int> sent{0};
  std::thread writer([&] {
    for (int b = 0; b < kBatches; ++b) {
      if (!stream->Write(MakeIngestRequest(b == 0 ? "d" : "", b == 0 ? "c" : "", BatchDocs(b)))) {
        break;
      }
      sent = b + 1;
    }
    stream->WritesDone();
  });
  int64_t acked = 0;
  v1::IngestAck ack;
  while (acked < kKillAfterAcks && stream->Read(&ack)) {
    ASSERT_EQ(ack.batch(), acked);
    ++acked;
  }
  ASSERT_EQ(acked, kKillAfterAcks) << "the stream ended early: " << stream->Finish().error_message();
  std::optional<int> killed = process_->SignalAndWait(SIGKILL, absl::Seconds(30));
  ASSERT_TRUE(killed.has_value());
  EXPECT_TRUE(WIFSIGNALED(*killed));
  while (stream->Read(&ack)) ++acked;  // acks already in flight before the kill
  EXPECT_FALSE(stream->Finish().ok()) << "the stream cannot have finished: the server was killed";
  writer.join();
  const int written = sent.load();
  ASSERT_GT(written, acked) << "the kill should land while batches are still in flight";
  std::cout << "[ info ] killed after " << acked << " acks with " << written
            << " batches sent\n";
  process_.reset();
  stub_.reset();

  Start();
  std::vector<uint64_t> present;
  int complete_unacked = 0;
  for (int b = 0; b < written; ++b) {
    int here = 0;
    for (int d = 0; d < kDocsPerBatch; ++d) {
      const uint64_t id = static_cast<uint64_t>(b) * kDocsPerBatch + d;
      if (DocPresent(id)) {
        ++here;
        present.push_back(id);
      }
    }
    if (b < acked) {
      EXPECT_EQ(here, kDocsPerBatch) << "acknowledged batch " << b << " is not complete";
    } else {
      EXPECT_TRUE(here == 0 || here == kDocsPerBatch)
          << "batch " << b << " is partly visible: " << here << " of " << kDocsPerBatch;
      complete_unacked += here == kDocsPerBatch;
    }
  }
  std::cout << "[ info ] " << complete_unacked
            << " unacknowledged batches were written whole before the kill\n";
  // Statistics agree with what is stored.
  std::map<uint64_t, engine::SparseCodes> codes;
  std::map<uint32_t, RecomputedFeature> truth = Recompute(*stub_, "d", "c", present, &codes);
  for (const auto& [id, c] : codes) ASSERT_EQ(c.num_rows, kTokensPerDoc) << "doc " << id;
  for (uint32_t f = 0; f < kDSae; ++f) {
    v1::GetFeatureRequest r;
    r.set_dictionary_id("d");
    r.set_feature(f);
    r.set_top_n(1);
    v1::GetFeatureResponse out;
    ASSERT_THAT(stub_->GetFeature(Ctx().get(), r, &out), GrpcOk());
    ASSERT_EQ(out.stats().total_tokens(), static_cast<int64_t>(present.size()) * kTokensPerDoc);
    ASSERT_EQ(out.stats().count(), truth[f].count) << "feature " << f;
    if (truth[f].count > 0) {
      ASSERT_EQ(out.stats().max(), truth[f].max) << "feature " << f;
      ASSERT_EQ(out.top_examples_size(), 1);
    }
  }
}

}  // namespace
}  // namespace saedict::testing
