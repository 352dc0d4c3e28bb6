// Access policy: the role every saedict.v1.Saedict method needs, and the
// bearer tokens that grant roles (DESIGN.md §10).
//
// Roles are ordered: admin ⊇ write ⊇ read. The one table (MethodRoles) is
// what the gRPC service and the HTTP gateway both enforce:
//   read   every query and every computation that stores nothing (encode,
//          decode, intervene, search, compare, evaluate, ...);
//   write  what adds or replaces stored data (LoadDictionary, UploadDictionary,
//          Ingest, Set/Delete/ImportExplanation(s));
//   admin  what removes data or touches the data directory
//          (DeleteDictionary, CreateCheckpoint).
//
// Token file (--auth_tokens_file), one token per line, '#' comments:
//   ROLE  SHA256_HEX_OF_TOKEN  NAME
//   read  5e88...(64 hex digits)  grafana
// The file holds SHA-256 hashes only, so a leaked file grants nothing; make a
// line with `saedict new-token ROLE NAME` or
// `printf %s "$TOKEN" | sha256sum`. Clients send `authorization: Bearer TOKEN`.
// NAME identifies the client in logs and per-client limits; names are unique.
//
// Thread safety: TokenTable is immutable; Authenticator's methods may be
// called from any thread, Reload() included.
#ifndef SAEDICT_SERVICE_ACCESS_POLICY_H_
#define SAEDICT_SERVICE_ACCESS_POLICY_H_

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace saedict::service {

enum class Role { kRead = 1, kWrite = 2, kAdmin = 3 };

// "read", "write", "admin".
absl::string_view RoleName(Role role);
std::optional<Role> ParseRole(absl::string_view name);

// (method, role) for every method of saedict.v1.Saedict, by its short name
// ("Encode"). Tests check it against the service descriptor.
const std::vector<std::pair<std::string, Role>>& MethodRoles();
// nullopt for a name the table does not know (the caller denies it).
std::optional<Role> RequiredRole(absl::string_view method);

// Lowercase hex SHA-256 of `token`'s bytes.
std::string TokenSha256(absl::string_view token);

struct Principal {
  std::string name;  // "anonymous" when auth is off
  Role role = Role::kAdmin;
};

class TokenTable {
 public:
  // INVALID_ARGUMENT naming `source` and the line for a malformed line, an
  // unknown role, a hash that is not 64 hex digits, or a repeated hash/name.
  static absl::StatusOr<TokenTable> Parse(absl::string_view text, absl::string_view source);
  // As Parse; NOT_FOUND / PERMISSION_DENIED when the file cannot be read.
  static absl::StatusOr<TokenTable> ReadFile(const std::filesystem::path& path);

  // The principal of a presented token, nullopt when it is not in the table.
  std::optional<Principal> Find(absl::string_view token) const;
  size_t size() const { return by_hash_.size(); }

 private:
  std::map<std::string, Principal> by_hash_;  // SHA-256 hex -> principal
};

class Authenticator {
 public:
  // Auth off: every call is the admin "anonymous".
  Authenticator() = default;
  // Auth on with the tokens of `path` (read now: the error when it is bad).
  static absl::StatusOr<std::unique_ptr<Authenticator>> FromFile(std::filesystem::path path);

  bool enabled() const { return !path_.empty(); }
  // Re-reads the token file. On error the old tokens stay in force and the
  // error is returned (e.g. for the log); OK when auth is off.
  absl::Status Reload();
  size_t token_count() const;

  // Who is calling `method` and whether they may:
  //   UNAUTHENTICATED   auth on and no "Bearer" credential, or an unknown token;
  //   PERMISSION_DENIED the token's role is below the method's (or the method
  //                     is not in the table).
  // `authorization` is the header / metadata value ("Bearer TOKEN"), nullopt
  // when absent.
  absl::StatusOr<Principal> Authorize(std::optional<absl::string_view> authorization,
                                      absl::string_view method) const;

 private:
  std::filesystem::path path_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const TokenTable> table_ ABSL_GUARDED_BY(mu_);
};

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_ACCESS_POLICY_H_
