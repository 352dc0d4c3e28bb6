// The role table and the token file: parsing (with line numbers), role
// order, UNAUTHENTICATED vs PERMISSION_DENIED, reloads that keep the old
// tokens on a bad file, and a table that covers exactly the service's methods.
#include "service/access_policy.h"

#include <fstream>
#include <set>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "saedict/v1/saedict.pb.h"
#include "tests/test_util/test_env.h"

namespace saedict::service {
namespace {

using ::testing::HasSubstr;

std::string Line(const char* role, const std::string& token, const char* name) {
  return std::string(role) + " " + TokenSha256(token) + " " + name + "\n";
}

TEST(AccessPolicyTest, TheTableNamesEveryMethodOfTheServiceOnce) {
  const google::protobuf::ServiceDescriptor* service =
      v1::EncodeRequest::descriptor()->file()->FindServiceByName("Saedict");
  ASSERT_NE(service, nullptr);
  std::set<std::string> in_service, in_table;
  for (int i = 0; i < service->method_count(); ++i) in_service.insert(service->method(i)->name());
  for (const auto& [name, role] : MethodRoles()) {
    EXPECT_TRUE(in_table.insert(name).second) << name << " is in the table twice";
  }
  EXPECT_EQ(in_table, in_service);
}

TEST(AccessPolicyTest, RolesOfTheMethodClasses) {
  EXPECT_EQ(RequiredRole("Encode"), Role::kRead);
  EXPECT_EQ(RequiredRole("GetFeature"), Role::kRead);
  EXPECT_EQ(RequiredRole("Ingest"), Role::kWrite);
  EXPECT_EQ(RequiredRole("LoadDictionary"), Role::kWrite);
  EXPECT_EQ(RequiredRole("DeleteDictionary"), Role::kAdmin);
  EXPECT_EQ(RequiredRole("CreateCheckpoint"), Role::kAdmin);
  EXPECT_EQ(RequiredRole("NoSuchMethod"), std::nullopt);
}

TEST(AccessPolicyTest, TokenSha256IsTheStandardDigest) {
  // printf %s abc | sha256sum
  EXPECT_EQ(TokenSha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AccessPolicyTest, ParsesCommentsBlankLinesAndUppercaseHex) {
  std::string text = "# team tokens\n\n" + Line("read", "t-read", "grafana");
  std::string upper = TokenSha256("t-admin");
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  text += "admin\t" + upper + "\tops  # the operators\n";
  absl::StatusOr<TokenTable> table = TokenTable::Parse(text, "tokens");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 2u);
  ASSERT_TRUE(table->Find("t-read").has_value());
  EXPECT_EQ(table->Find("t-read")->name, "grafana");
  EXPECT_EQ(table->Find("t-read")->role, Role::kRead);
  ASSERT_TRUE(table->Find("t-admin").has_value());
  EXPECT_EQ(table->Find("t-admin")->role, Role::kAdmin);
  EXPECT_FALSE(table->Find("t-other").has_value());
  EXPECT_FALSE(table->Find(TokenSha256("t-read")).has_value()) << "the hash is not a token";
}

TEST(AccessPolicyTest, MalformedLinesAreRejectedWithTheirLineNumber) {
  const std::string good = Line("read", "a", "alice");
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {good + "read " + TokenSha256("b") + "\n", "tokens:2: expected 3 fields"},
      {good + "root " + TokenSha256("b") + " bob\n", "tokens:2: role 'root' is not read"},
      {good + "read s3cret bob\n", "tokens:2: 's3cret' is not a SHA-256 hash"},
      {good + "read " + std::string(64, 'g') + " bob\n", "is not a SHA-256 hash"},
      {good + Line("write", "b", "alice"), "tokens:2: name 'alice' is used twice"},
      {good + Line("write", "a", "bob"), "tokens:2: the hash of 'bob' is already in the file"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<TokenTable> table = TokenTable::Parse(c.text, "tokens");
    ASSERT_FALSE(table.ok()) << c.text;
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(table.status().message(), HasSubstr(c.message));
  }
}

TEST(AccessPolicyTest, AuthOffAdmitsEveryoneAsAdmin) {
  Authenticator off;
  EXPECT_FALSE(off.enabled());
  absl::StatusOr<Principal> p = off.Authorize(std::nullopt, "DeleteDictionary");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->role, Role::kAdmin);
  EXPECT_EQ(off.Authorize(std::nullopt, "NoSuchMethod").status().code(),
            absl::StatusCode::kPermissionDenied);
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  void Write(const std::string& text) { std::ofstream(path_) << text; }
  saedict::testing::ScratchDir scratch_;
  std::filesystem::path path_ = scratch_.path() / "tokens";
};

TEST_F(AuthenticatorTest, UnauthenticatedVersusPermissionDenied) {
  Write(Line("read", "r", "dash") + Line("write", "w", "nb") + Line("admin", "a", "ops"));
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Authenticator::FromFile(path_);
  ASSERT_TRUE(auth.ok()) << auth.status();
  const Authenticator& a = **auth;
  EXPECT_TRUE(a.enabled());
  EXPECT_EQ(a.token_count(), 3u);

  EXPECT_EQ(a.Authorize(std::nullopt, "Encode").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(a.Authorize("Bearer nope", "Encode").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(a.Authorize("Basic cjpy", "Encode").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(a.Authorize("r", "Encode").status().code(), absl::StatusCode::kUnauthenticated)
      << "a bare token without the Bearer scheme";

  EXPECT_TRUE(a.Authorize("Bearer r", "Encode").ok());
  EXPECT_TRUE(a.Authorize("bearer  r ", "Encode").ok()) << "scheme is case-insensitive";
  absl::StatusOr<Principal> denied = a.Authorize("Bearer r", "Ingest");
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.status().message(), HasSubstr("Ingest needs the write role"));
  EXPECT_THAT(denied.status().message(), HasSubstr("'dash' has read"));

  EXPECT_TRUE(a.Authorize("Bearer w", "Ingest").ok());
  EXPECT_EQ(a.Authorize("Bearer w", "DeleteDictionary").status().code(),
            absl::StatusCode::kPermissionDenied);
  absl::StatusOr<Principal> admin = a.Authorize("Bearer a", "DeleteDictionary");
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->name, "ops");
  EXPECT_EQ(a.Authorize("Bearer a", "NoSuchMethod").status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(AuthenticatorTest, ReloadSwapsTokensAndKeepsTheOldOnesWhenTheFileIsBad) {
  Write(Line("read", "old", "a"));
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Authenticator::FromFile(path_);
  ASSERT_TRUE(auth.ok());
  Authenticator& a = **auth;
  Write(Line("read", "new", "b"));
  ASSERT_TRUE(a.Reload().ok());
  EXPECT_FALSE(a.Authorize("Bearer old", "Encode").ok());
  EXPECT_TRUE(a.Authorize("Bearer new", "Encode").ok());

  Write("read not-a-hash c\n");
  absl::Status bad = a.Reload();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr(":1:"));
  EXPECT_TRUE(a.Authorize("Bearer new", "Encode").ok()) << "the old tokens stay in force";

  std::filesystem::remove(path_);
  EXPECT_EQ(a.Reload().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(a.Authorize("Bearer new", "Encode").ok());
}

TEST_F(AuthenticatorTest, AMissingOrBadFileFailsAtStart) {
  EXPECT_EQ(Authenticator::FromFile(path_).status().code(), absl::StatusCode::kNotFound);
  Write("admin x y z\n");
  EXPECT_EQ(Authenticator::FromFile(path_).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace saedict::service
