// The Neuronpedia-compatible routes against a real saedictd: each field
// equals what the saedict.v1 calls answer for the same feature, dictionaries
// are found by model name and alias (or id), explanation search pages, and
// search-all ranks features of sent activation rows like Encode does.
#include <string>
#include <vector>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "tests/gateway/http_test_fixture.h"

namespace saedict::testing {
namespace {

using ::testing::HasSubstr;
namespace pb = google::protobuf;

pb::Struct ParseObject(const std::string& json) {
  pb::Struct out;
  EXPECT_TRUE(pb::util::JsonStringToMessage(json, &out).ok()) << json;
  return out;
}
const pb::Value& At(const pb::Struct& o, const std::string& key) {
  static const pb::Value kMissing;
  auto it = o.fields().find(key);
  EXPECT_NE(it, o.fields().end()) << "missing field " << key;
  return it == o.fields().end() ? kMissing : it->second;
}

class NeuronpediaHttpTest : public HttpGatewayTest {
 protected:
  httplib::Result PostJson(const std::string& path, const std::string& json) {
    return Http().Post(path.c_str(), json, "application/json");
  }
};

TEST_F(NeuronpediaHttpTest, FeatureFieldsEqualTheSaedictAnswer) {
  WaitForDemoIndex();
  v1::SetExplanationRequest set;
  set.set_dictionary_id("demo");
  set.set_feature(5);
  set.set_text("the word kakaka");
  set.set_source("oai_token-act-pair");
  set.set_explainer_model("gpt-4o-mini");
  set.set_score(0.75);
  v1::SetExplanationResponse stored;
  ASSERT_TRUE(stub_->SetExplanation(Ctx().get(), set, &stored).ok());

  httplib::Result r = Http().Get("/api/feature/saedict-demo/demo/5");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const pb::Struct f = ParseObject(r->body);
  v1::GetFeatureRequest get;
  get.set_dictionary_id("demo");
  get.set_feature(5);
  get.set_neighbours(25);
  get.set_skip_family(true);
  v1::GetFeatureResponse want;
  ASSERT_TRUE(stub_->GetFeature(Ctx().get(), get, &want).ok());
  EXPECT_EQ(At(f, "modelId").string_value(), "saedict-demo");
  EXPECT_EQ(At(f, "layer").string_value(), "demo");
  EXPECT_EQ(At(f, "index").string_value(), "5");
  EXPECT_EQ(At(f, "hookName").string_value(), "blocks.0.hook_resid_pre");
  EXPECT_FLOAT_EQ(At(f, "maxActApprox").number_value(), want.stats().max());
  EXPECT_DOUBLE_EQ(At(f, "frac_nonzero").number_value(), want.stats().density());
  const auto& heights = At(f, "freq_hist_data_bar_heights").list_value();
  const auto& values = At(f, "freq_hist_data_bar_values").list_value();
  ASSERT_EQ(heights.values_size(), want.stats().histogram_size());
  ASSERT_EQ(values.values_size(), want.stats().histogram_size());
  for (int i = 0; i < heights.values_size(); ++i) {
    const v1::HistogramBin& bin = want.stats().histogram(i);
    EXPECT_EQ(heights.values(i).number_value(), static_cast<double>(bin.count()));
    EXPECT_GE(values.values(i).number_value(), bin.lower());
    EXPECT_LE(values.values(i).number_value(), bin.upper());
  }
  const auto& cos_indices = At(f, "topkCosSimIndices").list_value();
  const auto& cos_values = At(f, "topkCosSimValues").list_value();
  ASSERT_EQ(cos_indices.values_size(), want.neighbours_size() + 1);
  EXPECT_EQ(cos_indices.values(0).number_value(), 5);
  EXPECT_EQ(cos_values.values(0).number_value(), 1);
  for (int i = 0; i < want.neighbours_size(); ++i) {
    EXPECT_EQ(cos_indices.values(i + 1).number_value(), want.neighbours(i).feature());
    EXPECT_DOUBLE_EQ(cos_values.values(i + 1).number_value(), want.neighbours(i).cosine());
  }
  const auto& explanations = At(f, "explanations").list_value();
  ASSERT_EQ(explanations.values_size(), 1);
  const pb::Struct& e = explanations.values(0).struct_value();
  EXPECT_EQ(At(e, "description").string_value(), "the word kakaka");
  EXPECT_EQ(At(e, "typeName").string_value(), "oai_token-act-pair");
  EXPECT_EQ(At(e, "explanationModelName").string_value(), "gpt-4o-mini");
  EXPECT_EQ(At(e, "scoreV1").number_value(), 0.75);
  const auto& acts = At(f, "activations").list_value();
  ASSERT_GE(acts.values_size(), want.top_examples_size());
  double previous = 1e30;
  for (const pb::Value& a : acts.values()) {
    const pb::Struct& act = a.struct_value();
    const double max_value = At(act, "maxValue").number_value();
    EXPECT_LE(max_value, previous);  // maxValue descending
    previous = max_value;
    const auto& tokens = At(act, "tokens").list_value();
    const auto& vals = At(act, "values").list_value();
    ASSERT_EQ(tokens.values_size(), vals.values_size());
    const int peak = static_cast<int>(At(act, "maxValueTokenIndex").number_value());
    ASSERT_LT(peak, vals.values_size());
    EXPECT_FLOAT_EQ(vals.values(peak).number_value(), max_value);
    EXPECT_LE(At(act, "binMin").number_value(), max_value + 1e-6);
  }
  // The best one is GetFeature's top example.
  const pb::Struct& best = acts.values(0).struct_value();
  EXPECT_FLOAT_EQ(At(best, "maxValue").number_value(), want.top_examples(0).value());
  EXPECT_EQ(At(best, "dataIndex").string_value(), std::to_string(want.top_examples(0).doc_id()));
}

TEST_F(NeuronpediaHttpTest, ModelAndLayerResolveByAliasOrIdWithClearErrors) {
  const WrittenSae a = WriteSae("a", engine::Architecture::kTopK);
  v1::LoadDictionaryRequest load;
  load.set_id("a");
  load.set_path(a.path);
  load.set_alias("6-res-jb");
  v1::LoadDictionaryResponse loaded;
  ASSERT_TRUE(stub_->LoadDictionary(Ctx().get(), load, &loaded).ok());
  const std::string model = loaded.dictionary().model_name();
  ASSERT_FALSE(model.empty());
  for (const std::string& layer : {std::string("6-res-jb"), std::string("a")}) {
    httplib::Result r = Http().Get(("/api/feature/" + model + "/" + layer + "/3").c_str());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(At(ParseObject(r->body), "layer").string_value(), "6-res-jb");
  }
  httplib::Result r = Http().Get("/api/feature/gpt-9/6-res-jb/3");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_THAT(r->body, HasSubstr("no dictionary of model 'gpt-9'"));
  r = Http().Get(("/api/feature/" + model + "/7-res/3").c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_THAT(r->body, HasSubstr("its layers are: 6-res-jb"));
  r = Http().Get(("/api/feature/" + model + "/a/three").c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("index: 'three'"));
  r = Http().Get(("/api/feature/" + model + "/a/64").c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("d_sae 64"));
}

TEST_F(NeuronpediaHttpTest, ExplanationSearchPagesByTwenty) {
  for (int i = 0; i < 25; ++i) {
    v1::SetExplanationRequest set;
    set.set_dictionary_id("demo");
    set.set_feature(i);
    set.set_text(absl::StrCat("animals and plants ", i));
    v1::SetExplanationResponse stored;
    ASSERT_TRUE(stub_->SetExplanation(Ctx().get(), set, &stored).ok());
  }
  httplib::Result r = PostJson("/api/explanation/search",
                               R"({"modelId":"saedict-demo","layers":["demo"],"query":"animals"})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  pb::Struct page = ParseObject(r->body);
  EXPECT_EQ(At(page, "results").list_value().values_size(), 20);
  EXPECT_EQ(At(page, "resultsCount").number_value(), 25);
  EXPECT_TRUE(At(page, "hasMore").bool_value());
  EXPECT_EQ(At(page, "nextOffset").number_value(), 20);
  const pb::Struct& first = At(page, "results").list_value().values(0).struct_value();
  EXPECT_EQ(At(first, "layer").string_value(), "demo");
  EXPECT_THAT(At(first, "description").string_value(), HasSubstr("animals"));
  r = PostJson("/api/explanation/search",
               R"({"modelId":"saedict-demo","query":"animals","offset":20})");
  ASSERT_TRUE(r);
  page = ParseObject(r->body);
  EXPECT_EQ(At(page, "results").list_value().values_size(), 5);
  EXPECT_FALSE(At(page, "hasMore").bool_value());
  EXPECT_EQ(At(page, "nextOffset").number_value(), 25);
  r = PostJson("/api/explanation/search", R"({"modelId":"saedict-demo"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("query: missing"));
  r = PostJson("/api/explanation/search", R"({"modelId":"saedict-demo","query":"x","offset":-1})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("offset"));
  r = PostJson("/api/explanation/search", "[1,2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("not a JSON object"));
}

TEST_F(NeuronpediaHttpTest, SearchAllRanksTheFeaturesEncodeFinds) {
  std::vector<float> x(3 * 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 13) % 7) / 3.0f - 1.0f;
  std::string rows = "[";
  for (int r = 0; r < 3; ++r) {
    absl::StrAppend(&rows, r ? "," : "", "[");
    for (int c = 0; c < 64; ++c) absl::StrAppend(&rows, c ? "," : "", x[r * 64 + c]);
    absl::StrAppend(&rows, "]");
  }
  absl::StrAppend(&rows, "]");
  httplib::Result r =
      PostJson("/api/search-all",
               absl::StrCat(R"({"modelId":"saedict-demo","numResults":5,"tokens":["a","b","c"],)",
                            R"("activations":)", rows, "}"));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const pb::Struct out = ParseObject(r->body);
  const auto& result = At(out, "result").list_value();
  ASSERT_EQ(result.values_size(), 5);
  // The best feature is the largest value Encode gives on these rows
  // (rows parsed from the printed decimals, as the gateway did).
  v1::EncodeRequest encode;
  encode.set_dictionary_id("demo");
  std::vector<float> parsed;
  for (float v : x) parsed.push_back(std::stof(absl::StrCat(v)));
  *encode.mutable_activations() = F32Tensor(parsed, {3, 64});
  v1::EncodeResponse codes;
  ASSERT_TRUE(stub_->Encode(Ctx().get(), encode, &codes).ok());
  const engine::SparseCodes sparse = CodesOf(codes.codes());
  float best = 0;
  for (float v : sparse.values) best = std::max(best, v);
  const pb::Struct& top = result.values(0).struct_value();
  EXPECT_FLOAT_EQ(At(top, "maxValue").number_value(), best);
  EXPECT_EQ(At(top, "values").list_value().values_size(), 3);
  EXPECT_EQ(At(top, "layer").string_value(), "demo");

  r = PostJson("/api/search-all", R"({"modelId":"saedict-demo","text":"hello"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("no language model"));
  r = PostJson("/api/search-all", R"({"modelId":"saedict-demo","activations":[[1,2],[3]]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("activations[1]"));
  r = PostJson("/api/search-all", R"({"modelId":"saedict-demo","activations":[[1,2]]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("no dictionary of model 'saedict-demo' has that d_in"));
}

}  // namespace
}  // namespace saedict::testing
