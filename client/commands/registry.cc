// The list of CLI commands and CommandEnv's lazy connection; see command.h.
#include <array>
#include <fstream>
#include <sstream>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "client/commands/command.h"
#include "util/status_macros.h"

namespace saedict::client {

namespace {

absl::StatusOr<std::string> ReadPemFile(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InputError(absl::StrCat("--", flag, "=", path, ": cannot read the file"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<Client*> CommandEnv::client() {
  if (client_ == nullptr) {
    ClientOptions options;
    options.timeout = global_.timeout;
    options.token = global_.token;
    if (global_.tls || !global_.tls_ca.empty() || !global_.tls_cert.empty() ||
        !global_.tls_key.empty()) {
      options.tls.enabled = true;
      if (!global_.tls_ca.empty()) {
        SAEDICT_ASSIGN_OR_RETURN(options.tls.root_certs_pem, ReadPemFile(global_.tls_ca, "tls_ca"));
      }
      if (!global_.tls_cert.empty()) {
        SAEDICT_ASSIGN_OR_RETURN(options.tls.cert_chain_pem,
                                 ReadPemFile(global_.tls_cert, "tls_cert"));
      }
      if (!global_.tls_key.empty()) {
        SAEDICT_ASSIGN_OR_RETURN(options.tls.private_key_pem,
                                 ReadPemFile(global_.tls_key, "tls_key"));
      }
      options.tls.server_name_override = global_.tls_server_name;
    }
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(global_.server, options);
    if (!c.ok()) return c.status();
    client_ = std::move(*c);
  }
  return client_.get();
}

namespace {
constexpr absl::string_view kInputErrorPayload = "type.saedict/cli.InputError";
constexpr absl::string_view kThresholdMissedPayload = "type.saedict/cli.ThresholdMissed";
}  // namespace

absl::Status InputError(absl::Status status) {
  if (!status.ok()) status.SetPayload(kInputErrorPayload, absl::Cord("1"));
  return status;
}

absl::Status InputError(absl::string_view message) {
  return InputError(absl::InvalidArgumentError(message));
}

bool IsInputError(const absl::Status& status) {
  return status.GetPayload(kInputErrorPayload).has_value();
}

absl::Status ThresholdMissed(absl::string_view message) {
  absl::Status status = absl::FailedPreconditionError(message);
  status.SetPayload(kThresholdMissedPayload, absl::Cord("1"));
  return status;
}

bool IsThresholdMissed(const absl::Status& status) {
  return status.GetPayload(kThresholdMissedPayload).has_value();
}

std::span<const Command* const> AllCommands() {
  static const std::array<const Command*, 21> kCommands = {
      &LoadCommand(),    &UploadCommand(),  &ListCommand(),    &InfoCommand(),       &DeleteCommand(),
      &EncodeCommand(),  &DecodeCommand(),  &IngestCommand(),     &DocCommand(),
      &FeatureCommand(), &SimilarCommand(), &FamilyCommand(),     &FamiliesCommand(),
      &CompareCommand(), &EvalCommand(),    &CheckpointCommand(), &NewTokenCommand(),
      &ExplainCommand(), &SearchCommand(),    &ImportExplanationsCommand(), &ExportCommand(),
  };
  return kCommands;
}

const Command* FindCommand(absl::string_view name) {
  for (const Command* c : AllCommands()) {
    if (c->name == name) return c;
  }
  return nullptr;
}

}  // namespace saedict::client
