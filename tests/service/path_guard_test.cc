// Tests for server/path_guard: client paths must stay under --dictionary_root.
#include "service/path_guard.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::service {
namespace {

namespace fs = std::filesystem;
using ::saedict::testing::ScratchDir;
using ::saedict::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

// <scratch>/root/{sae/cfg.json, sub/, link_out -> ../outside, link_in -> sae}
// <scratch>/outside/secret, <scratch>/root2/sae (a sibling sharing the prefix)
class PathGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = scratch_.path() / "root";
    outside_ = scratch_.path() / "outside";
    fs::create_directories(root_ / "sae");
    fs::create_directories(root_ / "sub");
    fs::create_directories(outside_);
    fs::create_directories(scratch_.path() / "root2" / "sae");
    std::ofstream(root_ / "sae" / "cfg.json") << "{}";
    std::ofstream(outside_ / "secret") << "x";
    fs::create_directory_symlink(outside_, root_ / "link_out");
    fs::create_directory_symlink(root_ / "sae", root_ / "link_in");
    fs::create_symlink(outside_ / "secret", root_ / "file_link_out");
  }

  ScratchDir scratch_;
  fs::path root_;
  fs::path outside_;
};

TEST_F(PathGuardTest, RelativePathInsideRoot) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(fs::path p, ResolveUnderRoot(root_, "sae"));
  EXPECT_EQ(p, fs::canonical(root_ / "sae"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(fs::path f, ResolveUnderRoot(root_, "sae/cfg.json"));
  EXPECT_EQ(f, fs::canonical(root_ / "sae" / "cfg.json"));
}

TEST_F(PathGuardTest, DotDotThatStaysInsideIsAllowed) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(fs::path p, ResolveUnderRoot(root_, "sub/../sae"));
  EXPECT_EQ(p, fs::canonical(root_ / "sae"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(fs::path dot, ResolveUnderRoot(root_, "./sae/"));
  EXPECT_EQ(fs::canonical(dot), fs::canonical(root_ / "sae"));
}

TEST_F(PathGuardTest, AbsolutePathInsideRoot) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(fs::path p, ResolveUnderRoot(root_, (root_ / "sae").string()));
  EXPECT_EQ(p, fs::canonical(root_ / "sae"));
}

TEST_F(PathGuardTest, RootItselfIsInside) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(fs::path p, ResolveUnderRoot(root_, root_.string()));
  EXPECT_EQ(p, fs::canonical(root_));
}

TEST_F(PathGuardTest, SymlinkStayingInsideIsAllowed) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(fs::path p, ResolveUnderRoot(root_, "link_in"));
  EXPECT_EQ(p, fs::canonical(root_ / "sae"));
}

TEST_F(PathGuardTest, RootGivenThroughSymlinkWorks) {
  fs::create_directory_symlink(root_, scratch_.path() / "root_alias");
  SAEDICT_ASSERT_OK_AND_ASSIGN(fs::path p, ResolveUnderRoot(scratch_.path() / "root_alias", "sae"));
  EXPECT_EQ(p, fs::canonical(root_ / "sae"));
}

struct DeniedCase {
  const char* name;
  std::string requested;  // "$S" is replaced by the scratch dir
};

void PrintTo(const DeniedCase& c, std::ostream* os) { *os << c.name; }

class PathGuardDeniedTest : public PathGuardTest,
                            public ::testing::WithParamInterface<DeniedCase> {};

TEST_P(PathGuardDeniedTest, PermissionDeniedNamingThePath) {
  std::string requested = GetParam().requested;
  if (size_t at = requested.find("$S"); at != std::string::npos) {
    requested.replace(at, 2, scratch_.path().string());
  }
  EXPECT_THAT(ResolveUnderRoot(root_, requested),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr(requested), HasSubstr("outside"))));
}

INSTANTIATE_TEST_SUITE_P(
    Escapes, PathGuardDeniedTest,
    ::testing::Values(DeniedCase{"DotDot", "../outside"},
                      DeniedCase{"DotDotFile", "../outside/secret"},
                      DeniedCase{"DeepDotDot", "sae/../../outside"},
                      // Outside paths that do not exist are denied, not NOT_FOUND:
                      // the answer must not reveal what exists outside the root.
                      DeniedCase{"DotDotMissing", "../no_such_thing"},
                      DeniedCase{"AbsoluteOutside", "$S/outside"},
                      DeniedCase{"AbsoluteOutsideMissing", "$S/nowhere/else"},
                      DeniedCase{"AbsoluteSlash", "/"}, DeniedCase{"AbsoluteEtc", "/etc/passwd"},
                      DeniedCase{"SiblingWithSamePrefix", "../root2/sae"},
                      DeniedCase{"AbsoluteSiblingWithSamePrefix", "$S/root2/sae"},
                      DeniedCase{"DirSymlinkOut", "link_out"},
                      DeniedCase{"ThroughDirSymlinkOut", "link_out/secret"},
                      DeniedCase{"FileSymlinkOut", "file_link_out"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(PathGuardTest, MissingPathIsNotFound) {
  EXPECT_THAT(ResolveUnderRoot(root_, "no_such_sae"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no_such_sae")));
  EXPECT_THAT(ResolveUnderRoot(root_, "sae/missing.safetensors"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("sae/missing.safetensors")));
  EXPECT_THAT(ResolveUnderRoot(root_, (root_ / "gone").string()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("gone")));
}

TEST_F(PathGuardTest, EmptyPathIsInvalidArgument) {
  EXPECT_THAT(ResolveUnderRoot(root_, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("path")));
}

TEST_F(PathGuardTest, MissingRootIsNotOk) {
  absl::StatusOr<fs::path> p = ResolveUnderRoot(scratch_.path() / "no_root", "sae");
  EXPECT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("no_root"));
}

}  // namespace
}  // namespace saedict::service
