#include "gateway/http_gateway.h"

#include <httplib.h>

#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gateway/dashboard_assets.h"
#include "gateway/json_api.h"
#include "gateway/live_stream.h"
#include "gateway/neuronpedia_api.h"
#include "gateway/proto_json.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "service/access_policy.h"

namespace saedict::gateway {
namespace {

constexpr char kJson[] = "application/json";
constexpr char kNdjson[] = "application/x-ndjson";
constexpr char kDeadlineHeader[] = "X-Saedict-Deadline-Ms";

absl::string_view ShapeName(MethodShape shape) {
  switch (shape) {
    case MethodShape::kUnary:
      return "unary";
    case MethodShape::kServerStream:
      return "server_stream";
    case MethodShape::kClientStream:
      return "client_stream";
    case MethodShape::kBidiStream:
      return "bidi_stream";
  }
  return "unary";
}

// `path` as a regular expression that matches only itself (httplib routes
// are patterns).
std::string LiteralPattern(std::string_view path) {
  std::string out;
  for (char c : path) {
    if (std::string_view(".^$|()[]{}*+?\\").find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

void WriteError(httplib::Response& res, const absl::Status& status) {
  res.status = HttpStatusFor(status.code());
  res.set_content(ErrorJson(status), kJson);
}

}  // namespace

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

class HttpGateway::Impl {
 public:
  Impl(const HttpOptions& options, service::ServiceCore* core, server::CallPolicy* policy,
       server::ServerMetrics* metrics, std::unique_ptr<httplib::Server> http)
      : options_(options),
        core_(core),
        policy_(policy),
        metrics_(metrics),
        api_(core, options.max_body_bytes),
        http_(std::move(http)) {
    Configure();
  }

  httplib::Server& http() { return *http_; }
  std::thread& listener() { return listener_; }

  // Cancels every live stream (the server is stopping: their producers
  // stop, the answers end with the cancellation), so stopping never waits
  // for a slow reader.
  void CancelLiveStreams() {
    absl::MutexLock lock(&live_mu_);
    for (LiveStream* stream : live_) stream->Cancel();
  }

 private:
  // One admitted request, counted in the RPC metrics as service "http",
  // method `label`. It may outlive its handler: a live stream keeps it (and
  // with it the admission's stream slot) until the stream ends.
  class RequestScope {
   public:
    RequestScope(server::ServerMetrics* metrics, const std::string& label)
        : metrics_(metrics), metric_(absl::StrCat("/http/", label)), start_(absl::Now()) {
      if (metrics_ != nullptr) metrics_->RpcStarted(metric_);
    }
    ~RequestScope() {
      if (metrics_ == nullptr) return;
      metrics_->ObserveRpc(metric_, absl::StatusCodeToString(status.code()), absl::Now() - start_);
      metrics_->RpcFinished(metric_);
    }
    absl::Time start() const { return start_; }
    std::optional<server::CallPolicy::Admission> admission;
    absl::Status status;  // how the request ended

   private:
    server::ServerMetrics* const metrics_;
    const std::string metric_;
    const absl::Time start_;
  };

  // Runs one API request: admission (auth, role, deadline, stream cap,
  // drain), then fn(deadline, scope), then the error answer if it failed.
  template <typename Fn>
  void Serve(const httplib::Request& req, httplib::Response& res, const std::string& label,
             absl::string_view role_method, server::CallKind kind, Fn fn) {
    auto scope = std::make_shared<RequestScope>(metrics_, label);
    absl::Status status = [&]() -> absl::Status {
      server::CallerInfo caller;
      if (req.has_header("Authorization"))
        caller.authorization = req.get_header_value("Authorization");
      caller.peer_host = req.remote_addr;
      if (req.has_header(kDeadlineHeader)) {
        int64_t ms = 0;
        const std::string value = req.get_header_value(kDeadlineHeader);
        if (!absl::SimpleAtoi(value, &ms) || ms <= 0) {
          return absl::InvalidArgumentError(absl::StrCat(kDeadlineHeader, ": '", value,
                                                         "'; expected milliseconds from now, > 0"));
        }
        caller.deadline = scope->start() + absl::Milliseconds(ms);
      }
      absl::StatusOr<server::CallPolicy::Admission> admission =
          policy_->Admit(caller, role_method, kind);
      if (!admission.ok()) return admission.status();
      const absl::Time deadline = admission->deadline;
      scope->admission.emplace(*std::move(admission));
      return fn(deadline, scope);
    }();
    if (!status.ok()) WriteError(res, status);
    scope->status = status;  // a live stream's provider overwrites it at its end
  }

  // A server-streaming method, live: the answer's lines go out as the core
  // produces them. An error before the first line is an HTTP error; one
  // after it ends the NDJSON with {"error":{"code","message"}}.
  absl::Status ServeLiveStream(const JsonApi::Method& method, std::string body, absl::Time deadline,
                               std::shared_ptr<RequestScope> scope, httplib::Response& res) {
    const JsonApi::Method* m = &method;
    auto stream = std::make_shared<LiveStream>(
        [m, body = std::move(body), deadline](const LiveStream::LineSink& emit,
                                              const std::function<bool()>& cancelled) {
          JsonCall call;
          call.body = body;
          call.deadline = deadline;
          call.cancelled = cancelled;
          return m->stream(call, emit);
        });
    if (std::optional<absl::Status> ended = stream->WaitForFirstLine()) {
      if (ended->ok()) res.set_content("", kNdjson);
      return *ended;
    }
    {
      absl::MutexLock lock(&live_mu_);
      live_.insert(stream.get());
    }
    res.set_chunked_content_provider(
        kNdjson,
        [stream, scope](size_t, httplib::DataSink& sink) {
          if (std::optional<std::string> line = stream->Next()) {
            line->push_back('\n');
            return sink.write(line->data(), line->size());
          }
          const absl::Status end = stream->status();
          if (!end.ok()) {
            const std::string error = absl::StrCat("{\"error\":", ErrorJson(end), "}\n");
            sink.write(error.data(), error.size());
          }
          scope->status = end;
          sink.done();
          return true;
        },
        [this, stream, scope](bool success) {
          if (!success) {
            stream->Cancel();  // the client went away
            scope->status = absl::CancelledError("the client closed the connection");
          }
          absl::MutexLock lock(&live_mu_);
          live_.erase(stream.get());
        });
    return absl::OkStatus();
  }

  void ServeMethod(const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    const JsonApi::Method* method = api_.Find(name);
    if (method == nullptr) {
      WriteError(res, absl::NotFoundError(absl::StrCat(
                          "no method '", name, "' in saedict.v1.Saedict; GET /v1 lists them")));
      return;
    }
    const bool get = req.method == "GET";
    if (get && (method->shape != MethodShape::kUnary ||
                service::RequiredRole(name) != service::Role::kRead)) {
      res.set_header("Allow", "POST");
      res.status = 405;
      res.set_content(ErrorJson(absl::InvalidArgumentError(absl::StrCat(
                          "GET is for read-only unary methods; ", name, " takes POST"))),
                      kJson);
      return;
    }
    const server::CallKind kind =
        method->shape == MethodShape::kUnary ? server::CallKind::kUnary : server::CallKind::kStream;
    Serve(req, res, name, name, kind,
          [&](absl::Time deadline, std::shared_ptr<RequestScope> scope) -> absl::Status {
            std::string query_json;
            if (get) {
              std::vector<std::pair<std::string, std::string>> params(req.params.begin(),
                                                                      req.params.end());
              std::unique_ptr<google::protobuf::Message> request(
                  google::protobuf::MessageFactory::generated_factory()
                      ->GetPrototype(method->request_type)
                      ->New());
              if (absl::Status s = FromQueryParameters(params, request.get()); !s.ok()) return s;
              query_json = ToJson(*request);
            }
            if (method->shape == MethodShape::kServerStream) {
              return ServeLiveStream(*method, get ? query_json : req.body, deadline,
                                     std::move(scope), res);
            }
            JsonCall call;
            call.body = get ? absl::string_view(query_json) : absl::string_view(req.body);
            call.deadline = deadline;
            absl::StatusOr<JsonAnswer> answer = method->run(call);
            if (!answer.ok()) return answer.status();
            res.set_content(std::move(answer->body), answer->ndjson ? kNdjson : kJson);
            return absl::OkStatus();
          });
  }

  void ServeMethodList(httplib::Response& res) {
    google::protobuf::Struct out;
    google::protobuf::ListValue& list = *(*out.mutable_fields())["methods"].mutable_list_value();
    for (const auto& [name, method] : api_.methods()) {
      google::protobuf::Struct& m = *list.add_values()->mutable_struct_value();
      (*m.mutable_fields())["name"].set_string_value(name);
      (*m.mutable_fields())["shape"].set_string_value(std::string(ShapeName(method.shape)));
      const std::optional<service::Role> role = service::RequiredRole(name);
      (*m.mutable_fields())["role"].set_string_value(
          role.has_value() ? std::string(service::RoleName(*role)) : "");
      (*m.mutable_fields())["request"].set_string_value(method.request_type->full_name());
      (*m.mutable_fields())["get"].set_bool_value(method.shape == MethodShape::kUnary &&
                                                  role == service::Role::kRead);
    }
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(out, &json);
    res.set_content(json, kJson);
  }

  // Access-Control-* headers for an allowed Origin; false for a preflight
  // of an origin that is not allowed.
  bool ApplyCors(const httplib::Request& req, httplib::Response& res) const {
    if (!req.has_header("Origin")) return true;
    const std::string origin = req.get_header_value("Origin");
    bool allowed = false;
    for (const std::string& o : options_.cors_origins) allowed = allowed || o == "*" || o == origin;
    if (!allowed) return false;
    const bool any = options_.cors_origins.size() == 1 && options_.cors_origins[0] == "*";
    res.set_header("Access-Control-Allow-Origin", any ? "*" : origin);
    if (!any) res.set_header("Vary", "Origin");
    res.set_header("Access-Control-Expose-Headers", "Content-Encoding, Content-Type");
    return true;
  }

  void Configure() {
    httplib::Server& http = *http_;
    const int threads = std::max(1, options_.threads);
    http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http.set_payload_max_length(static_cast<size_t>(options_.max_body_bytes));
    http.set_keep_alive_max_count(1000);
    // Headers and body go out as separate writes: without TCP_NODELAY the
    // second waits for the client's delayed ACK (40 ms a request).
    http.set_tcp_nodelay(true);
    http.set_read_timeout(60, 0);
    http.set_write_timeout(60, 0);
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      const bool allowed = ApplyCors(req, res);
      if (req.method != "OPTIONS") return httplib::Server::HandlerResponse::Unhandled;
      if (!allowed) {
        res.status = 403;
        res.set_content(ErrorJson(absl::PermissionDeniedError(
                            absl::StrCat("origin '", req.get_header_value("Origin"),
                                         "' is not in the server's --http_cors_origins"))),
                        kJson);
        return httplib::Server::HandlerResponse::Handled;
      }
      res.status = 204;
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Allow-Headers",
                     absl::StrCat("Authorization, Content-Type, ", kDeadlineHeader));
      res.set_header("Access-Control-Max-Age", "600");
      return httplib::Server::HandlerResponse::Handled;
    });
    // httplib's own errors (unrouted path, body too large, bad request line)
    // get the JSON error body too.
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      absl::Status status;
      if (res.status == 404) {
        status = absl::NotFoundError(absl::StrCat("no route ", req.method, " ", req.path,
                                                  "; the dashboard is at /, the API at /v1"));
      } else if (res.status == 413) {
        status = absl::ResourceExhaustedError(
            absl::StrCat("the request body passes ", options_.max_body_bytes,
                         " bytes (the server's --max_message_bytes)"));
      } else if (res.status == 405) {
        status =
            absl::InvalidArgumentError(absl::StrCat(req.method, " is not allowed on ", req.path));
      } else {
        status = absl::InvalidArgumentError(absl::StrCat("HTTP ", res.status));
      }
      res.set_content(ErrorJson(status), kJson);
    });
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "unknown exception";
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          WriteError(res, absl::InternalError(absl::StrCat("internal error: ", what)));
        });

    http.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
      const bool serving = !policy_->draining();
      res.status = serving ? 200 : 503;
      res.set_content(serving ? R"({"status":"SERVING"})" : R"({"status":"NOT_SERVING"})", kJson);
    });
    http.Get("/v1/?",
             [this](const httplib::Request&, httplib::Response& res) { ServeMethodList(res); });
    auto method = [this](const httplib::Request& req, httplib::Response& res) {
      ServeMethod(req, res);
    };
    http.Get(R"(/v1/([A-Za-z0-9_]+))", method);
    http.Post(R"(/v1/([A-Za-z0-9_]+))", method);

    http.Get(R"(/api/feature/([^/]+)/([^/]+)/([^/]+))", [this](const httplib::Request& req,
                                                               httplib::Response& res) {
      Serve(req, res, "neuronpedia_feature", "GetFeature", server::CallKind::kUnary,
            [&](absl::Time, std::shared_ptr<RequestScope>) -> absl::Status {
              absl::StatusOr<std::string> out = NeuronpediaFeature(
                  *core_, req.matches[1].str(), req.matches[2].str(), req.matches[3].str());
              if (!out.ok()) return out.status();
              res.set_content(*std::move(out), kJson);
              return absl::OkStatus();
            });
    });
    http.Post(
        "/api/explanation/search", [this](const httplib::Request& req, httplib::Response& res) {
          Serve(req, res, "neuronpedia_explanation_search", "SearchExplanations",
                server::CallKind::kUnary,
                [&](absl::Time, std::shared_ptr<RequestScope>) -> absl::Status {
                  absl::StatusOr<std::string> out = NeuronpediaExplanationSearch(*core_, req.body);
                  if (!out.ok()) return out.status();
                  res.set_content(*std::move(out), kJson);
                  return absl::OkStatus();
                });
        });
    http.Post("/api/search-all", [this](const httplib::Request& req, httplib::Response& res) {
      Serve(req, res, "neuronpedia_search_all", "Encode", server::CallKind::kUnary,
            [&](absl::Time deadline, std::shared_ptr<RequestScope>) -> absl::Status {
              absl::StatusOr<std::string> out = NeuronpediaSearchAll(*core_, req.body, deadline);
              if (!out.ok()) return out.status();
              res.set_content(*std::move(out), kJson);
              return absl::OkStatus();
            });
    });

    // The dashboard: its files by path, "/" is index.html.
    for (const DashboardAsset& asset : DashboardAssets()) {
      auto serve = [&asset](const httplib::Request&, httplib::Response& res) {
        res.set_header("Cache-Control", "no-cache");
        res.set_content(asset.bytes.data(), asset.bytes.size(), std::string(asset.content_type));
      };
      http.Get(LiteralPattern(asset.path), serve);
      if (asset.path == "/index.html") http.Get("/", serve);
    }
  }

  const HttpOptions options_;
  service::ServiceCore* const core_;
  server::CallPolicy* const policy_;
  server::ServerMetrics* const metrics_;
  const JsonApi api_;
  std::unique_ptr<httplib::Server> http_;
  std::thread listener_;
  absl::Mutex live_mu_;
  std::set<LiveStream*> live_ ABSL_GUARDED_BY(live_mu_);
};

absl::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Start(const HttpOptions& options,
                                                                service::ServiceCore* core,
                                                                server::CallPolicy* policy,
                                                                server::ServerMetrics* metrics) {
  std::unique_ptr<httplib::Server> http;
  const bool cert = !options.tls_cert_file.empty();
  if (cert) {
    auto tls = std::make_unique<httplib::SSLServer>(
        options.tls_cert_file.c_str(), options.tls_key_file.c_str(),
        options.tls_client_ca_file.empty() ? nullptr : options.tls_client_ca_file.c_str());
    if (!tls->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "HTTP TLS: cannot load --tls_cert_file=", options.tls_cert_file.string(),
          " / --tls_key_file=", options.tls_key_file.string(),
          options.tls_client_ca_file.empty()
              ? std::string()
              : absl::StrCat(" / --tls_client_ca_file=", options.tls_client_ca_file.string())));
    }
    http = std::move(tls);
  } else {
    http = std::make_unique<httplib::Server>();
  }
  auto impl = std::make_unique<Impl>(options, core, policy, metrics, std::move(http));
  int port = options.port;
  if (options.port == 0) {
    port = impl->http().bind_to_any_port(options.address);
    if (port <= 0) port = -1;
  } else if (!impl->http().bind_to_port(options.address, options.port)) {
    port = -1;
  }
  if (port < 0) {
    return absl::UnavailableError(absl::StrCat("HTTP: cannot listen on ", options.address, ":",
                                               options.port, " (in use, or not a local address?)"));
  }
  httplib::Server* server = &impl->http();
  impl->listener() = std::thread([server] { server->listen_after_bind(); });
  // Stop() before the loop runs would be lost: wait until it does.
  while (!server->is_running()) absl::SleepFor(absl::Milliseconds(1));
  return std::unique_ptr<HttpGateway>(new HttpGateway(std::move(impl), port));
}

HttpGateway::HttpGateway(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

HttpGateway::~HttpGateway() { Stop(); }

void HttpGateway::Stop() {
  if (impl_ == nullptr) return;
  impl_->CancelLiveStreams();
  impl_->http().stop();
  if (impl_->listener().joinable()) impl_->listener().join();
}

}  // namespace saedict::gateway
