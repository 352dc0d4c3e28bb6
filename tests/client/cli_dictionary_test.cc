// End-to-end tests of the dictionary commands (load, list, info, delete)
// through RunCli against the in-test service on a real gRPC server.
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "client/cli.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli_test_util.h"
#include "tests/client/fake_saedict_service.h"

namespace saedict::client {
namespace {

using ::saedict::testing::CliResult;
using ::saedict::testing::FakeServer;
using ::saedict::testing::RunCliCaptured;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

class CliDictionaryTest : public ::testing::Test {
 protected:
  CliResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), "--server=" + server_.target());
    return RunCliCaptured(args);
  }

  FakeServer server_;
};

std::string TableRow(const std::vector<std::string>& c) {
  return absl::StrFormat("%-2s  %-10s  %-24s  %-4s  %-4s  %-5s  %-1s  %s\n", c[0], c[1], c[2], c[3],
                         c[4], c[5], c[6], c[7]);
}

TEST_F(CliDictionaryTest, ListTable) {
  server_.service().AddDictionary("d4", 4);
  CliResult load = Run({"load", "gs", "gemma/d16", "--format=gemma_scope"});
  ASSERT_EQ(load.code, kExitOk) << load.err;

  CliResult r = Run({"list"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.err, IsEmpty());
  EXPECT_EQ(r.out, TableRow({"ID", "MODEL", "HOOK", "ARCH", "D_IN", "D_SAE", "K", "FORMAT"}) +
                       TableRow({"d4", "fake-model", "blocks.0.hook_resid_post", "topk", "4", "4",
                                 "2", "saelens"}) +
                       TableRow({"gs", "fake-model", "blocks.0.hook_resid_post", "topk", "16", "16",
                                 "2", "gemma_scope"}));
}

TEST_F(CliDictionaryTest, ListJson) {
  CliResult empty = Run({"list", "--json"});
  EXPECT_EQ(empty.code, kExitOk);
  EXPECT_EQ(empty.out, "{\"dictionaries\":[]}\n");

  server_.service().AddDictionary("d4", 4);
  CliResult r = Run({"--json", "list"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, StartsWith("{\"dictionaries\":[{\"id\":\"d4\""));
  EXPECT_THAT(r.out, HasSubstr("\"d_sae\":\"4\""));
  EXPECT_THAT(r.out, HasSubstr("\"architecture\":\"ARCHITECTURE_TOPK\""));
  EXPECT_THAT(r.out, HasSubstr("\"loaded_at\":\"2023-11-14T22:13:20Z\""));
  EXPECT_EQ(r.out.back(), '\n');
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1);  // one line
}

TEST_F(CliDictionaryTest, EmptyListPrintsHeader) {
  CliResult r = Run({"list"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "ID  MODEL  HOOK  ARCH  D_IN  D_SAE  K  FORMAT\n");
}

TEST_F(CliDictionaryTest, Info) {
  server_.service().AddDictionary("d4", 4);
  CliResult r = Run({"info", "d4"});
  EXPECT_EQ(r.code, kExitOk);
  // Keys padded to the longest ("rescale_acts_by_decoder_norm:") plus two.
  auto line = [](const std::string& key, const std::string& value) {
    return key + ":" + std::string(28 - key.size() + 2, ' ') + value + "\n";
  };
  EXPECT_THAT(r.out, StartsWith(line("id", "d4") + line("model", "fake-model")));
  EXPECT_THAT(r.out, HasSubstr(line("architecture", "topk")));
  EXPECT_THAT(r.out, HasSubstr(line("d_sae", "4")));
  EXPECT_THAT(r.out, HasSubstr(line("rescale_acts_by_decoder_norm", "false")));
  EXPECT_THAT(r.out, HasSubstr(line("source_dtype", "f32")));
  EXPECT_THAT(r.out, HasSubstr(line("weight_bytes", "128 B")));
  EXPECT_THAT(r.out, HasSubstr(line("loaded_at", "2023-11-14T22:13:20Z")));

  CliResult json = Run({"info", "d4", "--json"});
  EXPECT_EQ(json.code, kExitOk);
  EXPECT_THAT(json.out, StartsWith("{\"id\":\"d4\",\"model_name\":\"fake-model\""));
  EXPECT_THAT(json.out, HasSubstr("\"normalization\":\"NORMALIZATION_NONE\""));
}

TEST_F(CliDictionaryTest, LoadAndReplace) {
  CliResult r = Run({"load", "sae-1", "models/d8"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("loaded sae-1\nid:"));
  EXPECT_THAT(r.out, HasSubstr("d_in:"));
  EXPECT_EQ(server_.service().last_load().format(), v1::SOURCE_FORMAT_AUTO);
  EXPECT_FALSE(server_.service().last_load().replace());

  r = Run({"load", "sae-1", "models/d8"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_EQ(r.err, "error: ALREADY_EXISTS: dictionary 'sae-1' already exists\n");
  EXPECT_THAT(r.out, IsEmpty());

  r = Run({"load", "sae-1", "models/d8", "--replace", "--format", "sparsify", "--json"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("{\"id\":\"sae-1\""));
  EXPECT_THAT(r.out, HasSubstr("\"source_format\":\"SOURCE_FORMAT_SPARSIFY\""));
  EXPECT_TRUE(server_.service().last_load().replace());
  EXPECT_EQ(server_.service().last_load().format(), v1::SOURCE_FORMAT_SPARSIFY);
}

TEST_F(CliDictionaryTest, LoadErrors) {
  CliResult r = Run({"load", "x", "models/d8", "--format=onnx"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith("error: INVALID_ARGUMENT: --format wants auto, saelens"));

  r = Run({"load", "x", "missing/sae"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_EQ(r.err, "error: NOT_FOUND: path 'missing/sae' not found\n");

  r = Run({"load", "x", "/etc/forbidden"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith("error: PERMISSION_DENIED: "));
}

TEST_F(CliDictionaryTest, Delete) {
  server_.service().AddDictionary("d4", 4);
  CliResult r = Run({"delete", "d4"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "deleted d4\n");

  r = Run({"delete", "d4"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_EQ(r.err, "error: NOT_FOUND: dictionary 'd4' not found\n");

  server_.service().AddDictionary("d\"q", 4);
  r = Run({"--json", "delete", "d\"q"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "{\"deleted\":\"d\\\"q\"}\n");
}

TEST_F(CliDictionaryTest, TimeoutIsDeadlineExceeded) {
  server_.service().AddDictionary("slow", 4);
  CliResult r = Run({"info", "slow", "--timeout=100ms"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith("error: DEADLINE_EXCEEDED: "));
}

}  // namespace
}  // namespace saedict::client
