// The Prometheus endpoint of a real SaedictServer, scraped over loopback
// HTTP after real traffic: RPC latency by method and code, encode and ingest
// counters equal to what was sent, storage per column family, index sizes;
// only bounded labels (never a feature, document or token); and
// `promtool check metrics` accepts the text (skips visibly without promtool).
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/server/corpus_test_util.h"
#include "tests/server/grpc_test_fixture.h"
#include "tests/test_util/loopback_http.h"

namespace saedict::testing {
namespace {

using ::testing::HasSubstr;

// The value of the sample `name{labels}` (labels exactly as exposed), or -1.
double Sample(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, series + " "))
      return std::stod(std::string(line.substr(series.size() + 1)));
  }
  return -1;
}

class GrpcMetricsTest : public GrpcServerTest {
 protected:
  void Customize(server::ServerOptions* options) override { options->metrics_port = 0; }

  std::string Scrape() {
    absl::StatusOr<HttpResponse> r = HttpGet(server_->metrics_port(), "/metrics");
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    EXPECT_EQ(r->status, 200);
    EXPECT_THAT(r->headers, HasSubstr("text/plain"));
    return r->body;
  }

  // Loads "d", encodes 5 + 3 rows, ingests 4 documents of 6 tokens, one bad encode.
  void Traffic() {
    WriteSae("sae", engine::Architecture::kTopK);
    ASSERT_THAT(Load("d", "sae"), GrpcOk());
    std::vector<float> x(static_cast<size_t>(8 * kDIn), 0.5f);
    v1::EncodeResponse response;
    ASSERT_THAT(
        EncodeRows("d", std::vector<float>(x.begin(), x.begin() + 5 * kDIn), 5, kDIn, &response),
        GrpcOk());
    ASSERT_THAT(
        EncodeRows("d", std::vector<float>(x.begin(), x.begin() + 3 * kDIn), 3, kDIn, &response),
        GrpcOk());
    EXPECT_FALSE(EncodeRows("nope", x, 8, kDIn, &response).ok());
    IngestOutcome ingest =
        RunIngest(*stub_, {MakeIngestRequest("d", "c", MakeDocs(4, 6, 6, kDIn, 3))});
    ASSERT_THAT(ingest.status, GrpcOk());
  }
};

TEST_F(GrpcMetricsTest, CountsWhatHappened) {
  Traffic();
  const std::string text = Scrape();
  EXPECT_EQ(Sample(text,
                   "saedict_rpc_duration_seconds_count{code=\"OK\",method=\"Encode\","
                   "service=\"saedict.v1.Saedict\"}"),
            2);
  EXPECT_EQ(Sample(text,
                   "saedict_rpc_duration_seconds_count{code=\"NOT_FOUND\",method=\"Encode\","
                   "service=\"saedict.v1.Saedict\"}"),
            1);
  EXPECT_EQ(Sample(text,
                   "saedict_rpc_duration_seconds_count{code=\"OK\",method=\"Ingest\","
                   "service=\"saedict.v1.Saedict\"}"),
            1);
  const std::string mode = FastestExactMode() == v1::COMPUTE_MODE_FAST_EXACT ? "fast_exact" : "f32";
  // 5 + 3 encoded rows and the 24 ingested tokens all went through the batcher.
  EXPECT_EQ(Sample(text, "saedict_encode_tokens_total{compute_mode=\"" + mode + "\"}"), 8 + 24);
  EXPECT_EQ(Sample(text, "saedict_ingest_tokens_total"), 24);
  EXPECT_EQ(Sample(text, "saedict_ingest_documents_total"), 4);
  EXPECT_EQ(Sample(text, "saedict_ingest_requests_total"), 1);
  EXPECT_GT(Sample(text, "saedict_ingest_bytes_total"), 24 * kDIn * 4);
  EXPECT_GE(Sample(text, "saedict_encode_batch_rows_count"), 3);
  EXPECT_EQ(Sample(text, "saedict_encode_queue_tokens"), 0);
  EXPECT_EQ(Sample(text, "saedict_dictionaries"), 1);
  EXPECT_GT(Sample(text, "saedict_process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(Sample(text, "saedict_storage_estimated_keys{column_family=\"docs\"}"), 0);
  EXPECT_THAT(text, HasSubstr("saedict_storage_sst_bytes{column_family=\"forward\"}"));
  EXPECT_THAT(text, HasSubstr("saedict_rpc_in_flight{method=\"Encode\""));
}

TEST_F(GrpcMetricsTest, IndexSizesOnceBuilt) {
  Traffic();
  v1::GetDictionaryRequest get;
  get.set_id("d");
  for (int i = 0; i < 600; ++i) {  // the builder thread: up to a minute
    v1::GetDictionaryResponse info;
    ASSERT_THAT(stub_->GetDictionary(Ctx().get(), get, &info), GrpcOk());
    if (info.dictionary().index().neighbours_state() == v1::INDEX_STATE_READY) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  const std::string text = Scrape();
  EXPECT_EQ(Sample(text, "saedict_index_vectors{dictionary=\"d\",kind=\"decoder\"}"), kDSae);
  EXPECT_GT(Sample(text, "saedict_index_memory_bytes{dictionary=\"d\",kind=\"decoder\"}"), 0);
  EXPECT_EQ(Sample(text, "saedict_index_ready{dictionary=\"d\",kind=\"decoder\",state=\"ready\"}"),
            1);
  EXPECT_EQ(Sample(text, "saedict_index_vectors{dictionary=\"d\",kind=\"neighbours\"}"), kDSae);
  EXPECT_GE(Sample(text, "saedict_index_build_duration_seconds{dictionary=\"d\",kind=\"decoder\"}"),
            0);
}

TEST_F(GrpcMetricsTest, OnlyBoundedLabelsAndConventionalNames) {
  Traffic();
  const std::string text = Scrape();
  const std::set<std::string> allowed = {
      "service",       "method",     "code", "reason", "compute_mode",
      "column_family", "dictionary", "kind", "state",  "le", "quantile"};
  const std::regex label(R"(([a-z_]+)=\")");
  int samples = 0;
  for (absl::string_view line_view : absl::StrSplit(text, '\n')) {
    const std::string line(line_view);
    if (line.empty() || line[0] == '#') continue;
    ++samples;
    // exposer_*: prometheus-cpp's own metrics of the /metrics endpoint.
    EXPECT_TRUE(absl::StartsWith(line, "saedict_") || absl::StartsWith(line, "exposer_")) << line;
    const size_t open = line.find('{');
    if (open == std::string::npos) continue;
    const std::string labels = line.substr(open, line.find('}') - open);
    for (std::sregex_iterator it(labels.begin(), labels.end(), label), end; it != end; ++it) {
      EXPECT_TRUE(allowed.count((*it)[1].str())) << "label " << (*it)[1] << " in " << line;
    }
  }
  EXPECT_GT(samples, 50);
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, "# TYPE") && absl::EndsWith(line, " counter")) {
      EXPECT_TRUE(absl::StrContains(line, "_total ")) << line;
    }
  }
}

TEST_F(GrpcMetricsTest, PromtoolAcceptsTheExposition) {
  std::string promtool = SAEDICT_PROMTOOL;
  if (!std::filesystem::exists(promtool) &&
      std::system("command -v promtool >/dev/null 2>&1") == 0) {
    promtool = "promtool";
  }
  if (!std::filesystem::exists(promtool) && promtool != "promtool") {
    GTEST_SKIP() << "SKIPPED: no promtool (bash deploy/dev.sh build fetches it into "
                    "build/tools/bin from Debian's prometheus package)";
  }
  Traffic();
  const std::filesystem::path file = scratch_.path() / "metrics.txt";
  std::ofstream(file) << Scrape();
  const std::filesystem::path log = scratch_.path() / "promtool.log";
  const std::string command = absl::StrCat("'", promtool, "' check metrics < '", file.string(),
                                           "' > '", log.string(), "' 2>&1");
  const int rc = std::system(command.c_str());
  std::ifstream in(log);
  std::stringstream out;
  out << in.rdbuf();
  EXPECT_EQ(rc, 0) << out.str();
  EXPECT_EQ(out.str(), "") << "promtool lint findings";
}

TEST_F(GrpcMetricsTest, OtherPathsAndMalformedRequestsDoNotHurtTheServer) {
  for (const char* path : {"/nothing", "/", "/metrics/x", "/%s%s%n"}) {
    absl::StatusOr<HttpResponse> r = HttpGet(server_->metrics_port(), path);
    ASSERT_TRUE(r.ok()) << path << ": " << r.status();
    EXPECT_EQ(r->status, 200) << path << " (civetweb's 404 page crashed the server)";
  }
  EXPECT_THAT(Scrape(), HasSubstr("saedict_dictionaries 0")) << "still serving";
  v1::ListDictionariesResponse list;
  EXPECT_THAT(stub_->ListDictionaries(Ctx().get(), {}, &list), GrpcOk());
}

}  // namespace
}  // namespace saedict::testing
