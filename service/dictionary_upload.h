// DictionaryUpload: one UploadDictionary stream — a dictionary's files sent
// by the client, checked and loaded like LoadDictionary.
//
// The header (first message) names the dictionary id, the load options and
// the files: plain names ([A-Za-z0-9._-], at most 255 bytes, no "." or
// ".."), each with its size and SHA-256. Chunks then carry the files' bytes
// in header order (file_index never goes back; offset must equal the bytes
// of that file received so far). The bytes go to
// <data_dir>/uploads/.partial-<nonce>/, hashed as they arrive; Finish()
// checks every file is complete and matches its checksum, fsyncs, renames
// the folder to <data_dir>/uploads/<nonce> in one rename, loads it through
// DictionaryRegistry::LoadUploaded (a single .npz loads as that file, else
// the folder; the canonical copy the registry writes
// is what is served and restored from) and removes the folder. Any error,
// and a stream that ends without Finish() (the destructor), remove
// everything the upload wrote; saedictd also clears <data_dir>/uploads at
// start-up (RemoveUploadLeftovers), so a crash mid-upload leaves nothing.
//
// Errors: INVALID_ARGUMENT (missing or repeated header, bad id / file name /
// size / checksum field, chunk out of order, more bytes than declared,
// checksum mismatch, incomplete file — each naming the file), RESOURCE_
// EXHAUSTED (declared total above max_bytes, disk full), the registry's
// load errors, INTERNAL for I/O failures in the data directory.
//
// Thread safety: one stream, one thread.
#ifndef SAEDICT_SERVICE_DICTIONARY_UPLOAD_H_
#define SAEDICT_SERVICE_DICTIONARY_UPLOAD_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "saedict/v1/saedict.pb.h"
#include "service/dictionary_registry.h"
#include "util/sha256.h"

namespace saedict::service {

struct UploadOptions {
  std::filesystem::path uploads_dir;  // <data_dir>/uploads
  uint64_t max_bytes = 8ull << 30;    // all files of one upload together
};

// Removes <uploads_dir>'s contents (what crashed uploads left); OK when absent.
absl::Status RemoveUploadLeftovers(const std::filesystem::path& uploads_dir);

class DictionaryUpload {
 public:
  // `registry` must outlive the upload.
  DictionaryUpload(DictionaryRegistry* registry, UploadOptions options);
  ~DictionaryUpload();  // removes what an unfinished upload wrote
  DictionaryUpload(const DictionaryUpload&) = delete;
  DictionaryUpload& operator=(const DictionaryUpload&) = delete;

  absl::Status Add(const v1::UploadDictionaryRequest& message);
  absl::StatusOr<v1::UploadDictionaryResponse> Finish();

 private:
  absl::Status Start(const v1::UploadDictionaryRequest::Header& header);
  absl::Status CloseCurrent();  // checks size and checksum of file current_
  absl::Status OpenFile(size_t index);
  void Cleanup();

  DictionaryRegistry* const registry_;
  const UploadOptions options_;
  bool have_header_ = false;
  int64_t messages_ = 0;
  v1::UploadDictionaryRequest::Header header_;
  std::filesystem::path partial_dir_;  // empty until the header is accepted
  std::filesystem::path final_dir_;
  int64_t current_ = -1;  // the file being written
  int fd_ = -1;
  uint64_t written_ = 0;  // bytes of the current file
  std::unique_ptr<Sha256> hash_;
  std::vector<bool> done_;
  uint64_t received_ = 0;
};

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_DICTIONARY_UPLOAD_H_
