// Names users give to things the server stores (dictionary ids, corpus
// names, checkpoint names): 1-128 characters of [A-Za-z0-9._-], not "." or
// "..", so they are safe as file names and in messages.
// Thread safety: pure function.
#ifndef SAEDICT_SERVICE_RESOURCE_NAME_H_
#define SAEDICT_SERVICE_RESOURCE_NAME_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace saedict::service {

// INVALID_ARGUMENT "<field>: '<value>' is not a valid <what>; expected ..."
absl::Status ValidateResourceName(const std::string& value, absl::string_view field,
                                  absl::string_view what);

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_RESOURCE_NAME_H_
