// The JSON API against a real saedictd (in-process SaedictServer, HTTP on a
// free loopback port): the method table covers the gRPC service, and each
// method's JSON answer equals the gRPC answer for the same request — unary
// calls by POST and by GET, server streams as NDJSON, client and bidi
// streams from NDJSON bodies.
#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gateway/json_api.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "tests/gateway/http_test_fixture.h"
#include "tests/server/corpus_test_util.h"

namespace saedict::testing {
namespace {

using ::testing::HasSubstr;

class HttpJsonApiTest : public HttpGatewayTest {};

TEST_F(HttpJsonApiTest, ListsEveryMethodOfTheServiceWithItsShape) {
  const google::protobuf::ServiceDescriptor* service =
      v1::EncodeRequest::descriptor()->file()->FindServiceByName("Saedict");
  httplib::Result r = Http().Get("/v1");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  google::protobuf::Struct listed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r->body, &listed).ok());
  std::map<std::string, std::string> shapes;
  for (const auto& m : listed.fields().at("methods").list_value().values()) {
    shapes[m.struct_value().fields().at("name").string_value()] =
        m.struct_value().fields().at("shape").string_value();
  }
  EXPECT_EQ(static_cast<int>(shapes.size()), service->method_count());
  for (int i = 0; i < service->method_count(); ++i) {
    const google::protobuf::MethodDescriptor* m = service->method(i);
    const std::string shape = m->client_streaming() && m->server_streaming() ? "bidi_stream"
                              : m->client_streaming()                        ? "client_stream"
                              : m->server_streaming()                        ? "server_stream"
                                                                             : "unary";
    EXPECT_EQ(shapes[m->name()], shape) << m->name();
  }
}

TEST_F(HttpJsonApiTest, UnaryAnswersEqualGrpcByPostAndByGet) {
  WaitForDemoIndex();
  v1::ListDictionariesResponse grpc_list, http_list;
  ASSERT_TRUE(stub_->ListDictionaries(Ctx().get(), {}, &grpc_list).ok());
  ASSERT_TRUE(PostProto("ListDictionaries", v1::ListDictionariesRequest(), &http_list));
  EXPECT_TRUE(Same(grpc_list, http_list)) << http_list.DebugString();

  v1::GetFeatureRequest feature;
  feature.set_dictionary_id("demo");
  feature.set_feature(7);
  feature.set_top_n(5);
  feature.set_context_window(3);
  v1::GetFeatureResponse grpc_feature, http_feature, get_feature;
  ASSERT_TRUE(stub_->GetFeature(Ctx().get(), feature, &grpc_feature).ok());
  ASSERT_TRUE(PostProto("GetFeature", feature, &http_feature));
  EXPECT_TRUE(Same(grpc_feature, http_feature));
  EXPECT_GT(http_feature.top_examples_size(), 0);
  httplib::Result r =
      Http().Get("/v1/GetFeature?dictionary_id=demo&feature=7&topN=5&context_window=3");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_TRUE(gateway::FromJson(r->body, &get_feature).ok());
  EXPECT_TRUE(Same(grpc_feature, get_feature));

  v1::TopActivationsRequest top;
  top.set_dictionary_id("demo");
  top.set_feature(7);
  top.set_quantile_bins(3);
  v1::TopActivationsResponse grpc_top, http_top;
  ASSERT_TRUE(stub_->TopActivations(Ctx().get(), top, &grpc_top).ok());
  ASSERT_TRUE(PostProto("TopActivations", top, &http_top));
  EXPECT_TRUE(Same(grpc_top, http_top));

  v1::DocumentFeaturesRequest doc;
  doc.set_dictionary_id("demo");
  doc.set_corpus("demo");
  doc.set_doc_id(3);
  doc.set_position(5);
  v1::DocumentFeaturesResponse grpc_doc, http_doc;
  ASSERT_TRUE(stub_->DocumentFeatures(Ctx().get(), doc, &grpc_doc).ok());
  ASSERT_TRUE(PostProto("DocumentFeatures", doc, &http_doc));
  EXPECT_TRUE(Same(grpc_doc, http_doc));
  EXPECT_GT(http_doc.features_size(), 0);

  v1::SearchSimilarRequest similar;
  similar.set_dictionary_id("demo");
  similar.set_feature(7);
  v1::SearchSimilarResponse grpc_similar, http_similar;
  ASSERT_TRUE(stub_->SearchSimilar(Ctx().get(), similar, &grpc_similar).ok());
  ASSERT_TRUE(PostProto("SearchSimilar", similar, &http_similar));
  EXPECT_TRUE(Same(grpc_similar, http_similar));

  v1::GetDocumentRequest get_doc;
  get_doc.set_corpus("demo");
  get_doc.set_doc_id(3);
  v1::GetDocumentResponse grpc_document, http_document;
  ASSERT_TRUE(stub_->GetDocument(Ctx().get(), get_doc, &grpc_document).ok());
  ASSERT_TRUE(PostProto("GetDocument", get_doc, &http_document));
  EXPECT_TRUE(Same(grpc_document, http_document));

  // Encode: tensor bytes travel as base64 and come back as the same codes.
  std::vector<float> x(2 * 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 11) / 5.0f - 1.0f;
  v1::EncodeRequest encode;
  encode.set_dictionary_id("demo");
  *encode.mutable_activations() = F32Tensor(x, {2, 64});
  v1::EncodeResponse grpc_codes, http_codes;
  ASSERT_TRUE(stub_->Encode(Ctx().get(), encode, &grpc_codes).ok());
  ASSERT_TRUE(PostProto("Encode", encode, &http_codes));
  EXPECT_TRUE(Same(grpc_codes, http_codes));
}

TEST_F(HttpJsonApiTest, WritesThroughHttpAreSeenOverGrpc) {
  v1::SetExplanationRequest set;
  set.set_dictionary_id("demo");
  set.set_feature(11);
  set.set_text("planted words about kakaka");
  set.set_score(0.5);
  v1::SetExplanationResponse stored;
  ASSERT_TRUE(PostProto("SetExplanation", set, &stored));
  v1::ListExplanationsRequest list;
  list.set_dictionary_id("demo");
  list.set_feature(11);
  v1::ListExplanationsResponse grpc_list;
  ASSERT_TRUE(stub_->ListExplanations(Ctx().get(), list, &grpc_list).ok());
  ASSERT_EQ(grpc_list.explanations_size(), 1);
  EXPECT_TRUE(Same(grpc_list.explanations(0), stored.explanation()));

  v1::SearchExplanationsRequest search;
  search.set_query("kakaka");
  v1::SearchExplanationsResponse grpc_hits, http_hits;
  ASSERT_TRUE(stub_->SearchExplanations(Ctx().get(), search, &grpc_hits).ok());
  ASSERT_TRUE(PostProto("SearchExplanations", search, &http_hits));
  EXPECT_TRUE(Same(grpc_hits, http_hits));
  EXPECT_EQ(http_hits.hits_size(), 1);
}

TEST_F(HttpJsonApiTest, ServerStreamIsNdjsonOfTheGrpcMessages) {
  const WrittenSae a = WriteSae("a", engine::Architecture::kTopK, v1::SOURCE_FORMAT_SAELENS, 1);
  const WrittenSae b = WriteSae("b", engine::Architecture::kTopK, v1::SOURCE_FORMAT_SAELENS, 2);
  ASSERT_TRUE(Load("a", a.path).ok());
  ASSERT_TRUE(Load("b", b.path).ok());
  v1::CompareDictionariesRequest compare;
  compare.set_dictionary_a("a");
  compare.set_dictionary_b("b");
  compare.set_matches_per_message(16);
  compare.set_method(v1::COMPARE_METHOD_DECODER);
  std::vector<v1::CompareDictionariesResponse> grpc_messages;
  {
    auto ctx = Ctx();
    auto reader = stub_->CompareDictionaries(ctx.get(), compare);
    v1::CompareDictionariesResponse m;
    while (reader->Read(&m)) {
      if (m.has_summary() || m.has_matches()) grpc_messages.push_back(m);
    }
    const grpc::Status finished = reader->Finish();
    ASSERT_TRUE(finished.ok()) << finished.error_message();
  }
  httplib::Result r = Post("CompareDictionaries", gateway::ToJson(compare));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/x-ndjson");
  std::vector<v1::CompareDictionariesResponse> http_messages;
  ASSERT_TRUE(gateway::ForEachNdjsonLine(r->body, [&](absl::string_view line, int64_t) {
                v1::CompareDictionariesResponse m;
                absl::Status s = gateway::FromJson(line, &m, "line");
                if (s.ok() && (m.has_summary() || m.has_matches())) http_messages.push_back(m);
                return s;
              }).ok());
  ASSERT_EQ(http_messages.size(), grpc_messages.size());
  for (size_t i = 0; i < http_messages.size(); ++i) {
    for (auto* m : {&http_messages[i], &grpc_messages[i]}) {
      if (m->has_summary()) {  // timings differ run to run
        m->mutable_summary()->clear_gemm_seconds();
        m->mutable_summary()->clear_assignment_seconds();
        m->mutable_summary()->clear_seconds();
      }
    }
    EXPECT_TRUE(Same(http_messages[i], grpc_messages[i])) << i;
  }
}

TEST_F(HttpJsonApiTest, ServerStreamsGoOutLiveWhateverTheirSize) {
  // The demo corpus' latent export: several MB of NDJSON, line for line the
  // gRPC stream's messages.
  v1::ExportLatentsRequest request;
  request.set_dictionary_id("demo");
  request.set_corpus("demo");
  std::vector<v1::ExportLatentsResponse> grpc_messages;
  {
    auto ctx = Ctx();
    auto reader = stub_->ExportLatents(ctx.get(), request);
    v1::ExportLatentsResponse m;
    while (reader->Read(&m)) grpc_messages.push_back(m);
    ASSERT_TRUE(reader->Finish().ok());
  }
  httplib::Result r = Post("ExportLatents", gateway::ToJson(request));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body.substr(0, 300);
  EXPECT_GT(r->body.size(), 2u << 20);
  EXPECT_EQ(r->get_header_value("Transfer-Encoding"), "chunked");
  size_t i = 0;
  ASSERT_TRUE(gateway::ForEachNdjsonLine(r->body, [&](absl::string_view line, int64_t) {
                v1::ExportLatentsResponse m;
                absl::Status s = gateway::FromJson(line, &m, "line");
                EXPECT_LT(i, grpc_messages.size());
                if (s.ok() && i < grpc_messages.size()) {
                  EXPECT_TRUE(Same(m, grpc_messages[i]));
                }
                ++i;
                return s;
              }).ok());
  EXPECT_EQ(i, grpc_messages.size());

  // A client that hangs up after the first chunk cancels the export; the
  // server goes on serving and the request leaves the in-flight count.
  int chunks = 0;
  httplib::Client client("127.0.0.1", server_->http_port());
  httplib::Request cut_request;
  cut_request.method = "POST";
  cut_request.path = "/v1/ExportLatents";
  cut_request.body = gateway::ToJson(request);
  cut_request.set_header("Content-Type", "application/json");
  cut_request.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
    return ++chunks < 2;
  };
  httplib::Result cut = client.send(cut_request);
  EXPECT_FALSE(cut);  // the receiver stopped it
  EXPECT_TRUE(Http().Get("/healthz"));
  v1::ListDictionariesResponse list;
  ASSERT_TRUE(PostProto("ListDictionaries", v1::ListDictionariesRequest(), &list));
}

TEST_F(HttpJsonApiTest, StoppingTheServerEndsALiveStreamToASlowReader) {
  v1::ExportLatentsRequest request;
  request.set_dictionary_id("demo");
  request.set_corpus("demo");
  std::atomic<int> chunks{0};
  std::thread reader([&] {
    httplib::Client client("127.0.0.1", server_->http_port());
    client.set_read_timeout(60, 0);
    httplib::Request slow;
    slow.method = "POST";
    slow.path = "/v1/ExportLatents";
    slow.body = gateway::ToJson(request);
    slow.set_header("Content-Type", "application/json");
    slow.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      ++chunks;
      absl::SleepFor(absl::Milliseconds(50));  // a reader far slower than the export
      return true;
    };
    client.send(slow);
  });
  while (chunks.load() == 0) absl::SleepFor(absl::Milliseconds(5));
  const absl::Time start = absl::Now();
  server_->Shutdown(absl::ZeroDuration());
  const absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Seconds(3)) << "the stop waited for the slow reader: " << took;
  reader.join();
}

TEST_F(HttpJsonApiTest, IngestAndEncodeStreamTakeNdjsonBodies) {
  const WrittenSae a = WriteSae("a", engine::Architecture::kTopK);
  ASSERT_TRUE(Load("a", a.path).ok());
  const std::vector<TestDoc> docs = MakeDocs(6, 3, 9, kDIn, 5, 100);
  std::string body;
  for (int i = 0; i < 3; ++i) {
    std::vector<TestDoc> part(docs.begin() + 2 * i, docs.begin() + 2 * i + 2);
    absl::StrAppend(&body, gateway::ToJson(MakeIngestRequest(i == 0 ? "a" : "", "c", part)), "\n");
  }
  httplib::Result r = Post("Ingest", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  int acks = 0;
  ASSERT_TRUE(gateway::ForEachNdjsonLine(r->body, [&](absl::string_view line, int64_t) {
                v1::IngestAck ack;
                absl::Status s = gateway::FromJson(line, &ack, "ack");
                EXPECT_EQ(ack.batch(), acks);
                EXPECT_EQ(ack.documents(), 2);
                ++acks;
                return s;
              }).ok());
  EXPECT_EQ(acks, 3);
  v1::GetDocumentRequest get;
  get.set_corpus("c");
  get.set_doc_id(105);
  v1::GetDocumentResponse stored;
  ASSERT_TRUE(stub_->GetDocument(Ctx().get(), get, &stored).ok());
  EXPECT_EQ(stored.document().token_ids_size(), static_cast<int>(docs[5].tokens.size()));

  // EncodeStream: the dictionary named once, two messages, two answers.
  std::vector<float> x(3 * kDIn, 0.25f);
  v1::EncodeRequest first;
  first.set_dictionary_id("a");
  *first.mutable_activations() = F32Tensor(x, {3, kDIn});
  v1::EncodeRequest second;
  *second.mutable_activations() = F32Tensor(x, {3, kDIn});
  r = Post("EncodeStream", gateway::ToJson(first) + "\n" + gateway::ToJson(second) + "\n");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  v1::EncodeResponse grpc_codes;
  ASSERT_TRUE(stub_->Encode(Ctx().get(), first, &grpc_codes).ok());
  int answers = 0;
  ASSERT_TRUE(gateway::ForEachNdjsonLine(r->body, [&](absl::string_view line, int64_t) {
                v1::EncodeResponse m;
                absl::Status s = gateway::FromJson(line, &m, "answer");
                EXPECT_TRUE(Same(m, grpc_codes));
                ++answers;
                return s;
              }).ok());
  EXPECT_EQ(answers, 2);
}

TEST_F(HttpJsonApiTest, IngestErrorSaysWhatWasStored) {
  const WrittenSae a = WriteSae("a", engine::Architecture::kTopK);
  ASSERT_TRUE(Load("a", a.path).ok());
  const std::vector<TestDoc> docs = MakeDocs(2, 3, 5, kDIn, 9);
  const std::string body =
      gateway::ToJson(MakeIngestRequest("a", "c", {docs[0]})) + "\n{\"documents\": 3}\n";
  httplib::Result r = Post("Ingest", body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("request body line 2"));
  EXPECT_THAT(r->body, HasSubstr("1 earlier request line(s) were stored"));
  v1::GetDocumentRequest get;
  get.set_corpus("c");
  get.set_doc_id(docs[0].id);
  v1::GetDocumentResponse stored;
  EXPECT_TRUE(stub_->GetDocument(Ctx().get(), get, &stored).ok());
}

TEST_F(HttpJsonApiTest, AliasIsSetAtLoadKeptOnRestartAndUniquePerModel) {
  const WrittenSae a = WriteSae("a", engine::Architecture::kTopK);
  v1::LoadDictionaryRequest load;
  load.set_id("a");
  load.set_path(a.path);
  load.set_alias("3-res-test");
  v1::LoadDictionaryResponse loaded;
  ASSERT_TRUE(PostProto("LoadDictionary", load, &loaded));
  EXPECT_EQ(loaded.dictionary().alias(), "3-res-test");
  load.set_id("a2");
  httplib::Result r = Post("LoadDictionary", gateway::ToJson(load));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 409) << r->body;
  EXPECT_THAT(r->body, HasSubstr("already the alias of dictionary 'a'"));
  load.set_alias("bad alias!");
  r = Post("LoadDictionary", gateway::ToJson(load));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("alias"));
  RestartServer();
  v1::GetDictionaryRequest get;
  get.set_id("a");
  v1::GetDictionaryResponse info;
  ASSERT_TRUE(stub_->GetDictionary(Ctx().get(), get, &info).ok());
  EXPECT_EQ(info.dictionary().alias(), "3-res-test");
}

}  // namespace
}  // namespace saedict::testing
