// CallPolicy: what every saedict.v1 handler checks before it runs — who the
// caller is and whether their role may call the method (service/access_policy
// .h, one table), the deadline the call runs under, and, for streaming
// calls, the per-client cap on open streams.
//
//   absl::StatusOr<CallPolicy::Admission> a = policy.Admit(context, "Ingest", kStream);
//   if (!a.ok()) return ToGrpcStatus(a.status());  // UNAUTHENTICATED, PERMISSION_DENIED,
//                                                  // RESOURCE_EXHAUSTED
//   ... a->deadline ...                             // the stream slot frees with `a`
//
// The HTTP gateway admits its requests through the same policy with a
// CallerInfo (its Authorization header, peer address and deadline).
//
// A client is its token's name when auth is on, else its peer IP address.
// A call with no deadline of its own gets default_deadline (unary) or
// default_stream_deadline (streaming); InfiniteDuration: none.
//
// Thread safety: Admit() may be called from any number of handler threads.
#ifndef SAEDICT_SERVER_CALL_POLICY_H_
#define SAEDICT_SERVER_CALL_POLICY_H_

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"
#include "server/metrics.h"
#include "service/access_policy.h"

namespace saedict::server {

struct CallPolicyOptions {
  const service::Authenticator* auth = nullptr;  // null: auth off
  absl::Duration default_deadline = absl::Seconds(60);
  absl::Duration default_stream_deadline = absl::InfiniteDuration();
  int max_streams_per_client = 16;   // 0: no cap
  ServerMetrics* metrics = nullptr;  // null: not counted
};

enum class CallKind { kUnary, kStream };

// Who is calling, transport-neutral: what Admit() reads from a gRPC context
// or an HTTP request.
struct CallerInfo {
  std::optional<std::string> authorization;  // the "authorization" header, if sent
  std::string peer_host;                     // "127.0.0.1", "::1"
  std::optional<absl::Time> deadline;        // the caller's own, if it set one
};

class CallPolicy {
 public:
  explicit CallPolicy(CallPolicyOptions options);

  class Admission {
   public:
    Admission(Admission&& other) noexcept
        : principal(std::move(other.principal)),
          deadline(other.deadline),
          policy_(std::exchange(other.policy_, nullptr)),
          client_(std::move(other.client_)) {}
    Admission& operator=(Admission&&) = delete;
    ~Admission();
    service::Principal principal;
    absl::Time deadline = absl::InfiniteFuture();

   private:
    friend class CallPolicy;
    Admission() = default;
    CallPolicy* policy_ = nullptr;  // set when holding a stream slot
    std::string client_;
  };

  absl::StatusOr<Admission> Admit(const grpc::ServerContext* context, absl::string_view method,
                                  CallKind kind);
  absl::StatusOr<Admission> Admit(const CallerInfo& caller, absl::string_view method,
                                  CallKind kind);

  // From now on Admit() answers UNAVAILABLE ("shutting down"): the drain.
  void StartDraining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }

  // Streams `client` has open now (tests).
  int open_streams(const std::string& client) const;

 private:
  void Release(const std::string& client);

  const CallPolicyOptions options_;
  const service::Authenticator anonymous_;  // used when options_.auth is null
  std::atomic<bool> draining_{false};
  mutable absl::Mutex mu_;
  std::map<std::string, int> open_streams_ ABSL_GUARDED_BY(mu_);
};

// "ipv4:127.0.0.1:5000" -> "127.0.0.1", "ipv6:[::1]:5000" -> "::1".
std::string PeerHost(const std::string& peer);

}  // namespace saedict::server

#endif  // SAEDICT_SERVER_CALL_POLICY_H_
