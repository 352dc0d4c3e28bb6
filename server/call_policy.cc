#include "server/call_policy.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace saedict::server {

std::string PeerHost(const std::string& peer) {
  absl::string_view p = peer;
  if (!absl::ConsumePrefix(&p, "ipv4:") && !absl::ConsumePrefix(&p, "ipv6:")) {
    return std::string(p);  // unix:..., or something gRPC adds later: the whole peer
  }
  if (const size_t colon = p.rfind(':'); colon != absl::string_view::npos) p = p.substr(0, colon);
  absl::ConsumePrefix(&p, "[");
  absl::ConsumeSuffix(&p, "]");
  return std::string(p);
}

CallPolicy::CallPolicy(CallPolicyOptions options) : options_(std::move(options)) {}

CallPolicy::Admission::~Admission() {
  if (policy_ != nullptr) policy_->Release(client_);
}

absl::StatusOr<CallPolicy::Admission> CallPolicy::Admit(const grpc::ServerContext* context,
                                                        absl::string_view method, CallKind kind) {
  CallerInfo caller;
  const auto& metadata = context->client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    caller.authorization = std::string(it->second.data(), it->second.size());
  }
  caller.peer_host = PeerHost(context->peer());
  if (const auto deadline = context->deadline();
      deadline != std::chrono::system_clock::time_point::max()) {
    caller.deadline = absl::FromChrono(deadline);
  }
  return Admit(caller, method, kind);
}

absl::StatusOr<CallPolicy::Admission> CallPolicy::Admit(const CallerInfo& caller,
                                                        absl::string_view method, CallKind kind) {
  if (draining_.load()) {
    return absl::UnavailableError("the server is shutting down; retry on another server");
  }
  const service::Authenticator& auth = options_.auth != nullptr ? *options_.auth : anonymous_;
  std::optional<absl::string_view> header;
  if (caller.authorization.has_value()) header = *caller.authorization;
  absl::StatusOr<service::Principal> principal = auth.Authorize(header, method);
  if (!principal.ok()) {
    if (options_.metrics != nullptr) {
      options_.metrics->ObserveAuthDenied(
          absl::IsUnauthenticated(principal.status()) ? "unauthenticated" : "permission_denied");
    }
    return principal.status();
  }
  Admission admission;
  admission.principal = *std::move(principal);
  if (caller.deadline.has_value()) {
    admission.deadline = *caller.deadline;
  } else {
    const absl::Duration fallback =
        kind == CallKind::kUnary ? options_.default_deadline : options_.default_stream_deadline;
    if (fallback != absl::InfiniteDuration()) admission.deadline = absl::Now() + fallback;
  }
  if (kind == CallKind::kStream && options_.max_streams_per_client > 0) {
    std::string client = auth.enabled() ? absl::StrCat("token:", admission.principal.name)
                                        : caller.peer_host;
    absl::MutexLock lock(&mu_);
    int& open = open_streams_[client];
    if (open >= options_.max_streams_per_client) {
      if (open == 0) open_streams_.erase(client);
      if (options_.metrics != nullptr) options_.metrics->ObserveStreamLimitRejection();
      return absl::ResourceExhaustedError(absl::StrCat(
          "client ", client, " already has ", options_.max_streams_per_client,
          " streaming calls open (the server's --max_streams_per_client); finish one first"));
    }
    ++open;
    admission.policy_ = this;
    admission.client_ = std::move(client);
  }
  return admission;
}

void CallPolicy::Release(const std::string& client) {
  absl::MutexLock lock(&mu_);
  auto it = open_streams_.find(client);
  if (it == open_streams_.end()) return;
  if (--it->second <= 0) open_streams_.erase(it);
}

int CallPolicy::open_streams(const std::string& client) const {
  absl::MutexLock lock(&mu_);
  auto it = open_streams_.find(client);
  return it == open_streams_.end() ? 0 : it->second;
}

}  // namespace saedict::server
