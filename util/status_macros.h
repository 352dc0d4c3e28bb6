// Status plumbing missing from Debian's Abseil 20220623: RETURN_IF_ERROR and
// ASSIGN_OR_RETURN, written once here. Header-only; no state.
#ifndef SAEDICT_UTIL_STATUS_MACROS_H_
#define SAEDICT_UTIL_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SAEDICT_STATUS_CONCAT_INNER_(a, b) a##b
#define SAEDICT_STATUS_CONCAT_(a, b) SAEDICT_STATUS_CONCAT_INNER_(a, b)

// Returns from the current function with the status when it is not OK.
#define SAEDICT_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::absl::Status saedict_status_ = (expr);           \
    if (!saedict_status_.ok()) return saedict_status_; \
  } while (0)

// `lhs = value of expr`, or return its error status.
//   SAEDICT_ASSIGN_OR_RETURN(auto file, OpenFile(path));
#define SAEDICT_ASSIGN_OR_RETURN(lhs, expr) \
  SAEDICT_ASSIGN_OR_RETURN_IMPL_(SAEDICT_STATUS_CONCAT_(saedict_statusor_, __LINE__), lhs, expr)
#define SAEDICT_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = std::move(statusor).value()

#endif  // SAEDICT_UTIL_STATUS_MACROS_H_
