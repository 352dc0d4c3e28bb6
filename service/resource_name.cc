#include "service/resource_name.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace saedict::service {

absl::Status ValidateResourceName(const std::string& value, absl::string_view field,
                                  absl::string_view what) {
  bool ok = !value.empty() && value.size() <= 128 && value != "." && value != "..";
  for (char c : value) {
    ok = ok &&
         (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, ": '", value, "' is not a valid ", what,
                                                 "; expected 1-128 characters of [A-Za-z0-9._-]"));
}

}  // namespace saedict::service
