// The HTTP gateway's error paths, limits, CORS, compression, auth, health,
// the dashboard files and the metrics of HTTP requests, against a real
// saedictd (in-process SaedictServer, HTTP on a free loopback port).
#include <fstream>
#include <string>

#include "gateway/dashboard_assets.h"
#include "service/access_policy.h"
#include "tests/gateway/http_test_fixture.h"

namespace saedict::testing {
namespace {

using ::testing::HasSubstr;

// The error body of `r`: status, {"code","message"}.
void ExpectError(const httplib::Result& r, int status, const std::string& code,
                 const std::string& message_part) {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  EXPECT_THAT(r->body, HasSubstr("\"code\":\"" + code + "\"")) << r->body;
  EXPECT_THAT(r->body, HasSubstr(message_part)) << r->body;
}

class HttpErrorsTest : public HttpGatewayTest {
 protected:
  void CustomizeHttp(server::ServerOptions* options) override {
    options->http_cors_origins = {"http://dash.example"};
    options->max_message_bytes = 1 << 20;
    options->max_request_tokens = 4096;  // the demo ingest sends 4096 a message
    options->metrics_port = 0;
  }
};

TEST_F(HttpErrorsTest, BadRequestsGetCodeAndMessage) {
  ExpectError(Http().Get("/v1/NoSuchMethod"), 404, "NOT_FOUND", "no method 'NoSuchMethod'");
  ExpectError(Http().Get("/nowhere"), 404, "NOT_FOUND", "no route GET /nowhere");
  ExpectError(Post("GetFeature", "{not json"), 400, "INVALID_ARGUMENT",
              "request body: not a valid JSON saedict.v1.GetFeatureRequest");
  ExpectError(Post("GetFeature", R"({"dictionaryId":"demo","colour":1})"), 400, "INVALID_ARGUMENT",
              "colour");
  ExpectError(Post("GetFeature", R"({"dictionaryId":"demo","feature":"many"})"), 400,
              "INVALID_ARGUMENT", "feature");
  ExpectError(Post("GetFeature", R"({"dictionaryId":"nope","feature":1})"), 404, "NOT_FOUND",
              "dictionary 'nope' not found");
  ExpectError(Post("GetFeature", R"({"dictionaryId":"demo","feature":100000})"), 404, "NOT_FOUND",
              "d_sae 512");
  ExpectError(Http().Get("/v1/GetFeature?dictionary_id=demo&feature=x"), 400, "INVALID_ARGUMENT",
              "query parameters");
  ExpectError(Http().Get("/v1/GetFeature?dictionary_id=demo&nonsense=1"), 400, "INVALID_ARGUMENT",
              "query parameter nonsense");
  ExpectError(Http().Get("/v1/GetFeature?dictionary_id=a&dictionary_id=b"), 400, "INVALID_ARGUMENT",
              "given twice");
  ExpectError(Http().Get("/v1/GetFeature?skip_family=maybe"), 400, "INVALID_ARGUMENT",
              "not true/false");
  ExpectError(Http().Get("/v1/SearchSimilar?vector=1"), 400, "INVALID_ARGUMENT",
              "a message field cannot be given in the query");
  httplib::Result r = Http().Get("/v1/DeleteDictionary?id=demo");
  ExpectError(r, 405, "INVALID_ARGUMENT", "DeleteDictionary takes POST");
  EXPECT_EQ(r->get_header_value("Allow"), "POST");
  ExpectError(Post("Ingest", "\n{oops\n"), 400, "INVALID_ARGUMENT", "request body line 2");
  ExpectError(Post("GetFeature", "{}", {{"X-Saedict-Deadline-Ms", "soon"}}), 400,
              "INVALID_ARGUMENT", "X-Saedict-Deadline-Ms");
  // The demo dictionary is still there and whole.
  v1::GetDictionaryRequest get;
  get.set_id("demo");
  v1::GetDictionaryResponse info;
  EXPECT_TRUE(stub_->GetDictionary(Ctx().get(), get, &info).ok());
}

TEST_F(HttpErrorsTest, LimitsAreTheGrpcOnes) {
  // A body over --max_message_bytes: 413 with the JSON body.
  const std::string big(2 << 20, ' ');
  ExpectError(Post("ListDictionaries", "{" + big + "}"), 413, "RESOURCE_EXHAUSTED",
              "--max_message_bytes");
  // More rows than --max_request_tokens: 429.
  std::vector<float> x(4097 * 64, 0.5f);
  v1::EncodeRequest encode;
  encode.set_dictionary_id("demo");
  *encode.mutable_activations() = F16Tensor(x, {4097, 64});
  ExpectError(Post("Encode", gateway::ToJson(encode)), 429, "RESOURCE_EXHAUSTED",
              "max_request_tokens");
  // A buffered (bidi) answer past the cap is refused, not cut: one
  // EncodeStream line of 4096 F16 rows is under the 1 MiB body cap, its
  // answer with the F32 reconstruction (1 MiB) is over it.
  std::vector<float> rows(4096 * 64, 0.5f);
  v1::EncodeRequest part;
  part.set_dictionary_id("demo");
  *part.mutable_activations() = F16Tensor(rows, {4096, 64});
  part.mutable_options()->set_return_reconstruction(true);
  const std::string line = gateway::ToJson(part) + "\n";
  ASSERT_LT(line.size(), 1u << 20);
  ExpectError(Post("EncodeStream", line), 429, "RESOURCE_EXHAUSTED", "use the gRPC stream");
}

TEST_F(HttpErrorsTest, CorsHeadersOnlyForConfiguredOrigins) {
  httplib::Result plain = Http().Get("/v1/ListDictionaries");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->has_header("Access-Control-Allow-Origin"));
  httplib::Result allowed = Http().Get("/v1/ListDictionaries", {{"Origin", "http://dash.example"}});
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->get_header_value("Access-Control-Allow-Origin"), "http://dash.example");
  EXPECT_EQ(allowed->get_header_value("Vary"), "Origin");
  httplib::Result other = Http().Get("/v1/ListDictionaries", {{"Origin", "http://evil.example"}});
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 200);  // same answer; the browser withholds it
  EXPECT_FALSE(other->has_header("Access-Control-Allow-Origin"));
  httplib::Result preflight = Http().Options(
      "/v1/GetFeature",
      {{"Origin", "http://dash.example"}, {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(preflight);
  EXPECT_EQ(preflight->status, 204);
  EXPECT_THAT(preflight->get_header_value("Access-Control-Allow-Methods"), HasSubstr("POST"));
  EXPECT_THAT(preflight->get_header_value("Access-Control-Allow-Headers"),
              HasSubstr("Authorization"));
  ExpectError(Http().Options("/v1/GetFeature", {{"Origin", "http://evil.example"}}), 403,
              "PERMISSION_DENIED", "--http_cors_origins");
}

TEST_F(HttpErrorsTest, LargeAnswersAreCompressedWhenAccepted) {
  httplib::Client raw("127.0.0.1", server_->http_port());
  raw.set_decompress(false);
  const char* path = "/v1/GetFeature?dictionary_id=demo&feature=3&top_n=50";
  httplib::Result gz = raw.Get(path, {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(gz);
  EXPECT_EQ(gz->get_header_value("Content-Encoding"), "gzip");
  httplib::Result identity = raw.Get(path);
  ASSERT_TRUE(identity);
  EXPECT_FALSE(identity->has_header("Content-Encoding"));
  EXPECT_LT(gz->body.size(), identity->body.size() / 2);
  httplib::Result decoded = Http().Get(path, {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->body, identity->body);
}

TEST_F(HttpErrorsTest, HealthDashboardAndMetrics) {
  httplib::Result health = Http().Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, R"({"status":"SERVING"})");
  httplib::Result index = Http().Get("/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_THAT(index->get_header_value("Content-Type"), HasSubstr("text/html"));
  for (const gateway::DashboardAsset& asset : gateway::DashboardAssets()) {
    httplib::Result file = Http().Get(std::string(asset.path).c_str());
    ASSERT_TRUE(file) << asset.path;
    EXPECT_EQ(file->status, 200) << asset.path;
    EXPECT_EQ(file->body, asset.bytes) << asset.path;
  }
  EXPECT_TRUE(Http().Get("/v1/ListDictionaries"));
  httplib::Client metrics("127.0.0.1", server_->metrics_port());
  httplib::Result scrape = metrics.Get("/metrics");
  ASSERT_TRUE(scrape);
  EXPECT_THAT(scrape->body, HasSubstr("saedict_rpc_duration_seconds_count{code=\"OK\",method="
                                      "\"ListDictionaries\",service=\"http\"}"));
}

class HttpAuthTest : public HttpGatewayTest {
 protected:
  void CustomizeHttp(server::ServerOptions* options) override {
    const auto tokens = scratch_.path() / "tokens";
    std::ofstream(tokens) << "read " << service::TokenSha256("tok-read") << " dashboard\n"
                          << "write " << service::TokenSha256("tok-write") << " notebook\n"
                          << "admin " << service::TokenSha256("tok-admin") << " operator\n";
    options->auth_tokens_file = tokens;
  }
};

// Every route under /v1 and /api, with no token, a wrong one and each role:
// 401 without a valid token, 403 below the method's role (MethodRoles, the
// table gRPC enforces), and past auth otherwise (whatever the empty request
// then gets, never 401/403).
TEST_F(HttpAuthTest, EveryRouteEnforcesTheRoleOfItsMethod) {
  std::vector<std::pair<std::string, service::Role>> routes;
  for (const auto& [method, role] : service::MethodRoles())
    routes.emplace_back("/v1/" + method, role);
  routes.emplace_back("/api/explanation/search", *service::RequiredRole("SearchExplanations"));
  routes.emplace_back("/api/search-all", *service::RequiredRole("Encode"));
  const std::vector<std::pair<std::string, service::Role>> tokens = {
      {"tok-read", service::Role::kRead},
      {"tok-write", service::Role::kWrite},
      {"tok-admin", service::Role::kAdmin}};
  for (const auto& [route, needed] : routes) {
    SCOPED_TRACE(route);
    ExpectError(Http().Post(route.c_str(), "{}", "application/json"), 401, "UNAUTHENTICATED", "");
    ExpectError(
        Http().Post(route.c_str(), {{"Authorization", "Bearer nope"}}, "{}", "application/json"),
        401, "UNAUTHENTICATED", "");
    for (const auto& [token, role] : tokens) {
      SCOPED_TRACE(token);
      httplib::Result r = Http().Post(route.c_str(), {{"Authorization", "Bearer " + token}}, "{}",
                                      "application/json");
      ASSERT_TRUE(r);
      if (role < needed) {
        ExpectError(r, 403, "PERMISSION_DENIED", "");
      } else {
        EXPECT_NE(r->status, 401) << r->body;
        EXPECT_NE(r->status, 403) << r->body;
      }
    }
  }
  httplib::Result feature =
      Http().Get("/api/feature/saedict-demo/demo/2", {{"Authorization", "Bearer tok-read"}});
  ASSERT_TRUE(feature);
  EXPECT_EQ(feature->status, 200);
}

TEST_F(HttpAuthTest, RolesFromTheOneTable) {
  ExpectError(Http().Get("/v1/ListDictionaries"), 401, "UNAUTHENTICATED", "bearer token");
  ExpectError(Http().Get("/v1/ListDictionaries", {{"Authorization", "Bearer wrong"}}), 401,
              "UNAUTHENTICATED", "");
  httplib::Result read = Http().Get("/v1/ListDictionaries", {{"Authorization", "Bearer tok-read"}});
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 200);
  const std::string explanation = R"({"dictionaryId":"demo","feature":1,"text":"a word"})";
  ExpectError(Post("SetExplanation", explanation, {{"Authorization", "Bearer tok-read"}}), 403,
              "PERMISSION_DENIED", "");
  httplib::Result write =
      Post("SetExplanation", explanation, {{"Authorization", "Bearer tok-write"}});
  ASSERT_TRUE(write);
  EXPECT_EQ(write->status, 200) << write->body;
  ExpectError(Post("DeleteDictionary", R"({"id":"demo"})", {{"Authorization", "Bearer tok-write"}}),
              403, "PERMISSION_DENIED", "");
  ExpectError(Http().Get("/api/feature/saedict-demo/demo/1"), 401, "UNAUTHENTICATED", "");
  httplib::Result np =
      Http().Get("/api/feature/saedict-demo/demo/1", {{"Authorization", "Bearer tok-read"}});
  ASSERT_TRUE(np);
  EXPECT_EQ(np->status, 200) << np->body;
  // Health and the dashboard's files carry no token (probes, the page itself).
  EXPECT_EQ(Http().Get("/healthz")->status, 200);
  EXPECT_EQ(Http().Get("/")->status, 200);
}

TEST(HttpGatewayStartTest, RefusesAPublicHttpAddressWithoutAuth) {
  ScratchDir scratch;
  server::ServerOptions options;
  options.port = 0;
  options.http_port = 0;
  options.http_address = "0.0.0.0";
  options.data_dir = scratch.path() / "var";
  options.dictionary_root = scratch.path();
  absl::StatusOr<std::unique_ptr<server::SaedictServer>> server =
      server::SaedictServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(server.status().message(), HasSubstr("refusing to serve HTTP on 0.0.0.0"));
}

}  // namespace
}  // namespace saedict::testing
