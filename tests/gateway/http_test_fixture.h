// HttpGatewayTest: GrpcServerTest with the HTTP gateway on a free loopback
// port and an httplib client for it, so each test can ask the same thing
// over both transports. Thread safety: test thread only.
#ifndef SAEDICT_TESTS_GATEWAY_HTTP_TEST_FIXTURE_H_
#define SAEDICT_TESTS_GATEWAY_HTTP_TEST_FIXTURE_H_

#include <httplib.h>

#include <memory>
#include <string>

#include "gateway/proto_json.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/server/grpc_test_fixture.h"

namespace saedict::testing {

class HttpGatewayTest : public GrpcServerTest {
 protected:
  void Customize(server::ServerOptions* options) override {
    options->http_port = 0;
    options->demo = true;
    CustomizeHttp(options);
  }
  virtual void CustomizeHttp(server::ServerOptions* /*options*/) {}

  httplib::Client Http() {
    httplib::Client client("127.0.0.1", server_->http_port());
    client.set_read_timeout(120, 0);
    client.set_decompress(true);
    return client;
  }
  // POST /v1/{method} with `json`; ASSERT-free: the caller checks the result.
  httplib::Result Post(const std::string& method, const std::string& json,
                       const httplib::Headers& headers = {}) {
    return Http().Post(("/v1/" + method).c_str(), headers, json, "application/json");
  }
  // POST the request as JSON, parse the 200 answer into `response`.
  template <typename Response>
  ::testing::AssertionResult PostProto(const std::string& method,
                                       const google::protobuf::Message& request,
                                       Response* response) {
    httplib::Result r = Post(method, gateway::ToJson(request));
    if (!r) return ::testing::AssertionFailure() << "no HTTP answer";
    if (r->status != 200) return ::testing::AssertionFailure() << r->status << " " << r->body;
    absl::Status s = gateway::FromJson(r->body, response, "answer");
    if (!s.ok()) return ::testing::AssertionFailure() << s;
    return ::testing::AssertionSuccess();
  }
  static bool Same(const google::protobuf::Message& a, const google::protobuf::Message& b) {
    return google::protobuf::util::MessageDifferencer::Equals(a, b);
  }
  // Waits until the demo's index and neighbours are READY.
  void WaitForDemoIndex() {
    for (int i = 0; i < 600; ++i) {
      v1::GetDictionaryRequest req;
      req.set_id("demo");
      v1::GetDictionaryResponse resp;
      if (stub_->GetDictionary(Ctx().get(), req, &resp).ok() &&
          resp.dictionary().index().state() == v1::INDEX_STATE_READY &&
          resp.dictionary().index().neighbours_state() == v1::INDEX_STATE_READY) {
        return;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    FAIL() << "demo index not READY after 30 s";
  }
};

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_GATEWAY_HTTP_TEST_FIXTURE_H_
