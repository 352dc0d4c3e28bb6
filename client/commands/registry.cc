// The list of CLI commands and CommandEnv's lazy connection; see command.h.
#include <array>

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

std::span<const Command* const> AllCommands() {
  static const std::array<const Command*, 6> kCommands = {
      &LoadCommand(),   &ListCommand(),   &InfoCommand(),
      &DeleteCommand(), &EncodeCommand(), &DecodeCommand(),
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
