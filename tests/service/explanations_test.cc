// Explanations through ServiceCore on a real RocksDB store: set / list /
// replace / delete with their errors, the feature page, BM25 search with
// snippets and filters, Neuronpedia (.jsonl.gz) and delphi imports with
// line-numbered rejections, restart, and what delete / replace of the
// dictionary do to its explanations.
#include "service/explanations.h"

#include <filesystem>
#include <random>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/batcher.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/dictionary_registry.h"
#include "service/service_core.h"
#include "storage/store.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/test_util/gzip_writer.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::service {
namespace {

namespace fs = std::filesystem;
using ::saedict::testing::IsOk;
using ::saedict::testing::ScratchDir;
using ::saedict::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kDIn = 8;
constexpr int64_t kDSae = 32;

std::string Gzip(const std::string& in) { return testing::GzipForTest(in); }

class ExplanationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = scratch_.path() / "root";
    ASSERT_THAT(testing::WriteSaeLensFolder(
                    root_ / "sae", testing::RandomDictionary(engine::Architecture::kTopK, kDIn,
                                                             kDSae, 4, 7)),
                IsOk());
    ASSERT_THAT(testing::WriteSaeLensFolder(
                    root_ / "sae2", testing::RandomDictionary(engine::Architecture::kTopK, kDIn,
                                                              kDSae, 4, 8)),
                IsOk());
    Start();
    ASSERT_THAT(Load("a", "sae").status(), IsOk());
    ASSERT_THAT(Load("b", "sae2").status(), IsOk());
  }
  void Start() {
    core_.reset();
    batcher_.reset();
    registry_.reset();
    store_.reset();
    fs::create_directories(scratch_.path() / "data");
    SAEDICT_ASSERT_OK_AND_ASSIGN(store_, storage::Store::Open({scratch_.path() / "data" / "db"}));
    SAEDICT_ASSERT_OK_AND_ASSIGN(
        registry_, DictionaryRegistry::Create({scratch_.path() / "data", root_}, store_.get()));
    SAEDICT_ASSERT_OK_AND_ASSIGN(batcher_, engine::EncodeBatcher::Create({}));
    core_ = std::make_unique<ServiceCore>(registry_.get(), batcher_.get(), store_.get(),
                                          scratch_.path() / "data");
  }
  absl::StatusOr<v1::LoadDictionaryResponse> Load(const std::string& id, const std::string& path,
                                                  bool replace = false) {
    v1::LoadDictionaryRequest r;
    r.set_id(id);
    r.set_path(path);
    r.set_replace(replace);
    return core_->LoadDictionary(r);
  }
  absl::StatusOr<v1::SetExplanationResponse> Set(const std::string& dict, uint32_t feature,
                                                 const std::string& text,
                                                 std::optional<double> score = std::nullopt,
                                                 const std::string& source = "") {
    v1::SetExplanationRequest r;
    r.set_dictionary_id(dict);
    r.set_feature(feature);
    r.set_text(text);
    r.set_source(source);
    if (score) r.set_score(*score);
    return core_->SetExplanation(r);
  }
  absl::StatusOr<v1::SearchExplanationsResponse> Search(const std::string& query,
                                                        std::vector<std::string> dicts = {},
                                                        int top_n = 0) {
    v1::SearchExplanationsRequest r;
    r.set_query(query);
    for (const std::string& d : dicts) r.add_dictionary_ids(d);
    r.set_top_n(top_n);
    return core_->SearchExplanations(r);
  }
  std::vector<std::string> Texts(uint32_t feature, const std::string& dict = "a") {
    v1::ListExplanationsRequest r;
    r.set_dictionary_id(dict);
    r.set_feature(feature);
    absl::StatusOr<v1::ListExplanationsResponse> got = core_->ListExplanations(r);
    EXPECT_THAT(got.status(), IsOk());
    std::vector<std::string> out;
    if (got.ok()) {
      for (const v1::Explanation& e : got->explanations()) out.push_back(e.text());
    }
    return out;
  }
  // One import stream: the header, then each (file, data) split into
  // `chunk`-byte messages.
  absl::StatusOr<v1::ImportExplanationsResponse> Import(
      v1::ExplanationFormat format, const std::vector<std::pair<std::string, std::string>>& files,
      const std::map<std::string, std::string>& map = {}, const std::string& default_dict = "",
      size_t chunk = 7, bool replace_same_source = false) {
    std::unique_ptr<ExplanationImport> import = core_->StartImportExplanations();
    v1::ImportExplanationsRequest first;
    first.mutable_header()->set_format(format);
    first.mutable_header()->set_default_dictionary_id(default_dict);
    first.mutable_header()->set_replace_same_source(replace_same_source);
    for (const auto& [k, v] : map) (*first.mutable_header()->mutable_dictionaries())[k] = v;
    absl::Status s = import->Add(first);
    if (!s.ok()) return s;
    for (const auto& [name, data] : files) {
      for (size_t at = 0; at < data.size(); at += chunk) {
        v1::ImportExplanationsRequest m;
        m.set_file_name(name);
        m.set_data(data.substr(at, chunk));
        if (absl::Status s = import->Add(m); !s.ok()) return s;
      }
    }
    return import->Finish();
  }

  ScratchDir scratch_;
  fs::path root_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<DictionaryRegistry> registry_;
  std::unique_ptr<engine::EncodeBatcher> batcher_;
  std::unique_ptr<ServiceCore> core_;
};

TEST_F(ExplanationsTest, SetListReplaceDeleteAndTheFeaturePage) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto first, Set("a", 3, "  plural nouns ", 0.5, "pipeline"));
  EXPECT_EQ(first.explanation().text(), "plural nouns");  // trimmed
  EXPECT_EQ(first.explanation().id().size(), 16u);
  EXPECT_FALSE(first.explanation().weights_sha256().empty());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto human, Set("a", 3, "nouns in the plural"));
  EXPECT_EQ(human.explanation().source(), "human");
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto better, Set("a", 3, "words ending in s", 0.9, "pipeline"));
  // The same explanation again updates it: same id, new score, no copy.
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto again, Set("a", 3, "plural nouns", 0.6, "pipeline"));
  EXPECT_EQ(again.explanation().id(), first.explanation().id());
  // Feature-page order: scored first, best score first, then unscored.
  EXPECT_THAT(Texts(3), ElementsAre("words ending in s", "plural nouns", "nouns in the plural"));
  v1::GetFeatureRequest page;
  page.set_dictionary_id("a");
  page.set_feature(3);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto feature, core_->GetFeature(page));
  ASSERT_EQ(feature.explanations_size(), 3);
  EXPECT_EQ(feature.explanations(0).text(), "words ending in s");
  EXPECT_EQ(feature.explanations(1).score(), 0.6);

  // Replace by id keeps the id.
  v1::SetExplanationRequest replace;
  replace.set_dictionary_id("a");
  replace.set_feature(3);
  replace.set_text("nouns, plural");
  replace.set_explanation_id(human.explanation().id());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto replaced, core_->SetExplanation(replace));
  EXPECT_EQ(replaced.explanation().id(), human.explanation().id());
  EXPECT_THAT(Texts(3), ElementsAre("words ending in s", "plural nouns", "nouns, plural"));

  v1::DeleteExplanationRequest del;
  del.set_dictionary_id("a");
  del.set_feature(3);
  del.set_explanation_id(better.explanation().id());
  ASSERT_THAT(core_->DeleteExplanation(del).status(), IsOk());
  EXPECT_THAT(Texts(3), ElementsAre("plural nouns", "nouns, plural"));
  EXPECT_THAT(core_->DeleteExplanation(del).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(better.explanation().id())));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto gone, Search("ending"));
  EXPECT_EQ(gone.matching_explanations(), 0);  // delete updated the search index
}

TEST_F(ExplanationsTest, BadRequestsNameTheFieldAndValue) {
  EXPECT_THAT(Set("nope", 0, "x").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  EXPECT_THAT(Set("a", kDSae, "x").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("feature: 32 is not a feature")));
  EXPECT_THAT(Set("a", 0, " \t ").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("text: empty")));
  EXPECT_THAT(Set("a", 0, std::string(5000, 'x')).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("text: 5000 bytes")));
  EXPECT_THAT(Set("a", 0, "x", std::nan("")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("score")));
  EXPECT_THAT(Set("a", 0, "x", std::nullopt, std::string(300, 's')).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("source: 300 bytes")));
  v1::SetExplanationRequest bad_id;
  bad_id.set_dictionary_id("a");
  bad_id.set_text("x");
  bad_id.set_explanation_id("XYZ");
  EXPECT_THAT(core_->SetExplanation(bad_id).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("explanation_id: 'XYZ'")));
  bad_id.set_explanation_id("0123456789abcdef");
  EXPECT_THAT(core_->SetExplanation(bad_id).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("0123456789abcdef")));
  EXPECT_THAT(Search("").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("query")));
  EXPECT_THAT(Search("?!").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("has no words")));
  EXPECT_THAT(Search("x", {}, 1001).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_n: 1001")));
  EXPECT_THAT(Search("x", {"a", "zz"}).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("dictionary_ids[1]")));
  v1::ListExplanationsRequest list;
  list.set_dictionary_id("a");
  list.set_feature(99);
  EXPECT_THAT(core_->ListExplanations(list).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("feature: 99")));
}

TEST_F(ExplanationsTest, SearchRanksMarksAndFilters) {
  ASSERT_THAT(Set("a", 1, "days of the week").status(), IsOk());
  ASSERT_THAT(Set("a", 2, "the word week").status(), IsOk());
  ASSERT_THAT(Set("b", 1, "Week WEEK week: calendar words", 0.3, "delphi").status(), IsOk());
  ASSERT_THAT(Set("a", 4, "colours").status(), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto all, Search("Week days"));
  EXPECT_THAT(all.query_terms(), ElementsAre("week", "days"));
  EXPECT_EQ(all.matching_explanations(), 3);
  ASSERT_EQ(all.hits_size(), 3);
  EXPECT_EQ(all.hits(0).explanation().feature(), 1u);  // both words
  EXPECT_EQ(all.hits(0).snippet(), "[[days]] of the [[week]]");
  EXPECT_EQ(all.hits(1).explanation().dictionary_id(), "b");  // week three times
  EXPECT_EQ(all.hits(1).snippet(), "[[Week]] [[WEEK]] [[week]]: calendar words");
  EXPECT_GT(all.hits(0).score(), all.hits(1).score());
  EXPECT_GT(all.hits(1).score(), all.hits(2).score());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto only_b, Search("week", {"b"}));
  ASSERT_EQ(only_b.hits_size(), 1);
  EXPECT_EQ(only_b.hits(0).explanation().source(), "delphi");
  v1::SearchExplanationsRequest by_source;
  by_source.set_query("week");
  by_source.set_source("human");
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto human, core_->SearchExplanations(by_source));
  EXPECT_EQ(human.matching_explanations(), 2);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto top1, Search("week", {}, 1));
  EXPECT_EQ(top1.hits_size(), 1);
  EXPECT_EQ(top1.matching_explanations(), 3);
}

TEST_F(ExplanationsTest, SnippetOfALongTextIsAWindowAroundTheFirstMatch) {
  const std::string text = std::string(500, 'a') + " needle " + std::string(500, 'b');
  const std::string snippet = ExplanationSnippet(text, {"needle"});
  EXPECT_THAT(snippet, HasSubstr("[[needle]]"));
  EXPECT_LT(snippet.size(), 330u);
  EXPECT_EQ(snippet.rfind("…", 0), 0u);
}

TEST_F(ExplanationsTest, ImportsANeuronpediaExportAndReportsBadLines) {
  const std::string jsonl = absl::StrCat(
      R"({"modelId":"gpt2-small","layer":"6-res-jb","index":"5","description":"dates in October","typeName":"oai_token-act-pair","explanationModelName":"gpt-4o-mini","scoreV1":0.71,"authorId":"np"})", "\n",
      R"({"modelId":"gpt2-small","layer":"6-res-jb","index":7,"description":"legal language","scoreV1":null,"scoreV2":0.2})", "\n",
      "{not json\n",
      "\n",
      R"({"modelId":"gpt2-small","layer":"6-res-jb","index":"5"})", "\n",
      R"({"modelId":"gpt2-small","layer":"6-res-jb","index":"99","description":"too far"})", "\n",
      R"({"modelId":"gpt2-small","layer":"7-res-jb","index":"1","description":"unmapped"})", "\n",
      R"({"modelId":"gpt2-small","layer":"8-res-jb","index":"1","description":"to b"})", "\n");
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      auto got, Import(v1::EXPLANATION_FORMAT_NEURONPEDIA,
                       {{"explanations/batch-0.jsonl.gz", Gzip(jsonl)}},
                       {{"gpt2-small/6-res-jb", "a"}, {"gpt2-small/8-res-jb", "b"}}));
  EXPECT_EQ(got.files(), 1);
  EXPECT_EQ(got.imported(), 3);
  EXPECT_EQ(got.rejected(), 4);
  ASSERT_EQ(got.problems_size(), 4);
  EXPECT_EQ(got.problems(0).line(), 3);
  EXPECT_EQ(got.problems(0).file_name(), "explanations/batch-0.jsonl.gz");
  EXPECT_EQ(got.problems(1).line(), 5);
  EXPECT_THAT(got.problems(1).message(), HasSubstr("description"));
  EXPECT_EQ(got.problems(2).line(), 6);
  EXPECT_THAT(got.problems(2).message(), HasSubstr("feature: 99"));
  EXPECT_EQ(got.problems(3).line(), 7);
  EXPECT_THAT(got.problems(3).message(), HasSubstr("gpt2-small/7-res-jb"));
  v1::ListExplanationsRequest list;
  list.set_dictionary_id("a");
  list.set_feature(5);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto five, core_->ListExplanations(list));
  ASSERT_EQ(five.explanations_size(), 1);
  EXPECT_EQ(five.explanations(0).source(), "oai_token-act-pair");
  EXPECT_EQ(five.explanations(0).explainer_model(), "gpt-4o-mini");
  EXPECT_EQ(five.explanations(0).author(), "np");
  EXPECT_DOUBLE_EQ(five.explanations(0).score(), 0.71);
  list.set_feature(7);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto seven, core_->ListExplanations(list));
  ASSERT_EQ(seven.explanations_size(), 1);
  EXPECT_DOUBLE_EQ(seven.explanations(0).score(), 0.2);  // scoreV2 when V1 is null
  EXPECT_THAT(Texts(1, "b"), ElementsAre("to b"));
  // Importing the same file again updates instead of duplicating.
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      got, Import(v1::EXPLANATION_FORMAT_NEURONPEDIA, {{"batch-0.jsonl", jsonl}},
                  {{"gpt2-small/6-res-jb", "a"}, {"gpt2-small/8-res-jb", "b"}}, "", 1 << 20));
  EXPECT_EQ(got.imported(), 3);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto search, Search("october"));
  EXPECT_EQ(search.matching_explanations(), 1);
}

// Damaged exports: every non-blank line is either imported or reported with
// its own line number, whatever the damage (random byte changes, cut lines,
// invalid UTF-8, huge numbers), and nothing crashes.
TEST_F(ExplanationsTest, EveryLineOfADamagedExportIsImportedOrReported) {
  std::mt19937 rng(11);
  std::string text;
  int64_t lines = 0;
  for (int i = 0; i < 300; ++i) {
    std::string line = absl::StrCat(R"({"modelId":"m","layer":"0","index":")", rng() % 40,
                                    R"(","description":"words )", i,
                                    R"(","scoreV1":0.5,"typeName":"t"})");
    switch (rng() % 6) {
      case 0:
        line[rng() % line.size()] = static_cast<char>(rng() % 256);
        break;
      case 1:
        line.resize(rng() % line.size());
        break;
      case 2:
        line.insert(rng() % line.size(), "\xff\xfe");
        break;
      case 3:
        line = absl::StrCat(R"({"modelId":"m","layer":"0","index":1e300,"description":"x"})");
        break;
      default:
        break;
    }
    text += line + "\n";
  }
  // Counted as the import counts them: a damaged byte may itself be a newline.
  int64_t total_lines = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++total_lines;
    if (!absl::StripAsciiWhitespace(line).empty()) ++lines;
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      auto got, Import(v1::EXPLANATION_FORMAT_NEURONPEDIA, {{"batch-0.jsonl", text}}, {}, "a",
                       4096));
  EXPECT_EQ(got.imported() + got.rejected(), lines);
  EXPECT_GT(got.imported(), 50);
  EXPECT_GT(got.rejected(), 50);
  for (const v1::ImportProblem& p : got.problems()) {
    EXPECT_GE(p.line(), 1);
    EXPECT_LE(p.line(), total_lines);
  }
}

TEST_F(ExplanationsTest, ImportsDelphiFilesAndRejectsBadNames) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      auto got,
      Import(v1::EXPLANATION_FORMAT_DELPHI,
             {{"run/explanations/layers.2_latent3.txt", R"("Repeated \"quoted\" words")"},
              {"layers.2_latent4.txt", "not a json string"},
              {"layers.2.txt", R"("no latent")"},
              {"other_latent1.txt", R"("goes to the default")"}},
             {{"layers.2", "a"}}, "b"));
  EXPECT_EQ(got.files(), 4);
  EXPECT_EQ(got.imported(), 2);
  EXPECT_EQ(got.rejected(), 2);
  EXPECT_THAT(Texts(3), ElementsAre("Repeated \"quoted\" words"));
  EXPECT_THAT(Texts(1, "b"), ElementsAre("goes to the default"));
  ASSERT_EQ(got.problems_size(), 2);
  EXPECT_EQ(got.problems(0).file_name(), "layers.2_latent4.txt");
  EXPECT_THAT(got.problems(1).message(), HasSubstr("{module}_latent{index}.txt"));
}

TEST_F(ExplanationsTest, ImportStreamErrors) {
  std::unique_ptr<ExplanationImport> import = core_->StartImportExplanations();
  v1::ImportExplanationsRequest no_header;
  no_header.set_file_name("x.jsonl");
  EXPECT_THAT(import->Add(no_header),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("header: missing")));
  EXPECT_THAT(Import(v1::EXPLANATION_FORMAT_UNSPECIFIED, {}, {}, "a").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("header.format")));
  EXPECT_THAT(Import(v1::EXPLANATION_FORMAT_DELPHI, {}, {{"m", "zz"}}).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("header.dictionaries['m']")));
  EXPECT_THAT(Import(v1::EXPLANATION_FORMAT_DELPHI, {}, {}, "zz").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("header.default_dictionary_id")));
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      auto bad_gzip, Import(v1::EXPLANATION_FORMAT_NEURONPEDIA,
                            {{"b.jsonl.gz", Gzip("{}\n").substr(0, 12)}}, {}, "a"));
  EXPECT_EQ(bad_gzip.rejected(), 1);
  EXPECT_EQ(bad_gzip.problems(0).line(), 0);
  EXPECT_THAT(bad_gzip.problems(0).message(), HasSubstr("gzip"));
}

TEST_F(ExplanationsTest, ReplaceSameSourceRemovesEarlierOnesOfThatSource) {
  ASSERT_THAT(Set("a", 1, "old delphi one", std::nullopt, "delphi").status(), IsOk());
  ASSERT_THAT(Set("a", 1, "a person's note").status(), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      auto got, Import(v1::EXPLANATION_FORMAT_DELPHI,
                       {{"m_latent1.txt", R"("new delphi one")"}}, {}, "a", 7, true));
  EXPECT_EQ(got.imported(), 1);
  EXPECT_THAT(Texts(1), ::testing::UnorderedElementsAre("new delphi one", "a person's note"));
}

TEST_F(ExplanationsTest, RestartKeepsEverythingAndDictionaryDeleteRemovesThem) {
  ASSERT_THAT(Set("a", 2, "kept across restarts").status(), IsOk());
  ASSERT_THAT(Set("b", 2, "kept in b").status(), IsOk());
  Start();
  EXPECT_THAT(Texts(2), ElementsAre("kept across restarts"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto found, Search("restarts"));
  EXPECT_EQ(found.matching_explanations(), 1);
  // A replace with other weights keeps them, marked with the old weights.
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto before, core_->ListExplanations([] {
    v1::ListExplanationsRequest r;
    r.set_dictionary_id("a");
    r.set_feature(2);
    return r;
  }()));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto reloaded, Load("a", "sae2", /*replace=*/true));
  EXPECT_NE(before.explanations(0).weights_sha256(), reloaded.dictionary().weights_sha256());
  EXPECT_THAT(Texts(2), ElementsAre("kept across restarts"));
  v1::DeleteDictionaryRequest del;
  del.set_id("a");
  ASSERT_THAT(core_->DeleteDictionary(del).status(), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(found, Search("kept"));
  ASSERT_EQ(found.hits_size(), 1);
  EXPECT_EQ(found.hits(0).explanation().dictionary_id(), "b");
  ASSERT_THAT(Load("a", "sae").status(), IsOk());
  EXPECT_TRUE(Texts(2).empty());  // a new dictionary "a" starts without them
}

}  // namespace
}  // namespace saedict::service
