// Auth end to end on a real SaedictServer with a token file: every method of
// saedict.v1.Saedict, called with no token, an unknown token and a token of
// each role, answers UNAUTHENTICATED / PERMISSION_DENIED exactly as the role
// table says, and goes through to the core otherwise. The standard health
// service stays open (probes carry no token).
#include <fstream>
#include <functional>
#include <map>

#include "absl/strings/match.h"
#include "service/access_policy.h"
#include "tests/server/grpc_test_fixture.h"
#include "tests/server/protos/health.grpc.pb.h"
#include "tests/test_util/loopback_http.h"

namespace saedict::testing {
namespace {

using service::Role;
using ::testing::HasSubstr;

// One call of each method with an empty (or nearly empty) request.
using MethodCall = std::function<grpc::Status(v1::Saedict::Stub&, grpc::ClientContext&)>;

template <typename Req, typename Resp>
MethodCall UnaryCall(grpc::Status (v1::Saedict::Stub::*method)(grpc::ClientContext*, const Req&,
                                                               Resp*),
                     Req request = {}) {
  return [method, request](v1::Saedict::Stub& stub, grpc::ClientContext& ctx) {
    Resp response;
    return (stub.*method)(&ctx, request, &response);
  };
}

const std::map<std::string, MethodCall>& AllMethodCalls() {
  using S = v1::Saedict::Stub;
  static const auto* const kCalls = new std::map<std::string, MethodCall>{
      {"LoadDictionary", UnaryCall(&S::LoadDictionary,
                                   [] {
                                     v1::LoadDictionaryRequest r;
                                     r.set_id("x");
                                     r.set_path("no/such/folder");
                                     return r;
                                   }())},
      {"ListDictionaries", UnaryCall(&S::ListDictionaries)},
      {"GetDictionary", UnaryCall(&S::GetDictionary)},
      {"DeleteDictionary", UnaryCall(&S::DeleteDictionary)},
      {"Encode", UnaryCall(&S::Encode)},
      {"Decode", UnaryCall(&S::Decode)},
      {"Intervene", UnaryCall(&S::Intervene)},
      {"GetDocument", UnaryCall(&S::GetDocument)},
      {"GetActivations", UnaryCall(&S::GetActivations)},
      {"GetFeature", UnaryCall(&S::GetFeature)},
      {"TopActivations", UnaryCall(&S::TopActivations)},
      {"DocumentFeatures", UnaryCall(&S::DocumentFeatures)},
      {"SearchSimilar", UnaryCall(&S::SearchSimilar)},
      {"FeatureFamily", UnaryCall(&S::FeatureFamily)},
      {"ListFamilies", UnaryCall(&S::ListFamilies)},
      {"CreateCheckpoint", UnaryCall(&S::CreateCheckpoint)},
      {"SetExplanation", UnaryCall(&S::SetExplanation)},
      {"DeleteExplanation", UnaryCall(&S::DeleteExplanation)},
      {"ListExplanations", UnaryCall(&S::ListExplanations)},
      {"SearchExplanations", UnaryCall(&S::SearchExplanations)},
      {"ExportLatents",
       [](S& stub, grpc::ClientContext& ctx) {
         auto reader = stub.ExportLatents(&ctx, v1::ExportLatentsRequest());
         v1::ExportLatentsResponse r;
         while (reader->Read(&r)) {
         }
         return reader->Finish();
       }},
      {"ImportExplanations",
       [](S& stub, grpc::ClientContext& ctx) {
         v1::ImportExplanationsResponse response;
         auto writer = stub.ImportExplanations(&ctx, &response);
         writer->Write(v1::ImportExplanationsRequest());
         writer->WritesDone();
         return writer->Finish();
       }},
      {"UploadDictionary",
       [](S& stub, grpc::ClientContext& ctx) {
         v1::UploadDictionaryResponse response;
         auto writer = stub.UploadDictionary(&ctx, &response);
         writer->Write(v1::UploadDictionaryRequest());
         writer->WritesDone();
         return writer->Finish();
       }},
      {"EncodeStream",
       [](S& stub, grpc::ClientContext& ctx) {
         auto stream = stub.EncodeStream(&ctx);
         stream->Write(v1::EncodeRequest());
         stream->WritesDone();
         v1::EncodeResponse r;
         while (stream->Read(&r)) {
         }
         return stream->Finish();
       }},
      {"Ingest",
       [](S& stub, grpc::ClientContext& ctx) {
         auto stream = stub.Ingest(&ctx);
         stream->Write(v1::IngestRequest());
         stream->WritesDone();
         v1::IngestAck a;
         while (stream->Read(&a)) {
         }
         return stream->Finish();
       }},
      {"CompareDictionaries",
       [](S& stub, grpc::ClientContext& ctx) {
         auto reader = stub.CompareDictionaries(&ctx, v1::CompareDictionariesRequest());
         v1::CompareDictionariesResponse r;
         while (reader->Read(&r)) {
         }
         return reader->Finish();
       }},
      {"Evaluate",
       [](S& stub, grpc::ClientContext& ctx) {
         v1::EvaluateResponse response;
         auto writer = stub.Evaluate(&ctx, &response);
         writer->Write(v1::EvaluateRequest());
         writer->WritesDone();
         return writer->Finish();
       }},
  };
  return *kCalls;
}

class GrpcAuthTest : public GrpcServerTest {
 protected:
  void Customize(server::ServerOptions* options) override {
    tokens_file_ = scratch_.path() / "tokens";
    std::ofstream out(tokens_file_);
    out << "read " << service::TokenSha256("tok-read") << " dashboard\n"
        << "write " << service::TokenSha256("tok-write") << " notebook\n"
        << "admin " << service::TokenSha256("tok-admin") << " operator\n";
    out.close();
    options->auth_tokens_file = tokens_file_;
    options->metrics_port = 0;
  }

  grpc::Status Call(const std::string& method, const std::string& authorization) {
    auto ctx = Ctx();
    if (!authorization.empty()) ctx->AddMetadata("authorization", authorization);
    return AllMethodCalls().at(method)(*stub_, *ctx);
  }

  std::filesystem::path tokens_file_;
};

TEST_F(GrpcAuthTest, TheCallTableCoversEveryMethod) {
  ASSERT_EQ(AllMethodCalls().size(), service::MethodRoles().size());
  for (const auto& [name, role] : service::MethodRoles()) {
    EXPECT_TRUE(AllMethodCalls().count(name)) << name;
  }
}

TEST_F(GrpcAuthTest, EveryMethodEnforcesItsRole) {
  const std::vector<std::pair<std::string, Role>> tokens = {{"Bearer tok-read", Role::kRead},
                                                            {"Bearer tok-write", Role::kWrite},
                                                            {"Bearer tok-admin", Role::kAdmin}};
  for (const auto& [method, needed] : service::MethodRoles()) {
    SCOPED_TRACE(method);
    EXPECT_THAT(Call(method, ""), GrpcStatusIs(grpc::StatusCode::UNAUTHENTICATED,
                                               HasSubstr("requires a bearer token")));
    EXPECT_THAT(Call(method, "Bearer tok-unknown"),
                GrpcStatusIs(grpc::StatusCode::UNAUTHENTICATED, HasSubstr("not one this server")));
    for (const auto& [token, role] : tokens) {
      SCOPED_TRACE(token);
      const grpc::Status status = Call(method, token);
      if (role < needed) {
        EXPECT_THAT(status, GrpcStatusIs(grpc::StatusCode::PERMISSION_DENIED,
                                         HasSubstr(method + " needs the")));
      } else {
        // Through to the core, which judges the (empty) request on its merits.
        EXPECT_NE(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
        EXPECT_NE(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << status.error_message();
      }
    }
  }
}

TEST_F(GrpcAuthTest, AnAllowedCallReallyRuns) {
  WriteSae("sae", engine::Architecture::kTopK);
  auto ctx = Ctx();
  ctx->AddMetadata("authorization", "Bearer tok-write");
  v1::LoadDictionaryRequest load;
  load.set_id("a");
  load.set_path("sae");
  v1::LoadDictionaryResponse loaded;
  ASSERT_THAT(stub_->LoadDictionary(ctx.get(), load, &loaded), GrpcOk());
  auto list_ctx = Ctx();
  list_ctx->AddMetadata("authorization", "Bearer tok-read");
  v1::ListDictionariesResponse list;
  ASSERT_THAT(stub_->ListDictionaries(list_ctx.get(), {}, &list), GrpcOk());
  ASSERT_EQ(list.dictionaries_size(), 1);
  EXPECT_EQ(list.dictionaries(0).id(), "a");
}

TEST_F(GrpcAuthTest, HealthNeedsNoToken) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  auto ctx = Ctx();
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_THAT(health->Check(ctx.get(), {}, &response), GrpcOk());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(GrpcAuthTest, DenialsAreCountedByReason) {
  Call("Encode", "");
  Call("DeleteDictionary", "Bearer tok-read");
  absl::StatusOr<HttpResponse> scrape = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_THAT(scrape->body, HasSubstr("saedict_auth_denied_total{reason=\"unauthenticated\"} 1"));
  EXPECT_THAT(scrape->body, HasSubstr("saedict_auth_denied_total{reason=\"permission_denied\"} 1"));
  EXPECT_THAT(scrape->body, HasSubstr("code=\"UNAUTHENTICATED\""));
}

TEST_F(GrpcAuthTest, ReloadTakesNewTokensAndKeepsOldOnesOnABadFile) {
  std::ofstream(tokens_file_) << "read " << service::TokenSha256("tok-new") << " fresh\n";
  ASSERT_TRUE(server_->ReloadAuth().ok());
  EXPECT_EQ(Call("ListDictionaries", "Bearer tok-read").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(Call("ListDictionaries", "Bearer tok-new"), GrpcOk());
  std::ofstream(tokens_file_) << "read tok-plain oops\n";
  EXPECT_EQ(server_->ReloadAuth().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Call("ListDictionaries", "Bearer tok-new"), GrpcOk());
}

TEST(ServerStartTest, RefusesANonLoopbackAddressWithoutAuth) {
  ScratchDir scratch;
  server::ServerOptions options;
  options.listen_address = "0.0.0.0";
  options.port = 0;
  options.data_dir = scratch.path() / "data";
  absl::StatusOr<std::unique_ptr<server::SaedictServer>> server =
      server::SaedictServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(server.status().message(), HasSubstr("--auth_tokens_file"));
  EXPECT_THAT(server.status().message(), HasSubstr("--insecure"));
  EXPECT_FALSE(std::filesystem::exists(options.data_dir)) << "refused before touching data";
}

TEST(ServerStartTest, LoopbackAddresses) {
  EXPECT_TRUE(server::IsLoopbackAddress("127.0.0.1"));
  EXPECT_TRUE(server::IsLoopbackAddress("127.1.2.3"));
  EXPECT_TRUE(server::IsLoopbackAddress("::1"));
  EXPECT_TRUE(server::IsLoopbackAddress("[::1]"));
  EXPECT_TRUE(server::IsLoopbackAddress("localhost"));
  EXPECT_FALSE(server::IsLoopbackAddress("0.0.0.0"));
  EXPECT_FALSE(server::IsLoopbackAddress("::"));
  EXPECT_FALSE(server::IsLoopbackAddress("10.0.0.5"));
  EXPECT_FALSE(server::IsLoopbackAddress("1270.0.0.1"));
  EXPECT_FALSE(server::IsLoopbackAddress("127.evil.example"));
}

TEST(ServerStartTest, BadTokenFileOrTlsFlagsFailAtStart) {
  ScratchDir scratch;
  server::ServerOptions options;
  options.port = 0;
  options.data_dir = scratch.path() / "data";
  options.auth_tokens_file = scratch.path() / "missing";
  EXPECT_EQ(server::SaedictServer::Start(options).status().code(), absl::StatusCode::kNotFound);
  options.auth_tokens_file.clear();
  options.tls_cert_file = scratch.path() / "cert.pem";
  absl::Status s = server::SaedictServer::Start(options).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("go together"));
  options.tls_key_file = scratch.path() / "key.pem";
  std::ofstream(options.tls_cert_file) << "not pem";
  std::ofstream(options.tls_key_file) << "not pem";
  s = server::SaedictServer::Start(options).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("--tls_cert_file="));
  EXPECT_THAT(s.message(), HasSubstr("not a PEM file"));
}

}  // namespace
}  // namespace saedict::testing
