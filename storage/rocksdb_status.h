// The one conversion from rocksdb::Status to absl::Status.
#ifndef SAEDICT_STORAGE_ROCKSDB_STATUS_H_
#define SAEDICT_STORAGE_ROCKSDB_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "rocksdb/status.h"

namespace saedict::storage {

// `what` says which operation failed ("open /var/db", "put dictionary x").
absl::Status FromRocksDb(const rocksdb::Status& s, absl::string_view what);

}  // namespace saedict::storage

#endif  // SAEDICT_STORAGE_ROCKSDB_STATUS_H_
