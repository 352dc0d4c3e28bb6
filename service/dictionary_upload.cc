// DictionaryUpload (contract: dictionary_upload.h).
#include "service/dictionary_upload.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "service/resource_name.h"
#include "util/status_macros.h"

namespace saedict::service {
namespace {

namespace fs = std::filesystem;

bool IsPlainFileName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
  });
}

std::string Nonce() {
  std::random_device rd;
  return absl::StrCat(absl::Hex(static_cast<uint64_t>(rd()) << 32 | rd(), absl::kZeroPad16));
}

absl::Status Errno(absl::string_view what, const fs::path& path) {
  const int e = errno;
  if (e == ENOSPC || e == EDQUOT) {
    return absl::ResourceExhaustedError(
        absl::StrCat("upload: ", what, " ", path.string(), ": ", std::strerror(e)));
  }
  return absl::InternalError(absl::StrCat("upload: ", what, " ", path.string(), ": ",
                                          std::strerror(e)));
}

absl::Status SyncDir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("fsync", dir);
  return absl::OkStatus();
}

}  // namespace

absl::Status RemoveUploadLeftovers(const fs::path& uploads_dir) {
  std::error_code ec;
  if (!fs::exists(uploads_dir, ec)) return absl::OkStatus();
  for (const fs::directory_entry& e : fs::directory_iterator(uploads_dir, ec)) {
    fs::remove_all(e.path(), ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("upload: cannot remove ", e.path().string(), ": ", ec.message()));
    }
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("upload: cannot list ", uploads_dir.string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

DictionaryUpload::DictionaryUpload(DictionaryRegistry* registry, UploadOptions options)
    : registry_(registry), options_(std::move(options)) {}

DictionaryUpload::~DictionaryUpload() { Cleanup(); }

void DictionaryUpload::Cleanup() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  if (!partial_dir_.empty()) fs::remove_all(partial_dir_, ec);
  if (!final_dir_.empty()) fs::remove_all(final_dir_, ec);
  partial_dir_.clear();
  final_dir_.clear();
}

absl::Status DictionaryUpload::Start(const v1::UploadDictionaryRequest::Header& h) {
  SAEDICT_RETURN_IF_ERROR(ValidateResourceName(h.id(), "header.id", "dictionary id"));
  if (h.files_size() == 0) {
    return absl::InvalidArgumentError(
        "header.files: empty; expected the dictionary's files (cfg.json + weights, or params.npz)");
  }
  std::set<std::string> names;
  uint64_t total = 0;
  for (int i = 0; i < h.files_size(); ++i) {
    const v1::UploadFile& f = h.files(i);
    const std::string field = absl::StrCat("header.files[", i, "]");
    if (!IsPlainFileName(f.name())) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".name: '", f.name(),
          "' is not a plain file name; expected 1-255 characters of [A-Za-z0-9._-], no folders"));
    }
    if (!names.insert(f.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".name: '", f.name(), "' is listed twice"));
    }
    if (f.size() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".size: ", f.size(), "; expected the file's size in bytes"));
    }
    if (!IsLowerHex(f.sha256(), 64)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".sha256: '", f.sha256(), "'; expected 64 lowercase hex digits"));
    }
    total += static_cast<uint64_t>(f.size());
  }
  if (total > options_.max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "header.files: ", total, " bytes in all; this server accepts uploads of at most ",
        options_.max_bytes, " bytes (--max_upload_mb)"));
  }
  std::error_code ec;
  fs::create_directories(options_.uploads_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("upload: cannot create ", options_.uploads_dir.string(),
                                            ": ", ec.message()));
  }
  const std::string nonce = Nonce();
  partial_dir_ = options_.uploads_dir / (".partial-" + nonce);
  if (!fs::create_directory(partial_dir_, ec) || ec) {
    const fs::path failed = partial_dir_;
    partial_dir_.clear();
    return absl::InternalError(
        absl::StrCat("upload: cannot create ", failed.string(), ": ", ec.message()));
  }
  header_ = h;
  done_.assign(h.files_size(), false);
  return absl::OkStatus();
}

absl::Status DictionaryUpload::OpenFile(size_t index) {
  const fs::path path = partial_dir_ / header_.files(static_cast<int>(index)).name();
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) return Errno("create", path);
  current_ = static_cast<int64_t>(index);
  written_ = 0;
  hash_ = std::make_unique<Sha256>();
  return absl::OkStatus();
}

absl::Status DictionaryUpload::CloseCurrent() {
  if (current_ < 0 || fd_ < 0) return absl::OkStatus();
  const v1::UploadFile& f = header_.files(static_cast<int>(current_));
  const int fd = fd_;
  fd_ = -1;
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) return Errno("fsync", partial_dir_ / f.name());
  if (written_ != static_cast<uint64_t>(f.size())) {
    return absl::InvalidArgumentError(absl::StrCat("file '", f.name(), "': received ", written_,
                                                   " of its ", f.size(), " bytes"));
  }
  const std::string got = hash_->HexDigest();
  if (got != f.sha256()) {
    return absl::InvalidArgumentError(absl::StrCat("file '", f.name(), "': SHA-256 is ", got,
                                                   ", the header says ", f.sha256(),
                                                   "; the upload was damaged"));
  }
  done_[current_] = true;
  return absl::OkStatus();
}

absl::Status DictionaryUpload::Add(const v1::UploadDictionaryRequest& m) {
  const int64_t index = messages_++;
  auto fail = [&](absl::Status s) {
    Cleanup();
    return s;
  };
  if (m.has_header()) {
    if (have_header_) {
      return fail(absl::InvalidArgumentError(
          absl::StrCat("message ", index, ": header: sent again; only the first message has one")));
    }
    if (absl::Status s = Start(m.header()); !s.ok()) return fail(s);
    have_header_ = true;
  } else if (!have_header_) {
    return fail(absl::InvalidArgumentError(
        "message 0: header: missing; the first UploadDictionary message must carry it"));
  }
  if (m.data().empty()) return absl::OkStatus();
  if (m.file_index() < 0 || m.file_index() >= header_.files_size()) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "message ", index, ": file_index: ", m.file_index(), "; the header lists ",
        header_.files_size(), " files")));
  }
  if (m.file_index() < current_ || (m.file_index() != current_ && done_[m.file_index()])) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "message ", index, ": file_index: ", m.file_index(),
        " comes after file ", current_, "; send the files in header order")));
  }
  if (m.file_index() != current_) {
    if (absl::Status s = CloseCurrent(); !s.ok()) return fail(s);
    // Files skipped over must be empty ones.
    for (int64_t i = current_ + 1; i < m.file_index(); ++i) {
      if (header_.files(static_cast<int>(i)).size() != 0) {
        return fail(absl::InvalidArgumentError(
            absl::StrCat("file '", header_.files(static_cast<int>(i)).name(),
                         "': no bytes received of its ", header_.files(static_cast<int>(i)).size())));
      }
    }
    if (absl::Status s = OpenFile(static_cast<size_t>(m.file_index())); !s.ok()) return fail(s);
  }
  const v1::UploadFile& f = header_.files(static_cast<int>(current_));
  if (m.offset() != static_cast<int64_t>(written_)) {
    return fail(absl::InvalidArgumentError(absl::StrCat("message ", index, ": offset: ", m.offset(),
                                                        " in file '", f.name(), "'; expected ",
                                                        written_, " (chunks in order)")));
  }
  if (written_ + m.data().size() > static_cast<uint64_t>(f.size())) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "file '", f.name(), "': more bytes than the ", f.size(), " the header declares")));
  }
  const char* p = m.data().data();
  size_t left = m.data().size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(Errno("write", partial_dir_ / f.name()));
    p += n;
    left -= static_cast<size_t>(n);
  }
  hash_->Add(m.data());
  written_ += m.data().size();
  received_ += m.data().size();
  return absl::OkStatus();
}

absl::StatusOr<v1::UploadDictionaryResponse> DictionaryUpload::Finish() {
  auto fail = [&](absl::Status s) {
    Cleanup();
    return s;
  };
  if (!have_header_) {
    return absl::InvalidArgumentError(
        "header: missing; the first UploadDictionary message must carry it");
  }
  if (absl::Status s = CloseCurrent(); !s.ok()) return fail(s);
  std::vector<std::string> names;
  for (int i = 0; i < header_.files_size(); ++i) {
    const v1::UploadFile& f = header_.files(i);
    names.push_back(f.name());
    if (done_[i]) continue;
    if (f.size() != 0) {
      return fail(absl::InvalidArgumentError(
          absl::StrCat("file '", f.name(), "': no bytes received of its ", f.size())));
    }
    if (absl::Status s = OpenFile(static_cast<size_t>(i)); !s.ok()) return fail(s);
    if (absl::Status s = CloseCurrent(); !s.ok()) return fail(s);  // checks the empty hash
  }
  if (absl::Status s = SyncDir(partial_dir_); !s.ok()) return fail(s);
  // The complete, verified set appears under its final name in one step.
  fs::path final_dir = options_.uploads_dir / partial_dir_.filename().string().substr(9);
  if (::rename(partial_dir_.c_str(), final_dir.c_str()) != 0) {
    return fail(Errno("rename", partial_dir_));
  }
  partial_dir_.clear();
  final_dir_ = final_dir;
  v1::LoadDictionaryRequest load;
  load.set_id(header_.id());
  load.set_format(header_.format());
  load.set_replace(header_.replace());
  load.set_alias(header_.alias());
  if (header_.has_default_compute_mode()) {
    load.set_default_compute_mode(header_.default_compute_mode());
  }
  // One .npz (Gemma Scope's params.npz, whatever its name) loads as that
  // file; anything else as the folder.
  const fs::path load_path = names.size() == 1 && absl::EndsWith(names[0], ".npz")
                                 ? final_dir_ / names[0]
                                 : final_dir_;
  absl::StatusOr<v1::DictionaryInfo> info = registry_->LoadUploaded(
      load, final_dir_, load_path, absl::StrCat("upload:", absl::StrJoin(names, ",")));
  Cleanup();  // the registry's canonical copy is what is served from now on
  if (!info.ok()) return info.status();
  v1::UploadDictionaryResponse out;
  *out.mutable_dictionary() = *std::move(info);
  out.set_bytes_received(static_cast<int64_t>(received_));
  return out;
}

}  // namespace saedict::service
