// saedictd's --config file: text-format ServerConfig -> flag arguments, its
// errors, and finding --config on a command line.
#include "server/config_file.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace saedict::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ConfigFileTest, FieldsBecomeFlagsInFieldOrder) {
  absl::StatusOr<std::vector<std::string>> args = ConfigArguments(R"pb(
    # comments are fine
    http_cors_origins: "https://a.example"
    listen_address: "0.0.0.0"
    demo: false
    max_request_tokens: 65536
    default_deadline: "90s"
    http_cors_origins: "https://b.example"
    port: 0
  )pb",
                                                                  "test");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(*args, ElementsAre("--listen_address=0.0.0.0", "--port=0", "--demo=false",
                                 "--http_cors_origins=https://a.example,https://b.example",
                                 "--default_deadline=90s", "--max_request_tokens=65536"));
  EXPECT_THAT(*ConfigArguments("", "empty"), ElementsAre());
}

TEST(ConfigFileTest, ErrorsNameTheFileLineAndField) {
  absl::StatusOr<std::vector<std::string>> unknown =
      ConfigArguments("port: 1\nprot: 2\n", "cfg.textproto");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("cfg.textproto: line 2"));
  EXPECT_THAT(unknown.status().message(), HasSubstr("prot"));
  absl::StatusOr<std::vector<std::string>> type = ConfigArguments("port: \"x\"", "c");
  ASSERT_FALSE(type.ok());
  EXPECT_THAT(type.status().message(), HasSubstr("line 1"));
  absl::StatusOr<std::vector<std::string>> comma =
      ConfigArguments("http_cors_origins: \"a,b\"", "c");
  ASSERT_FALSE(comma.ok());
  EXPECT_THAT(comma.status().message(), HasSubstr("holds a comma"));
  absl::StatusOr<std::vector<std::string>> missing = ConfigFileArguments("/no/such/file");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST(ConfigFileTest, FindsTheConfigFlagInEitherForm) {
  auto find = [](std::vector<std::string> words) {
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    return FindConfigFlag(static_cast<int>(argv.size()), argv.data());
  };
  EXPECT_EQ(find({"saedictd", "--port=1"}), std::nullopt);
  EXPECT_EQ(find({"saedictd", "--config=a.txt"}), "a.txt");
  EXPECT_EQ(find({"saedictd", "--config", "b.txt", "--port=2"}), "b.txt");
  EXPECT_EQ(find({"saedictd", "--config=a", "-config=c"}), "c");
  EXPECT_EQ(find({"saedictd", "--", "--config=x"}), std::nullopt);
}

}  // namespace
}  // namespace saedict::server
