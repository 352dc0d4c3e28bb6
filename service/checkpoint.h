// CreateCheckpoint: a restorable backup of a running server's data directory
// at <data_dir>/backups/<name>/: db/ is a consistent RocksDB checkpoint
// (hard-linked SST files, so it is fast and small while both exist) and
// dictionaries/ holds the canonical weights every checkpointed dictionary
// record points at (hard links, or copies across file systems). Restore by
// starting saedictd with --data_dir=<data_dir>/backups/<name>.
//
// Errors: INVALID_ARGUMENT (bad name), ALREADY_EXISTS (name taken),
// UNAVAILABLE / INTERNAL (file system or RocksDB); a failed checkpoint
// leaves nothing behind.
//
// Thread safety: safe to call concurrently with any other operation.
#ifndef SAEDICT_SERVICE_CHECKPOINT_H_
#define SAEDICT_SERVICE_CHECKPOINT_H_

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"
#include "saedict/v1/saedict.pb.h"
#include "storage/store.h"

namespace saedict::service {

absl::StatusOr<v1::CreateCheckpointResponse> CreateCheckpoint(const std::filesystem::path& data_dir,
                                                              storage::Store* store,
                                                              const std::string& name);

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_CHECKPOINT_H_
