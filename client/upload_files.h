// UploadDictionary from local files: what the client sends for a folder
// (SAELens / sparsify: cfg.json + *.safetensors; Gemma Scope: params.npz) or
// a single file, as the request stream Client::UploadDictionary writes.
//
//   SAEDICT_ASSIGN_OR_RETURN(UploadPlan plan, PlanUpload("path/to/sae"));
//   v1::UploadDictionaryRequest::Header header;
//   header.set_id("gpt2-8-res");
//   SAEDICT_ASSIGN_OR_RETURN(auto resp,
//       client->UploadDictionary(UploadStream(plan, header, on_progress)));
//
// A folder sends every regular file directly in it (not sub-folders, not
// hidden files); names must be plain ([A-Za-z0-9._-]) as the server
// requires. Each file is hashed (SHA-256) while planning and read again
// while sending; a file that changes in between fails the upload on the
// server's checksum check, never silently.
//
// Thread safety: PlanUpload is pure; a stream function is for one call.
#ifndef SAEDICT_CLIENT_UPLOAD_FILES_H_
#define SAEDICT_CLIENT_UPLOAD_FILES_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "client/saedict_client.h"

namespace saedict::client {

inline constexpr size_t kUploadChunkBytes = 2 << 20;

struct UploadPlan {
  std::vector<std::filesystem::path> paths;  // in header order
  std::vector<v1::UploadFile> files;         // name, size, sha256
  uint64_t total_bytes = 0;
};

// NOT_FOUND when `path` does not exist, INVALID_ARGUMENT for a folder with no
// files or a file name the server would refuse, INTERNAL on read errors.
absl::StatusOr<UploadPlan> PlanUpload(const std::filesystem::path& path);

// The request stream for `plan`: `header` (with plan.files filled in), then
// chunks of at most kUploadChunkBytes. `on_sent(bytes_so_far)` is called
// after each chunk is produced (may be null).
Client::NextUploadRequest UploadStream(const UploadPlan& plan,
                                       v1::UploadDictionaryRequest::Header header,
                                       std::function<void(uint64_t)> on_sent = nullptr);

}  // namespace saedict::client

#endif  // SAEDICT_CLIENT_UPLOAD_FILES_H_
