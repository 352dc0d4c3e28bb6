// Whole-file reads and atomic whole-file writes for the format readers and
// writers in formats/, and FileRoot: the confinement of reads to a directory
// tree for files opened on an untrusted request's behalf. POSIX underneath;
// errors carry the path and errno text.
//
// Thread safety: free functions with no shared state. Concurrent writers to
// the same path each publish a complete file; the last rename wins. A
// FileRoot is an immutable value: its const methods may be called from many
// threads.
#ifndef SAEDICT_FORMATS_CODECS_FILE_IO_H_
#define SAEDICT_FORMATS_CODECS_FILE_IO_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace saedict::formats {

// A regular file opened read-only for positioned reads (pread), so readers
// can take the parts they need instead of the whole file. Move-only; closes
// the descriptor when destroyed. Reads from many threads at once are fine.
class RandomAccessFile {
 public:
  // NOT_FOUND when `path` does not exist, INVALID_ARGUMENT when it is not a
  // regular file, otherwise the errno-derived code; messages name `path`.
  static absl::StatusOr<RandomAccessFile> Open(const std::filesystem::path& path);

  RandomAccessFile(RandomAccessFile&& other) noexcept;
  RandomAccessFile& operator=(RandomAccessFile&& other) noexcept;
  RandomAccessFile(const RandomAccessFile&) = delete;
  RandomAccessFile& operator=(const RandomAccessFile&) = delete;
  ~RandomAccessFile();

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }  // when opened

  // Exactly `n` bytes at `offset` into `dst`. INVALID_ARGUMENT naming the
  // path when [offset, offset + n) is not within size() or the file ends
  // early (it shrank); the errno-derived code on a read error.
  absl::Status ReadAt(uint64_t offset, size_t n, char* dst) const;
  // The whole file (stopping early, without error, if it shrank).
  absl::StatusOr<std::string> ReadAll() const;

 private:
  friend absl::StatusOr<RandomAccessFile> OpenFileBeneathNoSymlinks(
      const std::filesystem::path& dir, const std::filesystem::path& relative);
  RandomAccessFile(int fd, uint64_t size, std::string path)
      : fd_(fd), size_(size), path_(std::move(path)) {}
  // Takes ownership of the open descriptor `fd` (closed on error too);
  // INVALID_ARGUMENT when it is not a regular file.
  static absl::StatusOr<RandomAccessFile> Adopt(int fd, std::string path);
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
};

// The file's bytes. NOT_FOUND when it does not exist, INVALID_ARGUMENT when
// it is not a regular file, otherwise the errno-derived code.
absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path);

// Writes `contents` to a temporary file beside `path`, fsyncs it, renames it
// over `path` and fsyncs the directory: readers see the old file or the new
// one, never a partial one. The temporary file is removed on failure.
absl::Status WriteFileAtomically(const std::filesystem::path& path, absl::string_view contents);

// `dir`/`relative`, opened one component at a time from `dir` with
// O_NOFOLLOW: a symbolic link anywhere in `relative` is refused
// (PERMISSION_DENIED naming the component), so the file opened is the one
// the path names lexically below `dir`. REQUIRES: `relative` is relative and
// free of "." and ".." components (INVALID_ARGUMENT otherwise); `dir` itself
// is opened as given. Otherwise as RandomAccessFile::Open.
absl::StatusOr<RandomAccessFile> OpenFileBeneathNoSymlinks(const std::filesystem::path& dir,
                                                           const std::filesystem::path& relative);
// OpenFileBeneathNoSymlinks + ReadAll.
absl::StatusOr<std::string> ReadFileBeneathNoSymlinks(const std::filesystem::path& dir,
                                                      const std::filesystem::path& relative);

// Where a reader may open files. FileRoot::Unrestricted() allows any path
// (the CLI, tests, the server's own data directory). A restricted FileRoot
// allows only paths that resolve inside its root directory, with symbolic
// links followed at every level: a link that stays inside the root is fine,
// one that leads out (from the path named, a folder on the way, or a file in
// it) is PERMISSION_DENIED with a message naming the path, where it resolves
// and the root. Relative paths are relative to the working directory, as for
// open(2); the root restricts, it does not rebase (server/path_guard.h maps a
// client's path onto the root).
//
// Open and ReadFile resolve the path, check it, then open the resolved path
// from the root with OpenFileBeneathNoSymlinks, so a link swapped in between
// the check and the open is refused rather than followed.
class FileRoot {
 public:
  static FileRoot Unrestricted() { return FileRoot(); }
  // Confinement to `root`, canonicalized now. NOT_FOUND when it does not
  // exist, FAILED_PRECONDITION when it is not a directory or cannot be
  // resolved; the message names `root`.
  static absl::StatusOr<FileRoot> Create(const std::filesystem::path& root);

  bool restricted() const { return !root_.empty(); }
  // The canonical root; empty when unrestricted.
  const std::filesystem::path& root() const { return root_; }

  // The canonical (restricted) or given (unrestricted) path of `path`.
  // Restricted: PERMISSION_DENIED when it resolves outside the root — also
  // when it does not exist, so answers never reveal what exists outside;
  // NOT_FOUND when it resolves inside but does not exist; INVALID_ARGUMENT
  // when it cannot be resolved (a symlink loop, a file used as a folder).
  // Unrestricted: NOT_FOUND when it does not exist.
  absl::StatusOr<std::filesystem::path> Resolve(const std::filesystem::path& path) const;

  // Whether `path` exists (any file type); Resolve's errors but NOT_FOUND.
  absl::StatusOr<bool> Exists(const std::filesystem::path& path) const;
  // Whether `path` exists and is a regular file; Resolve's errors but NOT_FOUND.
  absl::StatusOr<bool> IsRegularFile(const std::filesystem::path& path) const;

  // The file: RandomAccessFile::Open when unrestricted; when restricted,
  // Resolve's errors, then OpenFileBeneathNoSymlinks(root, resolved path
  // below it), whose errors name `path`.
  absl::StatusOr<RandomAccessFile> Open(const std::filesystem::path& path) const;
  // Open + ReadAll.
  absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) const;

 private:
  FileRoot() = default;
  std::filesystem::path root_;
};

}  // namespace saedict::formats

#endif  // SAEDICT_FORMATS_CODECS_FILE_IO_H_
