#include "service/checkpoint.h"

#include <system_error>

#include "absl/strings/str_cat.h"
#include "service/resource_name.h"
#include "util/status_macros.h"

namespace saedict::service {
namespace fs = std::filesystem;
namespace {

absl::Status FsError(const std::string& what, const std::error_code& ec) {
  return absl::UnavailableError(absl::StrCat("checkpoint: ", what, ": ", ec.message()));
}

// Links (or copies) every weights file the checkpointed records name.
absl::Status CopyWeights(const fs::path& data_dir, const fs::path& target) {
  SAEDICT_ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> copy,
                           storage::Store::Open({target / "db", /*create_if_missing=*/false}));
  SAEDICT_ASSIGN_OR_RETURN(std::vector<records::v1::DictionaryRecord> records, copy->ListDictionaries());
  std::error_code ec;
  fs::create_directories(target / "dictionaries", ec);
  if (ec) return FsError(absl::StrCat("create ", (target / "dictionaries").string()), ec);
  for (const records::v1::DictionaryRecord& record : records) {
    if (record.weights_file().empty()) continue;
    const fs::path from = data_dir / "dictionaries" / record.weights_file();
    const fs::path to = target / "dictionaries" / record.weights_file();
    fs::create_hard_link(from, to, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(from, to, ec);
    }
    if (ec) {
      return FsError(absl::StrCat("weights of dictionary '", record.info().id(), "' (",
                                  from.string(), ")"),
                     ec);
    }
  }
  return absl::OkStatus();
}

int64_t TreeBytes(const fs::path& root) {
  int64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) total += static_cast<int64_t>(it->file_size(ec));
  }
  return total;
}

}  // namespace

absl::StatusOr<v1::CreateCheckpointResponse> CreateCheckpoint(const fs::path& data_dir,
                                                              storage::Store* store,
                                                              const std::string& name) {
  SAEDICT_RETURN_IF_ERROR(ValidateResourceName(name, "name", "checkpoint name"));
  const fs::path target = data_dir / "backups" / name;
  std::error_code ec;
  fs::create_directories(data_dir / "backups", ec);
  if (ec) return FsError(absl::StrCat("create ", (data_dir / "backups").string()), ec);
  if (!fs::create_directory(target, ec)) {
    if (ec) return FsError(absl::StrCat("create ", target.string()), ec);
    return absl::AlreadyExistsError(
        absl::StrCat("checkpoint '", name, "' already exists at ", target.string()));
  }
  absl::Status s = store->Checkpoint(target / "db");
  if (s.ok()) s = CopyWeights(data_dir, target);
  if (!s.ok()) {
    fs::remove_all(target, ec);
    return s;
  }
  v1::CreateCheckpointResponse out;
  out.set_path(fs::absolute(target, ec).lexically_normal().string());
  out.set_bytes(TreeBytes(target));
  return out;
}

}  // namespace saedict::service
