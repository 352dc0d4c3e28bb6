// ExplanationStore against a real RocksDB directory: the tokenization rules,
// BM25 ranking on a planted set (scores against the formula evaluated here
// from counted frequencies), replace / delete keeping the postings and the
// totals in step with the records, dictionary filters, restart, bad keys.
#include "storage/explanation_store.h"

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/explanation_terms.h"
#include "storage/store.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::storage {
namespace {

using ::saedict::testing::IsOk;
using ::saedict::testing::ScratchDir;
using ::saedict::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

StoredExplanation Make(const std::string& dict, uint32_t feature, const std::string& id,
                       const std::string& text, const std::string& source = "human") {
  StoredExplanation e;
  e.key = {dict, feature, id};
  e.record.set_text(text);
  e.record.set_source(source);
  return e;
}

std::string Id(int i) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016x", i);
  return buf;
}

std::vector<std::string> Ids(const std::vector<ExplanationMatch>& matches) {
  std::vector<std::string> out;
  for (const ExplanationMatch& m : matches) out.push_back(m.key.id);
  return out;
}

TEST(ExplanationTermsTest, SplitsLowercasesAndKeepsUtf8Words) {
  EXPECT_THAT(Terms("Don't STOP--now! x2 Café au-lait"),
              ElementsAre("don", "t", "stop", "now", "x2", "café", "au", "lait"));
  const std::vector<TextWord> words = SplitWords("  Hello, world");
  ASSERT_EQ(words.size(), 2u);
  EXPECT_EQ(words[0].begin, 2u);
  EXPECT_EQ(words[0].end, 7u);
  EXPECT_EQ(words[1].term, "world");
  EXPECT_TRUE(Terms(" ,.;- \t\n").empty());
}

TEST(ExplanationTermsTest, LongWordsAreCutAtACharacterBoundary) {
  std::string word(kMaxTermBytes - 1, 'a');
  word += "é";  // two bytes straddling the limit
  word += "bbb";
  const std::vector<std::string> terms = Terms(word);
  ASSERT_EQ(terms.size(), 1u);
  EXPECT_EQ(terms[0], std::string(kMaxTermBytes - 1, 'a'));
}

class ExplanationStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open() {
    store_.reset();
    auto s = Store::Open({dir_.path() / "db"});
    ASSERT_THAT(s.status(), IsOk());
    store_ = *std::move(s);
  }
  ExplanationStore& ex() { return *store_->explanations(); }

  ScratchDir dir_;
  std::unique_ptr<Store> store_;
};

// BM25 of one document for `query`, from the definition (explanation_store.h).
double Bm25(const std::vector<std::string>& query, const std::vector<std::string>& doc,
            const std::vector<std::vector<std::string>>& collection) {
  double total_len = 0;
  for (const auto& d : collection) total_len += d.size();
  const double n = collection.size(), avgdl = total_len / n;
  double score = 0;
  for (const std::string& t : std::set<std::string>(query.begin(), query.end())) {
    double df = 0;
    for (const auto& d : collection) df += std::count(d.begin(), d.end(), t) > 0;
    const double tf = std::count(doc.begin(), doc.end(), t);
    if (tf == 0) continue;
    const double idf = std::log(1 + (n - df + 0.5) / (df + 0.5));
    score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * doc.size() / avgdl));
  }
  return score;
}

TEST_F(ExplanationStoreTest, RanksAPlantedSetByBm25) {
  const std::vector<std::string> texts = {
      "days of the week",                      // 0: both words, short
      "the word week and the word weekend",    // 1: week once, longer
      "week week week calendar",               // 2: week three times
      "months of the year",                    // 3: no match
      "calendar days in a month and a week of days",  // 4: days twice, week once
      "the the the the the the",               // 5: only a common word
  };
  std::vector<StoredExplanation> put;
  std::vector<std::vector<std::string>> collection;
  for (size_t i = 0; i < texts.size(); ++i) {
    put.push_back(Make("d", static_cast<uint32_t>(i), Id(static_cast<int>(i)), texts[i]));
    collection.push_back(Terms(texts[i]));
  }
  ASSERT_THAT(ex().Write({}, put), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(const ExplanationTotals totals, ex().Totals());
  EXPECT_EQ(totals.explanations, texts.size());
  size_t words = 0;
  for (const auto& d : collection) words += d.size();
  EXPECT_EQ(totals.terms, words);

  const std::vector<std::string> query = Terms("week DAYS");
  SAEDICT_ASSERT_OK_AND_ASSIGN(const std::vector<ExplanationMatch> got, ex().Search(query, {}));
  // Expected order from the formula; 3 and 5 do not match.
  std::vector<std::pair<double, int>> want;
  for (int i = 0; i < static_cast<int>(texts.size()); ++i) {
    const double s = Bm25(query, collection[i], collection);
    if (s > 0) want.push_back({-s, i});
  }
  std::sort(want.begin(), want.end());
  ASSERT_EQ(got.size(), want.size());
  for (size_t r = 0; r < got.size(); ++r) {
    EXPECT_EQ(got[r].key.id, Id(want[r].second)) << "rank " << r;
    EXPECT_NEAR(got[r].score, -want[r].first, 1e-12) << "rank " << r;
  }
  // The hand-checkable parts of that order: both words beat one word (the
  // short text first); three "week" beat one "week" in a longer text.
  EXPECT_EQ(got[0].key.id, Id(0));
  EXPECT_EQ(got[1].key.id, Id(4));
  const std::vector<std::string> ids = Ids(got);
  const auto pos = [&](int i) { return std::find(ids.begin(), ids.end(), Id(i)) - ids.begin(); };
  EXPECT_LT(pos(2), pos(1));
  EXPECT_THAT(got[0].matched_terms, ElementsAre("week", "days"));
  // The best two only, with the count of all matches.
  size_t total = 0;
  SAEDICT_ASSERT_OK_AND_ASSIGN(const auto best2, ex().Search(query, {}, 2, &total));
  EXPECT_EQ(total, got.size());
  ASSERT_EQ(best2.size(), 2u);
  EXPECT_EQ(best2[0].key, got[0].key);
  EXPECT_EQ(best2[1].key, got[1].key);
  EXPECT_EQ(best2[1].score, got[1].score);
  // A word in every other document weighs less than a rare one.
  SAEDICT_ASSERT_OK_AND_ASSIGN(const auto common, ex().Search({"the"}, {}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(const auto rare, ex().Search({"calendar"}, {}));
  ASSERT_FALSE(common.empty());
  ASSERT_FALSE(rare.empty());
  EXPECT_LT(common[0].score, rare[0].score);
}

TEST_F(ExplanationStoreTest, ReplaceAndDeleteKeepTheIndexInStep) {
  ASSERT_THAT(ex().Write({}, {Make("d", 1, Id(1), "cats and dogs"), Make("d", 2, Id(2), "dogs")}),
              IsOk());
  // Replace explanation 1 with other text: "cats" no longer finds it.
  ASSERT_THAT(ex().Write({}, {Make("d", 1, Id(1), "birds")}), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto cats, ex().Search({"cats"}, {}));
  EXPECT_TRUE(cats.empty());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto birds, ex().Search({"birds"}, {}));
  EXPECT_THAT(Ids(birds), ElementsAre(Id(1)));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto dogs, ex().Search({"dogs"}, {}));
  EXPECT_THAT(Ids(dogs), ElementsAre(Id(2)));
  SAEDICT_ASSERT_OK_AND_ASSIGN(ExplanationTotals t, ex().Totals());
  EXPECT_EQ(t.explanations, 2u);
  EXPECT_EQ(t.terms, 2u);
  // Delete: gone from the records and from search; an absent key is no error.
  ASSERT_THAT(ex().Write({{"d", 2, Id(2)}, {"d", 9, Id(9)}}, {}), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(dogs, ex().Search({"dogs"}, {}));
  EXPECT_TRUE(dogs.empty());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto gone, ex().Get({"d", 2, Id(2)}));
  EXPECT_FALSE(gone.has_value());
  SAEDICT_ASSERT_OK_AND_ASSIGN(t, ex().Totals());
  EXPECT_EQ(t.explanations, 1u);
  EXPECT_EQ(t.terms, 1u);
  // The same key twice in one write: the last one stands.
  ASSERT_THAT(ex().Write({}, {Make("d", 3, Id(3), "first"), Make("d", 3, Id(3), "second")}),
              IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto first, ex().Search({"first"}, {}));
  EXPECT_TRUE(first.empty());
  SAEDICT_ASSERT_OK_AND_ASSIGN(t, ex().Totals());
  EXPECT_EQ(t.explanations, 2u);
}

TEST_F(ExplanationStoreTest, FiltersByDictionaryAndDeletesOneDictionary) {
  ASSERT_THAT(ex().Write({}, {Make("a", 0, Id(1), "red"), Make("b", 0, Id(2), "red"),
                              Make("ab", 0, Id(3), "red")}),
              IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto only_b, ex().Search({"red"}, {"b"}));
  EXPECT_THAT(Ids(only_b), ElementsAre(Id(2)));
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto a_ab, ex().Search({"red"}, {"a", "ab"}));
  EXPECT_THAT(Ids(a_ab), ElementsAre(Id(1), Id(3)));  // equal scores: key order
  // Deleting "a" leaves "ab" (a prefix of its id) alone.
  ASSERT_THAT(ex().DeleteDictionary("a"), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto left, ex().Search({"red"}, {}));
  EXPECT_THAT(Ids(left), ElementsAre(Id(3), Id(2)));
  // Deleting the dictionary through the Store removes its explanations too.
  ASSERT_THAT(store_->DeleteDictionary("b"), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(left, ex().Search({"red"}, {}));
  EXPECT_THAT(Ids(left), ElementsAre(Id(3)));
  SAEDICT_ASSERT_OK_AND_ASSIGN(ExplanationTotals t, ex().Totals());
  EXPECT_EQ(t.explanations, 1u);
}

TEST_F(ExplanationStoreTest, ListsInIdOrderAndSurvivesARestart) {
  StoredExplanation e = Make("d", 7, Id(20), "a scored one", "delphi");
  e.record.set_score(0.75);
  ASSERT_THAT(ex().Write({}, {e, Make("d", 7, Id(10), "plain"), Make("d", 8, Id(1), "other")}),
              IsOk());
  Open();
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto listed, ex().List("d", 7));
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].key.id, Id(10));
  EXPECT_EQ(listed[1].key.id, Id(20));
  EXPECT_EQ(listed[1].record.source(), "delphi");
  EXPECT_EQ(listed[1].record.score(), 0.75);
  EXPECT_EQ(listed[1].record.term_count(), 3);
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto found, ex().Search({"scored"}, {}));
  EXPECT_THAT(Ids(found), ElementsAre(Id(20)));
}

TEST_F(ExplanationStoreTest, RejectsMalformedKeys) {
  EXPECT_THAT(ex().Write({}, {Make("d", 0, "XYZ", "t")}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("16 lowercase hex")));
  EXPECT_THAT(ex().Write({}, {Make("", 0, Id(1), "t")}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dictionary id")));
  EXPECT_THAT(ex().Get({"d", 0, "0123456789ABCDEF"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("16 lowercase hex")));
  SAEDICT_ASSERT_OK_AND_ASSIGN(ExplanationTotals t, ex().Totals());
  EXPECT_EQ(t.explanations, 0u);  // nothing of a rejected write
}

// A random workload of puts, replaces and deletes: the totals and every
// search answer agree with a recount over the records left.
TEST_F(ExplanationStoreTest, RandomWorkloadKeepsTotalsAndPostingsExact) {
  std::mt19937 rng(7);
  const std::vector<std::string> vocab = {"alpha", "beta", "gamma", "delta", "eps"};
  std::map<std::string, std::string> model;  // id -> text (dictionary "d", feature 0)
  for (int step = 0; step < 300; ++step) {
    const std::string id = Id(static_cast<int>(rng() % 40));
    if (rng() % 4 == 0) {
      ASSERT_THAT(ex().Write({{"d", 0, id}}, {}), IsOk());
      model.erase(id);
    } else {
      std::string text;
      for (int w = 0, n = 1 + static_cast<int>(rng() % 6); w < n; ++w) {
        text += vocab[rng() % vocab.size()] + " ";
      }
      ASSERT_THAT(ex().Write({}, {Make("d", 0, id, text)}), IsOk());
      model[id] = text;
    }
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(ExplanationTotals t, ex().Totals());
  EXPECT_EQ(t.explanations, model.size());
  size_t words = 0;
  for (const auto& [id, text] : model) words += Terms(text).size();
  EXPECT_EQ(t.terms, words);
  for (const std::string& term : vocab) {
    std::set<std::string> want;
    for (const auto& [id, text] : model) {
      const auto terms = Terms(text);
      if (std::find(terms.begin(), terms.end(), term) != terms.end()) want.insert(id);
    }
    SAEDICT_ASSERT_OK_AND_ASSIGN(auto got, ex().Search({term}, {}));
    const std::vector<std::string> ids = Ids(got);
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), want) << term;
  }
}

}  // namespace
}  // namespace saedict::storage
