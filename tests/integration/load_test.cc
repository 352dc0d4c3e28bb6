// Load test: a real saedictd on loopback under concurrent clients mixing
// unary Encode, EncodeStream, Ingest and reads (GetFeature, TopActivations,
// GetDocument, ListDictionaries) for a bounded time. Every call must succeed
// except deliberate RESOURCE_EXHAUSTED (the encode queue is kept small, so
// concurrent encodes overflow it); afterwards the stored token count equals
// what was acknowledged (ingest clients re-ingest a bounded set of document
// ids, so the database stops growing). Prints p50 / p99 latency per method, the counts,
// and the server's resident memory growth after warm-up (mean RSS of the
// last quarter against the mean of the second quarter).
//
// SAEDICT_LOAD_SECONDS sets the duration (default 15: the test command);
// bash deploy/dev.sh slow runs 600 s, where the RSS growth from the end of
// warm-up (second quarter's mean to last quarter's mean) must stay within
// SAEDICT_LOAD_MAX_RSS_GROWTH (default 0.05); short runs only report it,
// since RocksDB's memtables and block cache are still filling.
//
// Links no server code.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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
constexpr int kEncodeRows = 512, kStreamRows = 64, kDocsPerBatch = 4, kTokensPerDoc = 32;
// Each ingest client cycles over this many document ids, re-ingesting (and
// so replacing) them: the stored corpus stays bounded, so memory that keeps
// growing is a leak rather than a larger database.
constexpr uint64_t kIdsPerIngestClient = 2048;

double EnvDouble(const char* name, double fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && std::atof(value) > 0 ? std::atof(value) : fallback;
}

// Resident set size of `pid` in KiB (VmRSS), 0 when unreadable.
int64_t RssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

// Latencies and outcomes per method, shared by the client threads.
class Recorder {
 public:
  void Record(const std::string& method, double seconds, const grpc::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    Method& m = methods_[method];
    if (status.ok()) {
      m.latencies.push_back(seconds);
    } else if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++m.rejected;
    } else {
      ++m.errors;
      if (samples_.size() < 5) {
        samples_.push_back(method + ": " + std::to_string(status.error_code()) + " " +
                           status.error_message());
      }
    }
  }
  int64_t errors() const {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t total = 0;
    for (const auto& [name, m] : methods_) total += m.errors;
    return total;
  }
  int64_t ok(const std::string& method) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = methods_.find(method);
    return it == methods_.end() ? 0 : static_cast<int64_t>(it->second.latencies.size());
  }
  std::vector<std::string> samples() const {
    std::lock_guard<std::mutex> lock(mu_);
    return samples_;
  }
  void Print(double seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    std::cout << absl::StrFormat("[ load ] %-18s %8s %8s %9s %9s %8s\n", "method", "ok", "rejected",
                                 "p50 ms", "p99 ms", "per s");
    for (auto& [name, m] : methods_) {
      std::sort(m.latencies.begin(), m.latencies.end());
      auto at = [&](double q) {
        return m.latencies.empty()
                   ? 0.0
                   : 1e3 * m.latencies[std::min(m.latencies.size() - 1,
                                                static_cast<size_t>(q * m.latencies.size()))];
      };
      std::cout << absl::StrFormat("[ load ] %-18s %8d %8d %9.2f %9.2f %8.1f\n", name,
                                   m.latencies.size(), m.rejected, at(0.50), at(0.99),
                                   m.latencies.size() / seconds);
    }
  }

 private:
  struct Method {
    std::vector<double> latencies;
    int64_t rejected = 0;
    int64_t errors = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, Method> methods_;
  std::vector<std::string> samples_;
};

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return ctx;
}

std::vector<float> RandomRows(std::mt19937& rng, int64_t rows) {
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(rows * kDIn));
  for (float& v : x) v = normal(rng);
  return x;
}

TEST(LoadTest, MixedClientsGetNoErrorsButDeliberateRejections) {
  const double seconds = EnvDouble("SAEDICT_LOAD_SECONDS", 15);
  const double max_growth = EnvDouble("SAEDICT_LOAD_MAX_RSS_GROWTH", 0.05);
  ScratchDir scratch;
  const fs::path root = scratch.path() / "root";
  fs::create_directories(root);
  ASSERT_TRUE(WriteSaeLensFolder(root / "sae",
                                 RandomDictionary(engine::Architecture::kTopK, kDIn, kDSae, 16, 3))
                  .ok());
  SaedictdProcess::Options options;
  options.data_dir = scratch.path() / "data";
  options.dictionary_root = root;
  options.port_file = scratch.path() / "port";
  // Two 512-row encodes fill the queue: a third concurrent one is rejected.
  options.extra_flags = {"--demo=false", "--max_queued_tokens=1024"};
  absl::StatusOr<std::unique_ptr<SaedictdProcess>> process = SaedictdProcess::Start(options);
  ASSERT_TRUE(process.ok()) << process.status();
  std::shared_ptr<grpc::Channel> channel = (*process)->Connect();
  auto admin = v1::Saedict::NewStub(channel);
  {
    v1::LoadDictionaryRequest load;
    load.set_id("d");
    load.set_path("sae");
    v1::LoadDictionaryResponse loaded;
    ASSERT_THAT(admin->LoadDictionary(Ctx().get(), load, &loaded), GrpcOk());
  }

  Recorder recorder;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> acked_docs{0};
  std::mutex acked_mu;
  std::vector<uint64_t> acked_first_ids;  // first id of every acknowledged batch
  std::set<uint64_t> stored_first_ids;    // the same, each once
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;

  for (int t = 0; t < 3; ++t) {  // unary Encode, each on its own channel
    clients.emplace_back([&, t] {
      auto stub = v1::Saedict::NewStub((*process)->Connect());
      std::mt19937 rng(100 + t);
      while (!stop) {
        v1::EncodeRequest r;
        r.set_dictionary_id("d");
        *r.mutable_activations() = F32Tensor(RandomRows(rng, kEncodeRows), {kEncodeRows, kDIn});
        v1::EncodeResponse out;
        const auto start = std::chrono::steady_clock::now();
        grpc::Status s = stub->Encode(Ctx().get(), r, &out);
        recorder.Record("Encode", Since(start), s);
        if (s.ok() && out.codes().num_rows() != kEncodeRows) {
          recorder.Record("Encode", 0, grpc::Status(grpc::StatusCode::INTERNAL, "row count"));
        }
      }
    });
  }
  clients.emplace_back([&] {  // EncodeStream, 20 messages per stream
    auto stub = v1::Saedict::NewStub((*process)->Connect());
    std::mt19937 rng(200);
    while (!stop) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      auto stream = stub->EncodeStream(&ctx);
      bool broken = false;
      for (int i = 0; i < 20 && !stop && !broken; ++i) {
        v1::EncodeRequest r;
        if (i == 0) r.set_dictionary_id("d");
        *r.mutable_activations() = F32Tensor(RandomRows(rng, kStreamRows), {kStreamRows, kDIn});
        const auto start = std::chrono::steady_clock::now();
        v1::EncodeResponse out;
        broken = !stream->Write(r) || !stream->Read(&out);
        if (!broken) recorder.Record("EncodeStream msg", Since(start), grpc::Status::OK);
      }
      stream->WritesDone();
      v1::EncodeResponse rest;
      while (stream->Read(&rest)) {
      }
      recorder.Record("EncodeStream", 0, stream->Finish());
    }
  });
  for (int t = 0; t < 2; ++t) {  // Ingest, 10 batches per stream, ids unique per thread
    clients.emplace_back([&, t] {
      auto stub = v1::Saedict::NewStub((*process)->Connect());
      const uint64_t first_id = static_cast<uint64_t>(t) << 32;
      uint64_t next_id = first_id;
      int seed = 300 + t;
      while (!stop) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
        auto stream = stub->Ingest(&ctx);
        int written = 0;
        for (int b = 0; b < 10 && !stop; ++b, ++written) {
          const auto start = std::chrono::steady_clock::now();
          if (next_id == first_id + kIdsPerIngestClient) next_id = first_id;
          std::vector<TestDoc> docs =
              MakeDocs(kDocsPerBatch, kTokensPerDoc, kTokensPerDoc, kDIn, seed++, next_id);
          next_id += kDocsPerBatch;
          if (!stream->Write(MakeIngestRequest(b == 0 ? "d" : "", b == 0 ? "c" : "", docs))) break;
          v1::IngestAck ack;
          if (!stream->Read(&ack)) break;
          recorder.Record("Ingest batch", Since(start), grpc::Status::OK);
          acked_docs += kDocsPerBatch;
          std::lock_guard<std::mutex> lock(acked_mu);
          if (stored_first_ids.insert(next_id - kDocsPerBatch).second) {
            acked_first_ids.push_back(next_id - kDocsPerBatch);
          }
        }
        stream->WritesDone();
        recorder.Record("Ingest", 0, stream->Finish());
      }
    });
  }
  clients.emplace_back([&] {  // reads
    auto stub = v1::Saedict::NewStub((*process)->Connect());
    std::mt19937 rng(400);
    while (!stop) {
      const uint32_t feature = rng() % kDSae;
      auto timed = [&](const std::string& name, auto&& call) {
        const auto start = std::chrono::steady_clock::now();
        grpc::Status s = call();
        recorder.Record(name, Since(start), s);
      };
      timed("GetFeature", [&] {
        v1::GetFeatureRequest r;
        r.set_dictionary_id("d");
        r.set_feature(feature);
        r.set_top_n(5);
        v1::GetFeatureResponse out;
        return stub->GetFeature(Ctx().get(), r, &out);
      });
      timed("TopActivations", [&] {
        v1::TopActivationsRequest r;
        r.set_dictionary_id("d");
        r.set_feature(feature);
        r.set_n(10);
        v1::TopActivationsResponse out;
        return stub->TopActivations(Ctx().get(), r, &out);
      });
      std::optional<uint64_t> doc;
      {
        std::lock_guard<std::mutex> lock(acked_mu);
        if (!acked_first_ids.empty()) {
          doc = acked_first_ids[rng() % acked_first_ids.size()] + rng() % kDocsPerBatch;
        }
      }
      if (doc) {
        timed("GetDocument", [&] {
          v1::GetDocumentRequest r;
          r.set_corpus("c");
          r.set_doc_id(*doc);
          v1::GetDocumentResponse out;
          return stub->GetDocument(Ctx().get(), r, &out);
        });
      }
      timed("ListDictionaries", [&] {
        v1::ListDictionariesRequest r;
        v1::ListDictionariesResponse out;
        return stub->ListDictionaries(Ctx().get(), r, &out);
      });
    }
  });

  // Memory: sampled once a second. RocksDB's memtables fill and flush, so
  // single samples swing; the mean of the second quarter (after warm-up) is
  // compared with the mean of the last quarter.
  std::vector<std::pair<double, int64_t>> rss_samples;  // (seconds, KiB)
  while (Since(t0) < seconds) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    rss_samples.emplace_back(Since(t0), RssKib((*process)->pid()));
  }
  auto mean_rss = [&](double from, double to) {
    double sum = 0;
    int count = 0;
    for (const auto& [t, kib] : rss_samples) {
      if (t >= from * seconds && t < to * seconds) {
        sum += static_cast<double>(kib);
        ++count;
      }
    }
    return count > 0 ? sum / count : 0.0;
  };
  const double rss_warm = mean_rss(0.25, 0.5), rss_end = mean_rss(0.75, 1.01);
  int64_t rss_peak = 0;
  for (const auto& [t, kib] : rss_samples) rss_peak = std::max(rss_peak, kib);
  stop = true;
  for (std::thread& c : clients) c.join();
  const double elapsed = Since(t0);
  recorder.Print(elapsed);
  const double growth = rss_warm > 0 ? (rss_end - rss_warm) / rss_warm : 0;
  std::string timeline;  // mean RSS per tenth of the run: a plateau, a sawtooth or a climb
  for (int tenth = 0; tenth < 10; ++tenth) {
    absl::StrAppendFormat(&timeline, " %.0f", mean_rss(tenth / 10.0, (tenth + 1) / 10.0) / 1024);
  }
  std::cout << "[ load ] server RSS MiB per tenth of the run:" << timeline << "\n";
  std::cout << absl::StrFormat(
      "[ load ] %.0f s; server RSS %.0f KiB (mean of the second quarter), %.0f KiB (mean of the "
      "last quarter): %+.1f%%, peak %d "
      "KiB; %d documents acknowledged, %d distinct stored\n",
      elapsed, rss_warm, rss_end, 100 * growth, rss_peak, acked_docs.load(),
      stored_first_ids.size() * kDocsPerBatch);

  EXPECT_EQ(recorder.errors(), 0) << "first errors: "
                                  << ::testing::PrintToString(recorder.samples());
  EXPECT_GT(recorder.ok("Encode"), 0);
  EXPECT_GT(recorder.ok("EncodeStream msg"), 0);
  EXPECT_GT(recorder.ok("Ingest batch"), 0);
  EXPECT_GT(recorder.ok("GetFeature"), 0);
  if (seconds >= 300) {
    EXPECT_LE(growth, max_growth) << "server memory grew after warm-up";
  }
  // Every stored document is counted once, re-ingested ones replaced.
  v1::GetFeatureRequest r;
  r.set_dictionary_id("d");
  r.set_feature(0);
  v1::GetFeatureResponse out;
  ASSERT_THAT(admin->GetFeature(Ctx().get(), r, &out), GrpcOk());
  EXPECT_EQ(out.stats().total_tokens(),
            static_cast<int64_t>(stored_first_ids.size()) * kDocsPerBatch * kTokensPerDoc);
}

}  // namespace
}  // namespace saedict::testing
