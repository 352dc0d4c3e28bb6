// Tests of formats::FileRoot (reads confined to a directory tree, symlinks
// followed at every level), ReadFileBeneathNoSymlinks (the open that refuses
// a link swapped in after the check) and RandomAccessFile.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "formats/codecs/file_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::formats {
namespace {

namespace fs = std::filesystem;
using ::saedict::testing::IsOk;
using ::saedict::testing::ScratchDir;
using ::saedict::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr auto kDenied = absl::StatusCode::kPermissionDenied;

void Write(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

// <s>/root/{a/b/file, a/loop1 <-> a/loop2, ...}, <s>/outside/{secret, dir/secret}
class FileRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = scratch_.path() / "root";
    outside_ = scratch_.path() / "outside";
    Write(root_ / "a" / "b" / "file", "inside");
    Write(outside_ / "secret", "outside");
    Write(outside_ / "dir" / "secret", "outside dir");
    SAEDICT_ASSERT_OK_AND_ASSIGN(files_, FileRoot::Create(root_));
    canonical_root_ = fs::canonical(root_);
  }

  // PERMISSION_DENIED naming `path` and the root, for every entry point.
  void ExpectDenied(const fs::path& path) {
    const auto denied =
        StatusIs(kDenied, AllOf(HasSubstr(path.string()), HasSubstr(canonical_root_.string()),
                                HasSubstr("outside the root")));
    EXPECT_THAT(files_.Resolve(path), denied);
    EXPECT_THAT(files_.Exists(path), denied);
    EXPECT_THAT(files_.IsRegularFile(path), denied);
    EXPECT_THAT(files_.ReadFile(path), denied);
  }

  ScratchDir scratch_;
  fs::path root_, outside_, canonical_root_;
  FileRoot files_ = FileRoot::Unrestricted();
};

TEST_F(FileRootTest, ReadsAFileInside) {
  EXPECT_TRUE(files_.restricted());
  EXPECT_EQ(files_.root(), canonical_root_);
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::string text, files_.ReadFile(root_ / "a" / "b" / "file"));
  EXPECT_EQ(text, "inside");
  SAEDICT_ASSERT_OK_AND_ASSIGN(bool is_file, files_.IsRegularFile(root_ / "a" / "b" / "file"));
  EXPECT_TRUE(is_file);
  SAEDICT_ASSERT_OK_AND_ASSIGN(bool dir_is_file, files_.IsRegularFile(root_ / "a"));
  EXPECT_FALSE(dir_is_file);
  SAEDICT_ASSERT_OK_AND_ASSIGN(bool exists, files_.Exists(root_ / "a"));
  EXPECT_TRUE(exists);
}

TEST_F(FileRootTest, MissingInsideIsNotFound) {
  const fs::path missing = root_ / "a" / "nope";
  EXPECT_THAT(files_.Resolve(missing),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(missing.string())));
  EXPECT_THAT(files_.ReadFile(missing),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(missing.string())));
  SAEDICT_ASSERT_OK_AND_ASSIGN(bool exists, files_.Exists(missing));
  EXPECT_FALSE(exists);
  SAEDICT_ASSERT_OK_AND_ASSIGN(bool is_file, files_.IsRegularFile(missing));
  EXPECT_FALSE(is_file);
}

TEST_F(FileRootTest, PathsOutsideAreDenied) {
  ExpectDenied(outside_ / "secret");
  ExpectDenied(root_ / ".." / "outside" / "secret");
  ExpectDenied(root_ / "a" / ".." / ".." / "outside" / "secret");
  ExpectDenied("/etc/passwd");
  // A sibling whose name starts with the root's.
  Write(scratch_.path() / "root2" / "x", "sibling");
  ExpectDenied(scratch_.path() / "root2" / "x");
}

TEST_F(FileRootTest, FileSymlinkOutIsDenied) {
  fs::create_symlink(outside_ / "secret", root_ / "a" / "abs_link");
  fs::create_symlink("../../outside/secret", root_ / "a" / "rel_link");
  ExpectDenied(root_ / "a" / "abs_link");
  ExpectDenied(root_ / "a" / "rel_link");
}

TEST_F(FileRootTest, DirectorySymlinkOutIsDenied) {
  fs::create_directory_symlink(outside_ / "dir", root_ / "a" / "dir_link");
  ExpectDenied(root_ / "a" / "dir_link");
  ExpectDenied(root_ / "a" / "dir_link" / "secret");
}

TEST_F(FileRootTest, ChainedSymlinksThatEndOutsideAreDenied) {
  // inside link -> inside link -> outside.
  fs::create_symlink(outside_ / "secret", root_ / "hop2");
  fs::create_symlink("../hop2", root_ / "a" / "hop1");
  ExpectDenied(root_ / "a" / "hop1");
  // A link inside whose target passes through a directory link out.
  fs::create_directory_symlink(outside_ / "dir", root_ / "out_dir");
  fs::create_symlink("../out_dir/secret", root_ / "a" / "via_dir");
  ExpectDenied(root_ / "a" / "via_dir");
}

TEST_F(FileRootTest, DanglingSymlinkOutIsDeniedNotNotFound) {
  // The answer must not reveal whether the target exists outside.
  fs::create_symlink(outside_ / "no_such_file", root_ / "dangling");
  ExpectDenied(root_ / "dangling");
  fs::create_symlink(outside_ / "no_dir" / "x", root_ / "dangling_deep");
  ExpectDenied(root_ / "dangling_deep");
}

TEST_F(FileRootTest, SymlinksThatStayInsideAreAllowed) {
  fs::create_symlink(root_ / "a" / "b" / "file", root_ / "abs_in");
  fs::create_symlink("a/b/file", root_ / "rel_in");
  fs::create_directory_symlink("a/b", root_ / "dir_in");
  fs::create_symlink("../dir_in/file", root_ / "a" / "through_dir_in");
  for (const fs::path& p : {root_ / "abs_in", root_ / "rel_in", root_ / "dir_in" / "file",
                            root_ / "a" / "through_dir_in"}) {
    SAEDICT_ASSERT_OK_AND_ASSIGN(std::string text, files_.ReadFile(p));
    EXPECT_EQ(text, "inside") << p;
    SAEDICT_ASSERT_OK_AND_ASSIGN(fs::path resolved, files_.Resolve(p));
    EXPECT_EQ(resolved, canonical_root_ / "a" / "b" / "file") << p;
  }
}

TEST_F(FileRootTest, RootReachedThroughASymlinkWorks) {
  fs::create_directory_symlink(root_, scratch_.path() / "alias");
  SAEDICT_ASSERT_OK_AND_ASSIGN(FileRoot via_alias, FileRoot::Create(scratch_.path() / "alias"));
  EXPECT_EQ(via_alias.root(), canonical_root_);
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::string text,
                               via_alias.ReadFile(scratch_.path() / "alias" / "a" / "b" / "file"));
  EXPECT_EQ(text, "inside");
}

TEST_F(FileRootTest, RelativePathsAreRelativeToTheWorkingDirectory) {
  const fs::path old_cwd = fs::current_path();
  fs::current_path(root_ / "a");
  absl::StatusOr<std::string> inside = files_.ReadFile("b/file");
  absl::Status outside = files_.ReadFile("../../outside/secret").status();
  fs::current_path(old_cwd);
  ASSERT_THAT(inside.status(), IsOk());
  EXPECT_EQ(*inside, "inside");
  EXPECT_THAT(outside, StatusIs(kDenied, HasSubstr("../../outside/secret")));
}

TEST_F(FileRootTest, UnresolvablePathsAreInvalidArgument) {
  fs::create_symlink("loop2", root_ / "loop1");
  fs::create_symlink("loop1", root_ / "loop2");
  EXPECT_THAT(files_.ReadFile(root_ / "loop1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("symbolic links")));
  EXPECT_THAT(files_.ReadFile(root_ / "a" / "b" / "file" / "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a directory")));
}

TEST_F(FileRootTest, DirectoriesAreNotRegularFiles) {
  EXPECT_THAT(files_.ReadFile(root_ / "a"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a regular file")));
  EXPECT_THAT(files_.ReadFile(root_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("root directory")));
}

TEST_F(FileRootTest, BadRootsAreRefused) {
  EXPECT_THAT(FileRoot::Create(scratch_.path() / "no_root"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no_root")));
  EXPECT_THAT(FileRoot::Create(root_ / "a" / "b" / "file"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a directory")));
}

TEST_F(FileRootTest, UnrestrictedFollowsLinksAnywhere) {
  const FileRoot any = FileRoot::Unrestricted();
  EXPECT_FALSE(any.restricted());
  fs::create_symlink(outside_ / "secret", root_ / "out");
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::string text, any.ReadFile(root_ / "out"));
  EXPECT_EQ(text, "outside");
  EXPECT_THAT(any.ReadFile(root_ / "nope"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  SAEDICT_ASSERT_OK_AND_ASSIGN(bool exists, any.Exists(root_ / "nope"));
  EXPECT_FALSE(exists);
}

// The open after the check: any link on the way is refused, even one that
// stays inside (a link swapped in after Resolve must not be followed).
TEST_F(FileRootTest, ReadFileBeneathNoSymlinksRefusesEveryLink) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::string text,
                               ReadFileBeneathNoSymlinks(root_, fs::path("a") / "b" / "file"));
  EXPECT_EQ(text, "inside");
  fs::create_symlink("b/file", root_ / "a" / "file_link");
  fs::create_directory_symlink("b", root_ / "a" / "dir_link");
  EXPECT_THAT(ReadFileBeneathNoSymlinks(root_, fs::path("a") / "file_link"),
              StatusIs(kDenied, AllOf(HasSubstr("file_link"), HasSubstr("symbolic link"))));
  EXPECT_THAT(ReadFileBeneathNoSymlinks(root_, fs::path("a") / "dir_link" / "file"),
              StatusIs(kDenied, AllOf(HasSubstr("dir_link"), HasSubstr("symbolic link"))));
  for (const char* bad : {"../outside/secret", "a/./b/file", "/etc/passwd", ""}) {
    EXPECT_THAT(ReadFileBeneathNoSymlinks(root_, bad),
                StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_))
        << bad;
  }
  EXPECT_THAT(ReadFileBeneathNoSymlinks(root_, fs::path("a") / "missing"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
}

TEST_F(FileRootTest, FifoIsRefusedWithoutBlocking) {
  const fs::path fifo = root_ / "a" / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(files_.ReadFile(fifo),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a regular file")));
}

TEST_F(FileRootTest, OpenGivesARandomAccessFileInsideOnly) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(RandomAccessFile file, files_.Open(root_ / "a" / "b" / "file"));
  EXPECT_EQ(file.size(), 6u);
  std::string part(3, '\0');
  ASSERT_THAT(file.ReadAt(2, 3, part.data()), IsOk());
  EXPECT_EQ(part, "sid");
  EXPECT_THAT(file.ReadAt(4, 3, part.data()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(file.path()), HasSubstr("outside the 6-byte file"))));
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::string all, file.ReadAll());
  EXPECT_EQ(all, "inside");
  fs::create_symlink(outside_ / "secret", root_ / "out");
  EXPECT_THAT(files_.Open(root_ / "out"), StatusIs(kDenied, HasSubstr("outside the root")));
}

TEST_F(FileRootTest, RandomAccessFileReportsAFileThatShrank) {
  const fs::path file = root_ / "a" / "b" / "file";
  SAEDICT_ASSERT_OK_AND_ASSIGN(RandomAccessFile f, RandomAccessFile::Open(file));
  fs::resize_file(file, 2);
  std::string buf(4, '\0');
  EXPECT_THAT(f.ReadAt(0, 4, buf.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("shrank")));
  EXPECT_THAT(RandomAccessFile::Open(root_ / "a"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a regular file")));
  EXPECT_THAT(RandomAccessFile::Open(root_ / "nope"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
}

}  // namespace
}  // namespace saedict::formats
