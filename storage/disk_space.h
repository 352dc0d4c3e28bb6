// DiskSpaceGuard: refuses a write before RocksDB sees a full disk.
//
// RocksDB's handling of ENOSPC is the weak spot of a full data directory:
// the write fails, the database switches to read-only until resumed, and
// Debian's librocksdb (built with assertions) can abort the whole process on
// the error path (seen: WritableFileWriter's sync_without_flush_called_
// assertion, RocksDB 7.8). So every write that adds data (ingest batches,
// dictionary records, neighbour tables) first asks Check(): when the
// filesystem of the data directory has fewer than reserve_bytes available
// (statvfs f_bavail, what an unprivileged writer may use), the write fails
// with RESOURCE_EXHAUSTED naming the directory, the free and the reserved
// bytes — nothing is written, and the same call succeeds again once space
// returns. Deletions are not guarded: they are how space is freed.
//
// The reserve is headroom for what RocksDB writes on its own (memtable
// flushes, compactions, the WAL of the write in flight); another process
// filling the disk between a check and a write is not covered.
//
// Thread safety: immutable; Check may be called concurrently.
#ifndef SAEDICT_STORAGE_DISK_SPACE_H_
#define SAEDICT_STORAGE_DISK_SPACE_H_

#include <cstdint>
#include <filesystem>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace saedict::storage {

class DiskSpaceGuard {
 public:
  // reserve_bytes 0: Check always passes (no statvfs).
  DiskSpaceGuard(std::filesystem::path dir, uint64_t reserve_bytes)
      : dir_(std::move(dir)), reserve_bytes_(reserve_bytes) {}

  // OK when at least reserve_bytes are available; RESOURCE_EXHAUSTED ("disk
  // full") otherwise, UNAVAILABLE when statvfs fails. `what` names the write.
  absl::Status Check(absl::string_view what) const;

  uint64_t reserve_bytes() const { return reserve_bytes_; }

 private:
  std::filesystem::path dir_;
  uint64_t reserve_bytes_;
};

}  // namespace saedict::storage

#endif  // SAEDICT_STORAGE_DISK_SPACE_H_
