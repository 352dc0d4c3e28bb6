// PlanUpload / UploadStream (see upload_files.h).
#include "client/upload_files.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "util/sha256.h"

namespace saedict::client {
namespace {

namespace fs = std::filesystem;

bool IsPlainName(const std::string& name) {
  return !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
         });
}

absl::StatusOr<v1::UploadFile> Describe(const fs::path& path) {
  v1::UploadFile f;
  f.set_name(path.filename().string());
  if (!IsPlainName(f.name())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot upload ", path.string(), ": the server takes plain file names [A-Za-z0-9._-]"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", path.string()));
  Sha256 hash;
  std::string buffer(1 << 20, '\0');
  int64_t size = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    hash.Add(buffer.data(), static_cast<size_t>(n));
    size += n;
  }
  if (in.bad()) return absl::InternalError(absl::StrCat("read error in ", path.string()));
  f.set_size(size);
  f.set_sha256(hash.HexDigest());
  return f;
}

}  // namespace

absl::StatusOr<UploadPlan> PlanUpload(const fs::path& path) {
  std::error_code ec;
  UploadPlan plan;
  if (fs::is_regular_file(path, ec)) {
    plan.paths.push_back(path);
  } else if (fs::is_directory(path, ec)) {
    for (const fs::directory_entry& e : fs::directory_iterator(path, ec)) {
      const std::string name = e.path().filename().string();
      if (name.empty() || name[0] == '.' || !e.is_regular_file(ec)) continue;
      plan.paths.push_back(e.path());
    }
    if (ec) return absl::InternalError(absl::StrCat("cannot list ", path.string(), ": ", ec.message()));
    std::sort(plan.paths.begin(), plan.paths.end());
    if (plan.paths.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("folder ", path.string(), " has no files"));
    }
  } else {
    return absl::NotFoundError(absl::StrCat(path.string(), " is not a file or folder"));
  }
  for (const fs::path& p : plan.paths) {
    absl::StatusOr<v1::UploadFile> f = Describe(p);
    if (!f.ok()) return f.status();
    plan.total_bytes += static_cast<uint64_t>(f->size());
    plan.files.push_back(*std::move(f));
  }
  return plan;
}

Client::NextUploadRequest UploadStream(const UploadPlan& plan,
                                       v1::UploadDictionaryRequest::Header header,
                                       std::function<void(uint64_t)> on_sent) {
  header.clear_files();
  for (const v1::UploadFile& f : plan.files) *header.add_files() = f;
  struct State {
    bool header_sent = false;
    size_t file = 0;
    int64_t offset = 0;
    uint64_t sent = 0;
    std::ifstream in;
    std::string buffer;
  };
  auto state = std::make_shared<State>();
  state->buffer.resize(kUploadChunkBytes);
  return [plan, header = std::move(header), on_sent = std::move(on_sent),
          state]() -> absl::StatusOr<std::optional<v1::UploadDictionaryRequest>> {
    v1::UploadDictionaryRequest m;
    if (!state->header_sent) {
      state->header_sent = true;
      *m.mutable_header() = header;
      return m;
    }
    while (state->file < plan.paths.size()) {
      if (!state->in.is_open()) {
        state->in.open(plan.paths[state->file], std::ios::binary);
        if (!state->in) {
          return absl::InternalError(
              absl::StrCat("cannot read ", plan.paths[state->file].string()));
        }
        state->offset = 0;
      }
      state->in.read(state->buffer.data(), static_cast<std::streamsize>(state->buffer.size()));
      const std::streamsize n = state->in.gcount();
      if (n <= 0) {
        state->in.close();
        state->in.clear();
        ++state->file;
        continue;
      }
      m.set_file_index(static_cast<int32_t>(state->file));
      m.set_offset(state->offset);
      m.set_data(state->buffer.data(), static_cast<size_t>(n));
      state->offset += n;
      state->sent += static_cast<uint64_t>(n);
      if (on_sent) on_sent(state->sent);
      return m;
    }
    return std::nullopt;
  };
}

}  // namespace saedict::client
