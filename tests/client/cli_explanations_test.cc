// The explanation and upload commands end to end through RunCli against the
// real service core on a real gRPC server (core_test_server.h): explain
// (add, list, replace, delete), search, import-explanations (a delphi
// folder, a Neuronpedia .jsonl with --map), upload of a folder outside the
// dictionary root, feature pages showing explanations, and their errors.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "client/cli.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli_test_util.h"
#include "tests/client/core_test_server.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::client {
namespace {

namespace fs = std::filesystem;
using ::saedict::testing::CliResult;
using ::saedict::testing::CoreTestServer;
using ::saedict::testing::IsOk;
using ::saedict::testing::RunCliCaptured;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class CliExplanationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SAEDICT_ASSERT_OK_AND_ASSIGN(server_, CoreTestServer::Start());
    ASSERT_THAT(server_->AddDictionary("a", 8), IsOk());
  }
  CliResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), "--server=" + server_->target());
    return RunCliCaptured(args);
  }
  std::unique_ptr<CoreTestServer> server_;
  saedict::testing::ScratchDir scratch_;
};

TEST_F(CliExplanationsTest, ExplainAddsListsReplacesAndDeletes) {
  CliResult r = Run({"explain", "a", "3", "Plural nouns", "--score=0.8", "--source=pipeline",
                     "--model=gpt-4o-mini"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("added explanation "));
  const std::string id = r.out.substr(18, 16);
  r = Run({"explain", "a", "3", "a person's note"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  r = Run({"explain", "a", "3"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("ID"));
  EXPECT_THAT(r.out, HasSubstr(id + "  pipeline  0.8    gpt-4o-mini  Plural nouns"));
  EXPECT_LT(r.out.find("Plural nouns"), r.out.find("a person's note"));  // scored first
  r = Run({"explain", "a", "3", "plural NOUNS only", "--replace=" + id});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "replaced explanation " + id + " of feature 3 of a\n");
  r = Run({"feature", "a", "3"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("explanations:\n  plural NOUNS only  (human"));
  r = Run({"--json", "explain", "a", "3"});
  EXPECT_THAT(r.out, HasSubstr("\"text\":\"plural NOUNS only\""));
  r = Run({"explain", "a", "3", "--delete=" + id});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "deleted explanation " + id + " of feature 3 of a\n");
  r = Run({"explain", "a", "3", "--delete=" + id});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith("error: NOT_FOUND: explanation_id: feature 3 of dictionary 'a'"));
}

TEST_F(CliExplanationsTest, ExplainErrors) {
  CliResult r = Run({"explain", "a", "99", "x"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND: feature: 99 is not a feature of dictionary 'a'"));
  r = Run({"explain", "a", "x"});
  EXPECT_EQ(r.code, kExitUsage);
  r = Run({"explain", "a", "1", "--replace=0123456789abcdef"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--replace ID needs the new TEXT"));
  r = Run({"explain", "a", "1", "t", "--delete=0123456789abcdef"});
  EXPECT_EQ(r.code, kExitUsage);
}

TEST_F(CliExplanationsTest, SearchRanksAndFilters) {
  ASSERT_EQ(Run({"explain", "a", "1", "days of the week"}).code, kExitOk);
  ASSERT_EQ(Run({"explain", "a", "2", "the week", "--source=delphi"}).code, kExitOk);
  CliResult r = Run({"search", "Week days"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("2 explanations match week days\nRANK"));
  EXPECT_THAT(r.out, HasSubstr("[[days]] of the [[week]]"));
  EXPECT_LT(r.out.find("[[days]]"), r.out.find("the [[week]]\n"));
  r = Run({"search", "week", "--source=delphi"});
  EXPECT_THAT(r.out, StartsWith("1 explanation match week"));
  r = Run({"--json", "search", "week", "--top=1"});
  EXPECT_THAT(r.out, HasSubstr("\"matching_explanations\":\"2\""));
  r = Run({"search", "week", "--dictionary=nope"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND: dictionary_ids[0]"));
  r = Run({"search", "week", "--top=0"});
  EXPECT_EQ(r.code, kExitUsage);
  r = Run({"search", "!!"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("has no words"));
}

TEST_F(CliExplanationsTest, ImportsDelphiFoldersAndNeuronpediaFiles) {
  const fs::path delphi = scratch_.path() / "delphi" / "explanations";
  fs::create_directories(delphi);
  std::ofstream(delphi / "layers.0_latent1.txt") << "\"first latent\"";
  std::ofstream(delphi / "layers.0_latent2.txt") << "\"second latent\"";
  std::ofstream(delphi / "layers.0_latent50.txt") << "\"out of range\"";
  std::ofstream(delphi / "notes.md") << "ignored";
  CliResult r = Run({"import-explanations", (scratch_.path() / "delphi").string(),
                     "--map=layers.0=a"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("imported 2 explanations from 3 files, rejected 1\n"));
  EXPECT_THAT(r.out, HasSubstr("explanations/layers.0_latent50.txt:1: feature: 50"));
  const fs::path np = scratch_.path() / "batch-0.jsonl";
  std::ofstream(np) << R"({"modelId":"m","layer":"3-res","index":"4","description":"colour words"})"
                    << "\n{broken\n";
  r = Run({"import-explanations", np.string(), "--dictionary=a", "--progress"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("imported 1 explanation from 1 file, rejected 1\n"));
  EXPECT_THAT(r.out, HasSubstr("batch-0.jsonl:2: "));
  EXPECT_THAT(r.err, HasSubstr("import"));  // the progress line
  r = Run({"search", "colour latent"});
  EXPECT_THAT(r.out, StartsWith("3 explanations match colour latent"));
  // Errors before anything is sent.
  r = Run({"import-explanations", np.string()});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--dictionary DICT or --map"));
  r = Run({"import-explanations", (scratch_.path() / "none").string(), "--dictionary=a"});
  EXPECT_EQ(r.code, kExitUsage);
  r = Run({"import-explanations", np.string(), "--dictionary=a", "--format=csv"});
  EXPECT_EQ(r.code, kExitUsage);
  r = Run({"import-explanations", np.string(), "--dictionary=zz"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND: header.default_dictionary_id"));
}

TEST_F(CliExplanationsTest, UploadSendsAFolderFromOutsideTheRoot) {
  const fs::path outside = scratch_.path() / "mine";
  fs::copy(server_->dictionary_root() / "models" / "d8", outside, fs::copy_options::recursive);
  CliResult r = Run({"upload", "mine", outside.string(), "--progress"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("uploaded mine ("));
  EXPECT_THAT(r.out, HasSubstr("in 2 files)"));
  EXPECT_THAT(r.err, HasSubstr("upload"));
  r = Run({"info", "mine"});
  EXPECT_THAT(r.out, HasSubstr("upload:cfg.json,sae_weights.safetensors"));
  r = Run({"upload", "mine", outside.string()});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("ALREADY_EXISTS"));
  r = Run({"upload", "mine2", (scratch_.path() / "missing").string()});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("is not a file or folder"));
  std::error_code ec;
  EXPECT_TRUE(!fs::exists(server_->data_dir() / "uploads", ec) ||
              fs::is_empty(server_->data_dir() / "uploads", ec));
}

}  // namespace
}  // namespace saedict::client
