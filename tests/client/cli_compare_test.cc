// End-to-end tests of `saedict compare` and `saedict eval` through RunCli
// against the real service core on a real gRPC server (core_test_server.h):
// the gate's exit codes (0 pass, 1 below --fail_below, 2 on any error, with
// nothing sent for bad flags), the text summary, the --json report parsed
// back, and eval on sent activations (.npy) and on a stored corpus.
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "formats/codecs/json.h"
#include "formats/codecs/npy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli_test_util.h"
#include "tests/client/core_test_server.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::client {
namespace {

using ::saedict::testing::CliResult;
using ::saedict::testing::CoreTestServer;
using ::saedict::testing::IsOk;
using ::saedict::testing::RunCliCaptured;
using ::saedict::testing::ScratchDir;
using ::testing::HasSubstr;

constexpr int64_t kDIn = 16, kDSae = 48;

engine::Dictionary Permuted(const engine::Dictionary& d, const std::vector<int64_t>& perm) {
  engine::Dictionary out = d;
  for (int64_t i = 0; i < kDSae; ++i) {
    for (int64_t j = 0; j < kDIn; ++j) {
      out.w_dec[i * kDIn + j] = d.w_dec[perm[i] * kDIn + j];
      out.w_enc[j * kDSae + i] = d.w_enc[j * kDSae + perm[i]];
    }
    out.b_enc[i] = d.b_enc[perm[i]];
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

class CliCompareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SAEDICT_ASSERT_OK_AND_ASSIGN(server_, CoreTestServer::Start());
    const engine::Dictionary a =
        testing::RandomDictionary(engine::Architecture::kTopK, kDIn, kDSae, 4, 3);
    std::vector<int64_t> perm(kDSae);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), std::mt19937(4));
    ASSERT_THAT(server_->AddDictionary("a", a), IsOk());
    ASSERT_THAT(server_->AddDictionary("p", Permuted(a, perm)), IsOk());
    ASSERT_THAT(
        server_->AddDictionary(
            "other", testing::RandomDictionary(engine::Architecture::kTopK, kDIn, kDSae, 4, 11)),
        IsOk());
    ASSERT_THAT(server_->AddDictionary("d8", 8), IsOk());
  }
  CliResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), "--server=" + server_->target());
    return RunCliCaptured(args);
  }
  std::string Path(const std::string& name) const { return (dir_.path() / name).string(); }
  int Sent(const char* method) const { return server_->requests().Count(method); }

  ScratchDir dir_;
  std::unique_ptr<CoreTestServer> server_;
};

TEST_F(CliCompareTest, GatePassesFailsAndWritesTheReport) {
  const CliResult pass = Run({"compare", "p", "a", "--metric", "hungarian_mean", "--fail-below",
                              "0.99", "--json", Path("r.json")});
  ASSERT_EQ(pass.code, 0) << pass.err;
  EXPECT_THAT(pass.out, HasSubstr("MMCS"));
  EXPECT_THAT(pass.out, HasSubstr("PASS"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(google::protobuf::Struct report,
                               formats::ParseJsonObject(ReadFile(Path("r.json")), "report"));
  EXPECT_TRUE(report.fields().at("gate").struct_value().fields().at("passed").bool_value());
  EXPECT_EQ(report.fields().at("matches_a").list_value().values_size(), kDSae);
  EXPECT_NEAR(
      report.fields().at("summary").struct_value().fields().at("assignment_mean").number_value(),
      1.0, 1e-9);

  const CliResult fail = Run({"compare", "a", "other", "--fail-below", "0.95"});
  EXPECT_EQ(fail.code, 1) << fail.err;
  EXPECT_THAT(fail.err, HasSubstr("FAIL: mmcs"));
  EXPECT_THAT(fail.out, HasSubstr("FAIL"));

  const CliResult json_stdout = Run({"compare", "a", "p", "--json", "-"});
  ASSERT_EQ(json_stdout.code, 0) << json_stdout.err;
  EXPECT_TRUE(formats::ParseJsonObject(json_stdout.out, "stdout").ok()) << json_stdout.out;
}

TEST_F(CliCompareTest, ErrorsExit2) {
  const int before = Sent("CompareDictionaries");
  EXPECT_EQ(Run({"compare", "a", "p", "--method", "cosine"}).code, 2);
  EXPECT_EQ(Run({"compare", "a", "p", "--method", "activation"}).code, 2);  // no --corpus
  EXPECT_EQ(Run({"compare", "a", "p", "--fail-below", "3"}).code, 2);
  EXPECT_EQ(Sent("CompareDictionaries"), before) << "bad flags send nothing";
  const CliResult ghost = Run({"compare", "a", "ghost"});
  EXPECT_EQ(ghost.code, 2);
  EXPECT_THAT(ghost.err, HasSubstr("NOT_FOUND"));
  const CliResult din = Run({"compare", "a", "d8"});
  EXPECT_EQ(din.code, 2);
  EXPECT_THAT(din.err, HasSubstr("activation method"));
  const CliResult metric = Run({"compare", "a", "p", "--metric", "svcca", "--fail-below", "0.5"});
  EXPECT_EQ(metric.code, 2);
  EXPECT_THAT(metric.err, HasSubstr("--method activation"));
}

TEST_F(CliCompareTest, EvalActivationsFile) {
  const std::vector<float> x = testing::RandomActivations(200, kDIn, 5);
  ASSERT_THAT(formats::WriteNpyFile(Path("x.npy"), formats::NpyFromFloat32({200, kDIn}, x)),
              IsOk());
  const CliResult r = Run({"eval", "a", "--activations", Path("x.npy"), "--json", Path("e.json"),
                           "--token_errors", Path("err.npy")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("200 tokens"));
  EXPECT_THAT(r.out, HasSubstr("explained variance"));
  EXPECT_THAT(r.out, HasSubstr("absent"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(google::protobuf::Struct report,
                               formats::ParseJsonObject(ReadFile(Path("e.json")), "report"));
  EXPECT_EQ(report.fields().at("eval_type_id").string_value(), "core");
  SAEDICT_ASSERT_OK_AND_ASSIGN(formats::NpyArray errors, formats::ReadNpyFile(Path("err.npy")));
  EXPECT_EQ(errors.shape[0], 200);

  EXPECT_EQ(Run({"eval", "a"}).code, 2);
  EXPECT_EQ(Run({"eval", "a", "--activations", Path("x.npy"), "--corpus", "c"}).code, 2);
  EXPECT_EQ(Run({"eval", "a", "--activations", Path("missing.npy")}).code, 2);
  const CliResult wrong = Run({"eval", "d8", "--activations", Path("x.npy")});
  EXPECT_EQ(wrong.code, 2);
  EXPECT_THAT(wrong.err, HasSubstr("activations"));
  const CliResult corpus = Run({"eval", "a", "--corpus", "none"});
  EXPECT_EQ(corpus.code, 2);
  EXPECT_THAT(corpus.err, HasSubstr("FAILED_PRECONDITION"));
}

}  // namespace
}  // namespace saedict::client
