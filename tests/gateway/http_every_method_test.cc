// Every saedict.v1 method over HTTP answers the same as over gRPC for the
// same (empty) request: the same code — as the mapped HTTP status and the
// JSON body's "code" — and the same message. Empty requests exercise each
// method's first error path (or its success when empty is valid).
#include <functional>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "gateway/http_gateway.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "tests/gateway/http_test_fixture.h"

namespace saedict::testing {
namespace {

using S = v1::Saedict::Stub;
using GrpcCall = std::function<grpc::Status(S&, grpc::ClientContext&)>;

template <typename Req, typename Resp>
GrpcCall Unary(grpc::Status (S::*method)(grpc::ClientContext*, const Req&, Resp*)) {
  return [method](S& stub, grpc::ClientContext& ctx) {
    Resp response;
    return (stub.*method)(&ctx, Req(), &response);
  };
}
template <typename Req, typename Resp>
GrpcCall ServerStream(std::unique_ptr<grpc::ClientReader<Resp>> (S::*method)(grpc::ClientContext*,
                                                                             const Req&)) {
  return [method](S& stub, grpc::ClientContext& ctx) {
    auto reader = (stub.*method)(&ctx, Req());
    Resp m;
    while (reader->Read(&m)) {
    }
    return reader->Finish();
  };
}
template <typename Req, typename Resp>
GrpcCall ClientStream(std::unique_ptr<grpc::ClientWriter<Req>> (S::*method)(grpc::ClientContext*,
                                                                            Resp*)) {
  return [method](S& stub, grpc::ClientContext& ctx) {
    Resp response;
    auto writer = (stub.*method)(&ctx, &response);
    writer->Write(Req());
    writer->WritesDone();
    return writer->Finish();
  };
}
template <typename Req, typename Resp>
GrpcCall Bidi(
    std::unique_ptr<grpc::ClientReaderWriter<Req, Resp>> (S::*method)(grpc::ClientContext*)) {
  return [method](S& stub, grpc::ClientContext& ctx) {
    auto stream = (stub.*method)(&ctx);
    stream->Write(Req());
    stream->WritesDone();
    Resp m;
    while (stream->Read(&m)) {
    }
    return stream->Finish();
  };
}

const std::map<std::string, GrpcCall>& Calls() {
  static const auto* const kCalls = new std::map<std::string, GrpcCall>{
      {"LoadDictionary", Unary(&S::LoadDictionary)},
      {"ListDictionaries", Unary(&S::ListDictionaries)},
      {"GetDictionary", Unary(&S::GetDictionary)},
      {"DeleteDictionary", Unary(&S::DeleteDictionary)},
      {"Encode", Unary(&S::Encode)},
      {"Decode", Unary(&S::Decode)},
      {"Intervene", Unary(&S::Intervene)},
      {"GetDocument", Unary(&S::GetDocument)},
      {"GetActivations", Unary(&S::GetActivations)},
      {"GetFeature", Unary(&S::GetFeature)},
      {"TopActivations", Unary(&S::TopActivations)},
      {"DocumentFeatures", Unary(&S::DocumentFeatures)},
      {"SearchSimilar", Unary(&S::SearchSimilar)},
      {"FeatureFamily", Unary(&S::FeatureFamily)},
      {"ListFamilies", Unary(&S::ListFamilies)},
      {"CreateCheckpoint", Unary(&S::CreateCheckpoint)},
      {"SetExplanation", Unary(&S::SetExplanation)},
      {"DeleteExplanation", Unary(&S::DeleteExplanation)},
      {"ListExplanations", Unary(&S::ListExplanations)},
      {"SearchExplanations", Unary(&S::SearchExplanations)},
      {"CompareDictionaries", ServerStream(&S::CompareDictionaries)},
      {"ExportLatents", ServerStream(&S::ExportLatents)},
      {"Evaluate", ClientStream(&S::Evaluate)},
      {"ImportExplanations", ClientStream(&S::ImportExplanations)},
      {"UploadDictionary", ClientStream(&S::UploadDictionary)},
      {"EncodeStream", Bidi(&S::EncodeStream)},
      {"Ingest", Bidi(&S::Ingest)},
  };
  return *kCalls;
}

class HttpEveryMethodTest : public HttpGatewayTest {};

TEST_F(HttpEveryMethodTest, SameCodeAndMessageAsGrpcForTheSameRequest) {
  const google::protobuf::ServiceDescriptor* service =
      v1::EncodeRequest::descriptor()->file()->FindServiceByName("Saedict");
  ASSERT_EQ(static_cast<int>(Calls().size()), service->method_count());
  int errors = 0;
  for (const auto& [method, call] : Calls()) {
    SCOPED_TRACE(method);
    ASSERT_NE(service->FindMethodByName(method), nullptr);
    const grpc::Status grpc_status = call(*stub_, *Ctx());
    httplib::Result r = Post(method, "{}\n");
    ASSERT_TRUE(r);
    const auto code = static_cast<absl::StatusCode>(grpc_status.error_code());
    EXPECT_EQ(r->status, gateway::HttpStatusFor(code)) << r->body;
    if (grpc_status.ok()) continue;
    ++errors;
    google::protobuf::Struct body;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r->body, &body).ok()) << r->body;
    EXPECT_EQ(body.fields().at("code").string_value(), absl::StatusCodeToString(code));
    const std::string message = body.fields().at("message").string_value();
    // Ingest's HTTP message adds what stayed stored.
    EXPECT_EQ(message.substr(0, grpc_status.error_message().size()), grpc_status.error_message());
  }
  EXPECT_GE(errors, 20) << "empty requests should mostly be refused";
}

}  // namespace
}  // namespace saedict::testing
