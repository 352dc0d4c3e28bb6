#include "service/access_policy.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "util/sha256.h"

namespace saedict::service {

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kRead:
      return "read";
    case Role::kWrite:
      return "write";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

std::optional<Role> ParseRole(absl::string_view name) {
  if (name == "read") return Role::kRead;
  if (name == "write") return Role::kWrite;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

const std::vector<std::pair<std::string, Role>>& MethodRoles() {
  static const auto* const kRoles = new std::vector<std::pair<std::string, Role>>{
      {"ListDictionaries", Role::kRead},
      {"GetDictionary", Role::kRead},
      {"Encode", Role::kRead},
      {"Decode", Role::kRead},
      {"EncodeStream", Role::kRead},
      {"Intervene", Role::kRead},
      {"GetDocument", Role::kRead},
      {"GetActivations", Role::kRead},
      {"GetFeature", Role::kRead},
      {"TopActivations", Role::kRead},
      {"DocumentFeatures", Role::kRead},
      {"SearchSimilar", Role::kRead},
      {"FeatureFamily", Role::kRead},
      {"ListFamilies", Role::kRead},
      {"CompareDictionaries", Role::kRead},
      {"Evaluate", Role::kRead},
      {"ListExplanations", Role::kRead},
      {"SearchExplanations", Role::kRead},
      {"ExportLatents", Role::kRead},
      {"LoadDictionary", Role::kWrite},
      {"Ingest", Role::kWrite},
      {"UploadDictionary", Role::kWrite},
      {"SetExplanation", Role::kWrite},
      {"DeleteExplanation", Role::kWrite},
      {"ImportExplanations", Role::kWrite},
      {"DeleteDictionary", Role::kAdmin},
      {"CreateCheckpoint", Role::kAdmin},
  };
  return *kRoles;
}

std::optional<Role> RequiredRole(absl::string_view method) {
  for (const auto& [name, role] : MethodRoles()) {
    if (name == method) return role;
  }
  return std::nullopt;
}

std::string TokenSha256(absl::string_view token) { return Sha256Hex(token); }

absl::StatusOr<TokenTable> TokenTable::Parse(absl::string_view text, absl::string_view source) {
  TokenTable table;
  std::set<std::string> names;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (const size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    const std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const std::string where = absl::StrCat(source, ":", line_number, ": ");
    if (fields.size() != 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "expected 3 fields 'ROLE SHA256_HEX NAME', got ", fields.size()));
    }
    const std::optional<Role> role = ParseRole(fields[0]);
    if (!role.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "role '", fields[0], "' is not read, write or admin"));
    }
    std::string digest = absl::AsciiStrToLower(fields[1]);
    const bool hex =
        digest.size() == 64 && digest.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "'", fields[1].substr(0, 80),
          "' is not a SHA-256 hash (64 hex digits; the file holds hashes, never tokens)"));
    }
    const std::string name(fields[2]);
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, "name '", name, "' is used twice"));
    }
    if (!table.by_hash_.emplace(std::move(digest), Principal{name, *role}).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "the hash of '", name, "' is already in the file"));
    }
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      return absl::NotFoundError(absl::StrCat("token file ", path.string(), " does not exist"));
    }
    return absl::PermissionDeniedError(
        absl::StrCat("token file ", path.string(), " cannot be read"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path.string());
}

std::optional<Principal> TokenTable::Find(absl::string_view token) const {
  auto it = by_hash_.find(TokenSha256(token));
  if (it == by_hash_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::FromFile(std::filesystem::path path) {
  if (path.empty()) return absl::InvalidArgumentError("token file path is empty");
  auto auth = std::make_unique<Authenticator>();
  auth->path_ = std::move(path);
  absl::Status loaded = auth->Reload();
  if (!loaded.ok()) return loaded;
  return auth;
}

absl::Status Authenticator::Reload() {
  if (!enabled()) return absl::OkStatus();
  absl::StatusOr<TokenTable> table = TokenTable::ReadFile(path_);
  if (!table.ok()) return table.status();
  auto fresh = std::make_shared<const TokenTable>(*std::move(table));
  absl::MutexLock lock(&mu_);
  table_ = std::move(fresh);
  return absl::OkStatus();
}

size_t Authenticator::token_count() const {
  absl::MutexLock lock(&mu_);
  return table_ == nullptr ? 0 : table_->size();
}

absl::StatusOr<Principal> Authenticator::Authorize(std::optional<absl::string_view> authorization,
                                                   absl::string_view method) const {
  const std::optional<Role> needed = RequiredRole(method);
  if (!enabled()) {
    if (!needed.has_value()) {
      return absl::PermissionDeniedError(absl::StrCat("method '", method, "' has no role"));
    }
    return Principal{"anonymous", Role::kAdmin};
  }
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        "this server requires a bearer token: send the header 'authorization: Bearer TOKEN' "
        "(saedict --token / SAEDICT_TOKEN, Python token=...)");
  }
  absl::string_view credential = absl::StripAsciiWhitespace(*authorization);
  if (!absl::StartsWithIgnoreCase(credential, "bearer ")) {
    return absl::UnauthenticatedError(
        "the authorization header is not 'Bearer TOKEN' (only bearer tokens are accepted)");
  }
  credential = absl::StripLeadingAsciiWhitespace(credential.substr(7));
  std::shared_ptr<const TokenTable> table;
  {
    absl::MutexLock lock(&mu_);
    table = table_;
  }
  std::optional<Principal> principal = table->Find(credential);
  if (!principal.has_value()) {
    return absl::UnauthenticatedError("the bearer token is not one this server knows");
  }
  if (!needed.has_value()) {
    return absl::PermissionDeniedError(absl::StrCat("method '", method, "' has no role"));
  }
  if (principal->role < *needed) {
    return absl::PermissionDeniedError(absl::StrCat(method, " needs the ", RoleName(*needed),
                                                    " role; the token '", principal->name, "' has ",
                                                    RoleName(principal->role)));
  }
  return *principal;
}

}  // namespace saedict::service
