// DiskSpaceGuard (see disk_space.h).
#include "storage/disk_space.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace saedict::storage {

absl::Status DiskSpaceGuard::Check(absl::string_view what) const {
  if (reserve_bytes_ == 0) return absl::OkStatus();
  struct statvfs fs {};
  if (statvfs(dir_.c_str(), &fs) != 0) {
    return absl::UnavailableError(absl::StrCat("storage: ", what,
                                               ": cannot read the free space of ", dir_.string(),
                                               ": ", std::strerror(errno)));
  }
  const uint64_t available = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (available >= reserve_bytes_) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "storage: ", what, ": the disk of data directory ", dir_.string(), " is full: ", available,
      " bytes available, below the reserve of ", reserve_bytes_,
      " bytes (saedictd --min_free_disk_mb); nothing was written — free space and retry"));
}

}  // namespace saedict::storage
