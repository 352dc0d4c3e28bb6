// Whole-file I/O and FileRoot for formats/ (see file_io.h).
#include "formats/codecs/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace saedict::formats {
namespace {

absl::Status ErrnoStatus(int err, absl::string_view what, const std::filesystem::path& path) {
  return absl::ErrnoToStatus(err, absl::StrCat(what, " ", path.string()));
}

// Closes the descriptor on scope exit unless released.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  int get() const { return fd_; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

absl::Status WriteAll(int fd, absl::string_view data, const std::filesystem::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "cannot write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// True when `path` is `root` or below it; both canonical.
bool IsWithin(const std::filesystem::path& root, const std::filesystem::path& path) {
  auto [root_end, unused] = std::mismatch(root.begin(), root.end(), path.begin(), path.end());
  return root_end == root.end();
}

// Follows `path` (absolute) through the file system like realpath(3), with
// one difference: a dangling link, or a missing component, does not stop the
// walk: its target (or the rest of the path) is taken lexically, since
// nothing below a missing entry exists. So the result says where the path
// leads whether or not the file is there. `*exists` tells which.
absl::StatusOr<std::filesystem::path> FollowPath(const std::filesystem::path& path, bool* exists) {
  namespace fs = std::filesystem;
  constexpr int kMaxLinks = 40;   // as Linux's MAXSYMLINKS
  std::vector<std::string> todo;  // components still to walk, the next one last
  auto push_front = [&todo](const fs::path& p) {
    std::vector<std::string> parts;
    for (const fs::path& c : p.relative_path()) parts.push_back(c.string());
    todo.insert(todo.end(), parts.rbegin(), parts.rend());
  };
  push_front(path);
  fs::path cur = "/";
  bool missing = false;
  int links = 0;
  while (!todo.empty()) {
    const std::string c = std::move(todo.back());
    todo.pop_back();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      cur = cur.parent_path();
      continue;
    }
    fs::path next = cur / c;
    if (missing) {
      cur = std::move(next);
      continue;
    }
    std::error_code ec;
    const fs::file_status st = fs::symlink_status(next, ec);
    if (st.type() == fs::file_type::not_found) {
      missing = true;
      cur = std::move(next);
      continue;
    }
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), ": cannot resolve ", next.string(), ": ", ec.message()));
    }
    if (fs::is_symlink(st)) {
      if (++links > kMaxLinks) {
        return absl::InvalidArgumentError(
            absl::StrCat(path.string(), ": more than ", kMaxLinks, " symbolic links to follow"));
      }
      const fs::path target = fs::read_symlink(next, ec);
      if (ec) {
        return absl::InvalidArgumentError(
            absl::StrCat(path.string(), ": cannot read link ", next.string(), ": ", ec.message()));
      }
      if (target.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path.string(), ": ", next.string(), " is an empty symbolic link"));
      }
      if (target.is_absolute()) cur = "/";
      push_front(target);
      continue;
    }
    if (!todo.empty() && !fs::is_directory(st)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), ": ", next.string(), " is not a directory"));
    }
    cur = std::move(next);
  }
  *exists = !missing;
  return cur;
}

}  // namespace

absl::StatusOr<RandomAccessFile> RandomAccessFile::Adopt(int fd, std::string path) {
  Fd owned(fd);
  struct stat st;
  if (::fstat(owned.get(), &st) != 0) return ErrnoStatus(errno, "cannot stat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
  }
  return RandomAccessFile(owned.Release(), static_cast<uint64_t>(st.st_size), std::move(path));
}

absl::StatusOr<RandomAccessFile> RandomAccessFile::Open(const std::filesystem::path& path) {
  // O_NONBLOCK: opening a FIFO must not hang; Adopt then refuses it as not a
  // regular file (regular files ignore the flag).
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "cannot open", path);
  return Adopt(fd, path.string());
}

RandomAccessFile::RandomAccessFile(RandomAccessFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), size_(other.size_), path_(std::move(other.path_)) {}

RandomAccessFile& RandomAccessFile::operator=(RandomAccessFile&& other) noexcept {
  std::swap(fd_, other.fd_);
  std::swap(size_, other.size_);
  std::swap(path_, other.path_);
  return *this;
}

RandomAccessFile::~RandomAccessFile() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status RandomAccessFile::ReadAt(uint64_t offset, size_t n, char* dst) const {
  if (offset > size_ || n > size_ - offset) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": bytes [", offset, ", +", n,
                                                   ") lie outside the ", size_, "-byte file"));
  }
  size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd_, dst + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "cannot read", path_);
    }
    if (got == 0) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": file ends at byte ", offset + done,
                                                     ", before ", offset + n, " (it shrank)"));
    }
    done += static_cast<size_t>(got);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RandomAccessFile::ReadAll() const {
  std::string out;
  out.resize(static_cast<size_t>(size_));
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "cannot read", path_);
    }
    if (n == 0) break;  // the file shrank while we read it
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path) {
  absl::StatusOr<RandomAccessFile> file = RandomAccessFile::Open(path);
  if (!file.ok()) return file.status();
  return file->ReadAll();
}

absl::StatusOr<std::string> ReadFileBeneathNoSymlinks(const std::filesystem::path& dir,
                                                      const std::filesystem::path& relative) {
  absl::StatusOr<RandomAccessFile> file = OpenFileBeneathNoSymlinks(dir, relative);
  if (!file.ok()) return file.status();
  return file->ReadAll();
}

absl::StatusOr<RandomAccessFile> OpenFileBeneathNoSymlinks(const std::filesystem::path& dir,
                                                           const std::filesystem::path& relative) {
  const std::filesystem::path full = dir / relative;
  auto bad_relative = [&relative] {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", relative.string(), "' must be a relative path without '.' or '..' components"));
  };
  if (relative.has_root_path()) return bad_relative();
  std::vector<std::string> parts;
  for (const std::filesystem::path& c : relative) {
    std::string part = c.string();
    if (part.empty()) continue;  // a trailing slash
    if (part == "." || part == "..") return bad_relative();
    parts.push_back(std::move(part));
  }
  if (parts.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(full.string(), " names no file below ", dir.string()));
  }
  Fd cur(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (cur.get() < 0) return ErrnoStatus(errno, "cannot open directory", dir);
  std::filesystem::path walked = dir;
  for (size_t i = 0; i < parts.size(); ++i) {
    walked /= parts[i];
    const bool last = i + 1 == parts.size();
    // O_NONBLOCK: as in RandomAccessFile::Open.
    const int flags = last ? O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
                           : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    const int fd = ::openat(cur.get(), parts[i].c_str(), flags);
    if (fd < 0) {
      const int err = errno;
      struct stat st;
      if ((err == ELOOP || err == ENOTDIR) &&
          ::fstatat(cur.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode)) {
        return absl::PermissionDeniedError(absl::StrCat(
            full.string(), ": ", walked.string(), " is a symbolic link; refusing to follow it"));
      }
      return ErrnoStatus(err, "cannot open", walked);
    }
    cur = Fd(fd);
  }
  return RandomAccessFile::Adopt(cur.Release(), full.string());
}

absl::StatusOr<FileRoot> FileRoot::Create(const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path canonical = fs::canonical(root, ec);
  if (ec == std::errc::no_such_file_or_directory) {
    return absl::NotFoundError(absl::StrCat("root '", root.string(), "' does not exist"));
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("root '", root.string(), "' cannot be resolved: ", ec.message()));
  }
  if (!fs::is_directory(canonical, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("root '", root.string(), "' (", canonical.string(), ") is not a directory"));
  }
  FileRoot out;
  out.root_ = std::move(canonical);
  return out;
}

absl::StatusOr<std::filesystem::path> FileRoot::Resolve(const std::filesystem::path& path) const {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!restricted()) {
    if (fs::exists(path, ec)) return path;
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return absl::ErrnoToStatus(ec.value(), absl::StrCat("cannot stat ", path.string()));
    }
    return absl::NotFoundError(absl::StrCat(path.string(), ": no such file or directory"));
  }
  if (path.empty()) return absl::InvalidArgumentError("empty path");
  fs::path absolute = path;
  if (path.is_relative()) {
    const fs::path cwd = fs::current_path(ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat(path.string(), ": no working directory to resolve it in: ", ec.message()));
    }
    absolute = cwd / path;
  }
  bool exists = false;
  absl::StatusOr<fs::path> resolved = FollowPath(absolute, &exists);
  if (!resolved.ok()) return resolved.status();
  if (!IsWithin(root_, *resolved)) {
    return absl::PermissionDeniedError(absl::StrCat(path.string(), " resolves to '",
                                                    resolved->string(), "', outside the root '",
                                                    root_.string(), "'"));
  }
  if (!exists) {
    return absl::NotFoundError(absl::StrCat(
        path.string(), ": no such file or directory (under root '", root_.string(), "')"));
  }
  return resolved;
}

absl::StatusOr<bool> FileRoot::Exists(const std::filesystem::path& path) const {
  absl::StatusOr<std::filesystem::path> resolved = Resolve(path);
  if (absl::IsNotFound(resolved.status())) return false;
  if (!resolved.ok()) return resolved.status();
  return true;
}

absl::StatusOr<bool> FileRoot::IsRegularFile(const std::filesystem::path& path) const {
  absl::StatusOr<std::filesystem::path> resolved = Resolve(path);
  if (absl::IsNotFound(resolved.status())) return false;
  if (!resolved.ok()) return resolved.status();
  std::error_code ec;
  return std::filesystem::is_regular_file(*resolved, ec);
}

absl::StatusOr<std::string> FileRoot::ReadFile(const std::filesystem::path& path) const {
  absl::StatusOr<RandomAccessFile> file = Open(path);
  if (!file.ok()) return file.status();
  return file->ReadAll();
}

absl::StatusOr<RandomAccessFile> FileRoot::Open(const std::filesystem::path& path) const {
  if (!restricted()) return RandomAccessFile::Open(path);
  absl::StatusOr<std::filesystem::path> resolved = Resolve(path);
  if (!resolved.ok()) return resolved.status();
  const std::filesystem::path below = resolved->lexically_relative(root_);
  if (below.empty() || below == ".") {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), " is the root directory '",
                                                   root_.string(), "', not a regular file"));
  }
  absl::StatusOr<RandomAccessFile> file = OpenFileBeneathNoSymlinks(root_, below);
  if (!file.ok() && *resolved != path) {
    return absl::Status(file.status().code(),
                        absl::StrCat(path.string(), ": ", file.status().message()));
  }
  return file;
}

absl::Status WriteFileAtomically(const std::filesystem::path& path, absl::string_view contents) {
  static std::atomic<uint64_t> counter{0};
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  const std::filesystem::path tmp =
      path.string() + absl::StrCat(".tmp.", ::getpid(), ".", counter.fetch_add(1));
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoStatus(errno, "cannot create", tmp);
  absl::Status s = WriteAll(fd.get(), contents, tmp);
  if (s.ok() && ::fsync(fd.get()) != 0) s = ErrnoStatus(errno, "cannot fsync", tmp);
  if (s.ok() && ::close(fd.Release()) != 0) s = ErrnoStatus(errno, "cannot close", tmp);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = ErrnoStatus(errno, absl::StrCat("cannot rename ", tmp.string(), " to"), path);
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  // Make the rename itself durable.
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0) return ErrnoStatus(errno, "cannot open directory", dir);
  if (::fsync(dfd.get()) != 0) return ErrnoStatus(errno, "cannot fsync directory", dir);
  return absl::OkStatus();
}

}  // namespace saedict::formats
