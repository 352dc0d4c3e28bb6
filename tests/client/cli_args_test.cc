// Tests of the CLI's argument parsing (client/cli_args.h) and of RunCli's
// usage handling and exit codes, none of which needs a server.
#include "client/cli_args.h"

#include <cmath>
#include <string>
#include <vector>

#include "client/cli.h"
#include "client/commands/command.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli_test_util.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::client {
namespace {

using ::saedict::testing::CliResult;
using ::saedict::testing::RunCliCaptured;
using ::saedict::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

class ParseArgsTest : public ::testing::Test {
 protected:
  absl::StatusOr<ParsedArgs> Parse(const std::vector<std::string>& args) {
    return ParseArgs(args, specs_);
  }

  const FlagSpec k_ = ValueFlag("top_k", FlagKind::kInt, "0", "N", "keep N");
  const FlagSpec replace_ = BoolFlag("replace", "replace");
  const FlagSpec name_ = ValueFlag("name", FlagKind::kString, "x", "NAME", "a name");
  const FlagSpec timeout_ = ValueFlag("timeout", FlagKind::kDuration, "60s", "D", "deadline");
  const std::vector<const FlagSpec*> specs_ = {&k_, &replace_, &name_, &timeout_};
};

TEST_F(ParseArgsTest, DefaultsAndPositionals) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(ParsedArgs a, Parse({"a", "b"}));
  EXPECT_THAT(a.positional(), ElementsAre("a", "b"));
  EXPECT_EQ(a.GetInt("top_k"), 0);
  EXPECT_FALSE(a.GetBool("replace"));
  EXPECT_FALSE(a.IsSet("replace"));
  EXPECT_EQ(a.GetString("name"), "x");
  EXPECT_EQ(a.GetDuration("timeout"), absl::Seconds(60));
}

TEST_F(ParseArgsTest, FlagForms) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      ParsedArgs a, Parse({"--top_k=5", "pos", "--replace", "--name", "y", "-timeout=250ms"}));
  EXPECT_EQ(a.GetInt("top_k"), 5);
  EXPECT_TRUE(a.GetBool("replace"));
  EXPECT_TRUE(a.IsSet("replace"));
  EXPECT_EQ(a.GetString("name"), "y");
  EXPECT_EQ(a.GetDuration("timeout"), absl::Milliseconds(250));
  EXPECT_THAT(a.positional(), ElementsAre("pos"));

  SAEDICT_ASSERT_OK_AND_ASSIGN(a, Parse({"--replace=false", "--top_k", "-3", "--timeout=2"}));
  EXPECT_FALSE(a.GetBool("replace"));
  EXPECT_EQ(a.GetInt("top_k"), -3);
  EXPECT_EQ(a.GetDuration("timeout"), absl::Seconds(2));
}

TEST_F(ParseArgsTest, DoubleDashEndsFlags) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(ParsedArgs a, Parse({"--", "--top_k=1", "-"}));
  EXPECT_THAT(a.positional(), ElementsAre("--top_k=1", "-"));
  EXPECT_EQ(a.GetInt("top_k"), 0);
}

TEST_F(ParseArgsTest, DashesInFlagNamesStandForUnderscores) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(ParsedArgs a, Parse({"--top-k=4", "x"}));
  EXPECT_EQ(a.GetInt("top_k"), 4);
  EXPECT_TRUE(a.IsSet("top_k"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(ParsedArgs b, Parse({"--top-k", "5"}));
  EXPECT_EQ(b.GetInt("top_k"), 5);
  EXPECT_THAT(Parse({"--no-such"}),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown flag --no-such"));
}

TEST_F(ParseArgsTest, Errors) {
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(Parse({"--bogus"}), StatusIs(kInvalid, "unknown flag --bogus"));
  EXPECT_THAT(Parse({"--top_k=many"}),
              StatusIs(kInvalid, "flag --top_k wants an integer, got 'many'"));
  EXPECT_THAT(Parse({"--top_k"}), StatusIs(kInvalid, "flag --top_k needs a value"));
  EXPECT_THAT(Parse({"--replace=maybe"}), StatusIs(kInvalid, HasSubstr("wants true or false")));
  EXPECT_THAT(Parse({"--timeout=soon"}), StatusIs(kInvalid, HasSubstr("want a duration")));
  EXPECT_THAT(Parse({"--timeout=-1s"}), StatusIs(kInvalid, HasSubstr("must be positive")));
}

TEST(ParseArgsDoubleTest, NumbersAndErrors) {
  const FlagSpec x = ValueFlag("min_cosine", FlagKind::kDouble, "", "X", "a threshold");
  const std::vector<const FlagSpec*> specs = {&x};
  SAEDICT_ASSERT_OK_AND_ASSIGN(ParsedArgs a, ParseArgs(std::vector<std::string>{}, specs));
  EXPECT_FALSE(a.IsSet("min_cosine"));
  EXPECT_TRUE(std::isnan(a.GetDouble("min_cosine")));  // no default
  SAEDICT_ASSERT_OK_AND_ASSIGN(a,
                               ParseArgs(std::vector<std::string>{"--min_cosine", "-0.25"}, specs));
  EXPECT_TRUE(a.IsSet("min_cosine"));
  EXPECT_EQ(a.GetDouble("min_cosine"), -0.25);
  SAEDICT_ASSERT_OK_AND_ASSIGN(a, ParseArgs(std::vector<std::string>{"--min-cosine=1e-1"}, specs));
  EXPECT_EQ(a.GetDouble("min_cosine"), 0.1);
  EXPECT_THAT(
      ParseArgs(std::vector<std::string>{"--min_cosine=high"}, specs),
      StatusIs(absl::StatusCode::kInvalidArgument, "flag --min_cosine wants a number, got 'high'"));
  EXPECT_EQ(FormatFlagHelp(specs), "  --min_cosine=X  a threshold\n");  // no "(default )"
}

TEST_F(ParseArgsTest, FlagHelpIsAligned) {
  EXPECT_EQ(FormatFlagHelp(specs_),
            "  --top_k=N    keep N (default 0)\n"
            "  --replace    replace\n"
            "  --name=NAME  a name (default x)\n"
            "  --timeout=D  deadline (default 60s)\n");
}

TEST(RunCliUsageTest, TopLevelHelp) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--help"}, {"-h"}, {"help"}}) {
    CliResult r = RunCliCaptured(args);
    EXPECT_EQ(r.code, kExitOk) << args[0];
    EXPECT_THAT(r.out, StartsWith("usage: saedict [--server=HOST:PORT]"));
    EXPECT_THAT(r.err, IsEmpty());
    for (const Command* c : AllCommands()) EXPECT_THAT(r.out, HasSubstr("  " + c->name + " "));
  }
}

TEST(RunCliUsageTest, EveryCommandHasHelp) {
  for (const Command* c : AllCommands()) {
    CliResult r = RunCliCaptured({c->name, "--help"});
    EXPECT_EQ(r.code, kExitOk) << c->name;
    EXPECT_THAT(r.out, StartsWith("usage: saedict " + c->name));
    EXPECT_THAT(r.out, HasSubstr("--server=HOST:PORT"));
    for (const FlagSpec& f : c->flags) EXPECT_THAT(r.out, HasSubstr("--" + f.name));
    EXPECT_EQ(RunCliCaptured({"help", c->name}).out, r.out);
  }
}

TEST(RunCliUsageTest, EncodeHelpListsFlags) {
  CliResult r = RunCliCaptured({"encode", "--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("usage: saedict encode ID INPUT.npy OUTPUT.npz [flags]"));
  EXPECT_THAT(r.out, HasSubstr("--top_k=N"));
  EXPECT_THAT(r.out, HasSubstr("--batch_rows=N"));
  EXPECT_THAT(r.out, HasSubstr("--reconstruction"));
}

TEST(RunCliUsageTest, UsageErrorsExit2) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, "error: no command given"},
      {{"frobnicate"}, "error: unknown command 'frobnicate'"},
      {{"list", "--bogus"}, "error: unknown flag --bogus"},
      {{"--bogus", "list"}, "error: unknown flag --bogus"},
      {{"info"}, "error: info takes 1 argument (ID), got 0"},
      {{"encode", "a", "b"}, "error: encode takes 3 arguments (ID INPUT.npy OUTPUT.npz), got 2"},
      {{"list", "extra"}, "error: list takes no arguments, got 1"},
      // similar's IDX is optional (--vector replaces it).
      {{"similar"}, "error: similar takes 1 or 2 arguments (DICT [IDX]), got 0"},
      {{"similar", "a", "1", "2"}, "error: similar takes 1 or 2 arguments (DICT [IDX]), got 3"},
      {{"similar", "a", "1", "--min_cosine=x"}, "error: flag --min_cosine wants a number"},
      {{"family", "a"}, "error: family takes 2 arguments (DICT IDX), got 1"},
      {{"encode", "a", "b", "c", "--top_k=x"}, "error: flag --top_k wants an integer"},
      {{"--timeout=never", "list"}, "error: flag --timeout"},
      {{"help", "frobnicate"}, "error: no help for 'frobnicate'"},
  };
  for (const Case& c : cases) {
    CliResult r = RunCliCaptured(c.args);
    EXPECT_EQ(r.code, kExitUsage) << c.message;
    EXPECT_THAT(r.err, StartsWith(c.message));
    EXPECT_THAT(r.err, HasSubstr("usage: saedict"));
    EXPECT_THAT(r.out, IsEmpty());
  }
}

TEST(RunCliUsageTest, OptionalArgumentsInBracketsInTheUsage) {
  CliResult r = RunCliCaptured({"similar", "--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, StartsWith("usage: saedict similar DICT [IDX] [flags]\n"));
  EXPECT_THAT(r.out, HasSubstr("--vector=FILE.npy"));
  EXPECT_THAT(r.out, HasSubstr("--min_cosine=X"));
  r = RunCliCaptured({"families", "--help"});
  EXPECT_THAT(r.out, StartsWith("usage: saedict families DICT [flags]\n"));
  EXPECT_THAT(r.out, HasSubstr("--page_size=N"));
  EXPECT_THAT(r.out, HasSubstr("--all"));
}

TEST(RunCliUsageTest, CommandFoundAfterGlobalFlagValues) {
  // `--server HOST` consumes HOST; the command is the next token.
  CliResult r = RunCliCaptured({"--server", "example:1", "--json", "info", "--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, StartsWith("usage: saedict info ID"));
}

TEST(RunCliUsageTest, UnreachableServerIsUnavailable) {
  CliResult r = RunCliCaptured({"--server=127.0.0.1:1", "--timeout=5s", "list"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith("error: UNAVAILABLE: "));
  EXPECT_THAT(r.err, HasSubstr("(server 127.0.0.1:1)\n"));
}

}  // namespace
}  // namespace saedict::client
