// End-to-end tests of the dictionary commands (load, list, info, delete)
// through RunCli against the real service core (identity test SAEs, the
// in-memory store) on a real gRPC server; the timeout test talks to a
// GetDictionary double that stalls until the deadline.
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli_test_util.h"
#include "tests/client/core_test_server.h"
#include "tests/client/misbehaving_services.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::client {
namespace {

using ::saedict::testing::CliResult;
using ::saedict::testing::CoreTestServer;
using ::saedict::testing::IsOk;
using ::saedict::testing::LocalGrpcServer;
using ::saedict::testing::RunCliCaptured;
using ::saedict::testing::StallingService;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

class CliDictionaryTest : public ::testing::Test {
 protected:
  void SetUp() override { SAEDICT_ASSERT_OK_AND_ASSIGN(server_, CoreTestServer::Start()); }
  CliResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), "--server=" + server_->target());
    return RunCliCaptured(args);
  }
  void AddDictionary(const std::string& id, int64_t d) {
    ASSERT_THAT(server_->AddDictionary(id, d), IsOk());
  }
  // The dictionary's loaded_at as the CLI prints it (RFC 3339, UTC).
  std::string LoadedAt(const std::string& id) {
    v1::GetDictionaryRequest get;
    get.set_id(id);
    absl::StatusOr<v1::GetDictionaryResponse> info = server_->core()->GetDictionary(get);
    EXPECT_THAT(info, IsOk());
    if (!info.ok()) return "";
    return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                            absl::FromUnixSeconds(info->dictionary().loaded_at().seconds()),
                            absl::UTCTimeZone());
  }
  v1::LoadDictionaryRequest LastLoad() const {
    return server_->requests().Last<v1::LoadDictionaryRequest>("LoadDictionary");
  }

  std::unique_ptr<CoreTestServer> server_;
};

// Columns are as wide as their widest cell ("jumprelu" for ARCH).
std::string TableRow(const std::vector<std::string>& c) {
  return absl::StrFormat("%-2s  %-10s  %-24s  %-8s  %-4s  %-5s  %-1s  %s\n", c[0], c[1], c[2], c[3],
                         c[4], c[5], c[6], c[7]);
}

TEST_F(CliDictionaryTest, ListTable) {
  AddDictionary("d4", 4);
  CliResult load = Run({"load", "gs", "gemma/d16", "--format=gemma_scope"});
  ASSERT_EQ(load.code, kExitOk) << load.err;

  CliResult r = Run({"list"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.err, IsEmpty());
  EXPECT_EQ(r.out, TableRow({"ID", "MODEL", "HOOK", "ARCH", "D_IN", "D_SAE", "K", "FORMAT"}) +
                       TableRow({"d4", "test-model", "blocks.0.hook_resid_post", "topk", "4", "4",
                                 "2", "saelens"}) +
                       // Gemma Scope files name no model or hook; jumprelu has no k.
                       TableRow({"gs", "-", "-", "jumprelu", "16", "16", "-", "gemma_scope"}));
  EXPECT_EQ(LastLoad().format(), v1::SOURCE_FORMAT_GEMMA_SCOPE);
}

TEST_F(CliDictionaryTest, ListJson) {
  CliResult empty = Run({"list", "--json"});
  EXPECT_EQ(empty.code, kExitOk);
  EXPECT_EQ(empty.out, "{\"dictionaries\":[]}\n");

  AddDictionary("d4", 4);
  CliResult r = Run({"--json", "list"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, StartsWith("{\"dictionaries\":[{\"id\":\"d4\""));
  EXPECT_THAT(r.out, HasSubstr("\"d_sae\":\"4\""));
  EXPECT_THAT(r.out, HasSubstr("\"architecture\":\"ARCHITECTURE_TOPK\""));
  EXPECT_THAT(r.out, HasSubstr("\"loaded_at\":\"" + LoadedAt("d4") + "\""));
  EXPECT_EQ(r.out.back(), '\n');
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1);  // one line
}

TEST_F(CliDictionaryTest, EmptyListPrintsHeader) {
  CliResult r = Run({"list"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "ID  MODEL  HOOK  ARCH  D_IN  D_SAE  K  FORMAT\n");
}

TEST_F(CliDictionaryTest, Info) {
  AddDictionary("d4", 4);
  CliResult r = Run({"info", "d4"});
  EXPECT_EQ(r.code, kExitOk);
  // Keys padded to the longest ("rescale_acts_by_decoder_norm:") plus two.
  auto line = [](const std::string& key, const std::string& value) {
    return key + ":" + std::string(28 - key.size() + 2, ' ') + value + "\n";
  };
  EXPECT_THAT(r.out, StartsWith(line("id", "d4") + line("model", "test-model")));
  EXPECT_THAT(r.out, HasSubstr(line("architecture", "topk")));
  EXPECT_THAT(r.out, HasSubstr(line("d_sae", "4")));
  EXPECT_THAT(r.out, HasSubstr(line("rescale_acts_by_decoder_norm", "false")));
  EXPECT_THAT(r.out, HasSubstr(line("source_dtype", "f32")));
  EXPECT_THAT(r.out, HasSubstr(line("weight_bytes", "160 B")));  // W_enc, W_dec 4x4, 2 biases
  EXPECT_THAT(r.out, HasSubstr(line("loaded_at", LoadedAt("d4"))));

  CliResult json = Run({"info", "d4", "--json"});
  EXPECT_EQ(json.code, kExitOk);
  EXPECT_THAT(json.out, StartsWith("{\"id\":\"d4\",\"model_name\":\"test-model\""));
  EXPECT_THAT(json.out, HasSubstr("\"normalization\":\"NORMALIZATION_NONE\""));
}

TEST_F(CliDictionaryTest, LoadAndReplace) {
  CliResult r = Run({"load", "sae-1", "models/d8"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("loaded sae-1\nid:"));
  EXPECT_THAT(r.out, HasSubstr("d_in:"));
  EXPECT_EQ(LastLoad().format(), v1::SOURCE_FORMAT_AUTO);
  EXPECT_FALSE(LastLoad().replace());

  r = Run({"load", "sae-1", "models/d8"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_EQ(r.err,
            "error: ALREADY_EXISTS: dictionary 'sae-1' already exists; set replace to overwrite "
            "it\n");
  EXPECT_THAT(r.out, IsEmpty());

  r = Run({"load", "sae-1", "sparsify/d8", "--replace", "--format", "sparsify", "--json"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("{\"id\":\"sae-1\""));
  EXPECT_THAT(r.out, HasSubstr("\"source_format\":\"SOURCE_FORMAT_SPARSIFY\""));
  EXPECT_TRUE(LastLoad().replace());
  EXPECT_EQ(LastLoad().format(), v1::SOURCE_FORMAT_SPARSIFY);
}

TEST_F(CliDictionaryTest, LoadErrors) {
  CliResult r = Run({"load", "x", "models/d8", "--format=onnx"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith("error: INVALID_ARGUMENT: --format wants auto, saelens"));

  r = Run({"load", "x", "missing/sae"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith("error: NOT_FOUND: path 'missing/sae': "));
  EXPECT_THAT(r.err, HasSubstr("no such file or directory"));

  r = Run({"load", "x", "/etc/forbidden"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith("error: PERMISSION_DENIED: "));
}

TEST_F(CliDictionaryTest, Delete) {
  AddDictionary("d4", 4);
  CliResult r = Run({"delete", "d4"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "deleted d4\n");

  r = Run({"delete", "d4"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_EQ(r.err, "error: NOT_FOUND: dictionary 'd4' not found\n");

  // JSON names the deleted id (JsonQuote's escaping: OutputTest.JsonQuoteEscapes;
  // ids with characters that need it are refused by the server).
  AddDictionary("d.q", 4);
  r = Run({"--json", "delete", "d.q"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "{\"deleted\":\"d.q\"}\n");
}

// A server that does not answer before the deadline: the CLI reports
// DEADLINE_EXCEEDED after --timeout (not the server's own late answer).
TEST(CliTimeoutTest, TimeoutIsDeadlineExceeded) {
  StallingService stalling;
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<LocalGrpcServer> server,
                               LocalGrpcServer::Start(&stalling));
  const absl::Time start = absl::Now();
  CliResult r = RunCliCaptured({"--server=" + server->target(), "info", "slow", "--timeout=100ms"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith("error: DEADLINE_EXCEEDED: "));
  EXPECT_THAT(r.err, Not(HasSubstr("stalling test double")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

}  // namespace
}  // namespace saedict::client
