// The list of CLI commands and CommandEnv's lazy connection; see command.h.
#include <array>

#include "absl/strings/cord.h"
#include "client/commands/command.h"

namespace saedict::client {

absl::StatusOr<Client*> CommandEnv::client() {
  if (client_ == nullptr) {
    ClientOptions options;
    options.timeout = global_.timeout;
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
  static const std::array<const Command*, 15> kCommands = {
      &LoadCommand(),     &ListCommand(),     &InfoCommand(),     &DeleteCommand(),
      &EncodeCommand(),   &DecodeCommand(),   &IngestCommand(),   &DocCommand(),
      &FeatureCommand(),  &SimilarCommand(),  &FamilyCommand(),   &FamiliesCommand(),
      &CompareCommand(),  &EvalCommand(),     &CheckpointCommand(),
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
