// Evaluation and its SAEBench core JSON: the stories260k SAEs against the
// float64 reference metrics and frequencies; a tiny dictionary where every
// metric is worked out by hand; the dark-matter share on planted errors; the
// corpus path; the JSON layout; the error paths.
#include "compare/evaluation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "compare/saebench_json.h"
#include "engine/encoder.h"
#include "formats/codecs/file_io.h"
#include "formats/codecs/json.h"
#include "formats/codecs/npy.h"
#include "formats/dictionary_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/directions.h"
#include "index/feature_index.h"
#include "index/neighbours.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::compare {
namespace {

using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;
using ::testing::HasSubstr;

using Row = std::vector<std::pair<uint32_t, float>>;

SparseCodes Codes(int64_t num_features, const std::vector<Row>& rows) {
  SparseCodes c;
  c.num_features = num_features;
  c.num_rows = static_cast<int64_t>(rows.size());
  for (const Row& row : rows) {
    for (const auto& [f, v] : row) {
      c.indices.push_back(f);
      c.values.push_back(v);
    }
    c.row_offsets.push_back(c.indices.size());
  }
  return c;
}

SparseCodes EmptyRows(int64_t num_features, int64_t n) {
  return Codes(num_features, std::vector<Row>(n));
}

// A standard SAE of d_in 2, d_sae 3 with weights chosen so every weight
// metric is exact: encoder columns (1,0), (1,1), (0,2); decoder rows (1,0),
// (0,1), (0.75,1) (norm 1.25).
std::shared_ptr<const engine::Dictionary> TinyDictionary() {
  auto d = std::make_shared<engine::Dictionary>();
  d->config.d_in = 2;
  d->config.d_sae = 3;
  d->config.architecture = engine::Architecture::kStandard;
  d->w_enc = {1, 1, 0,   // W_enc[0, :]
              0, 1, 2};  // W_enc[1, :]
  d->b_enc = {0.5f, -0.25f, 2.0f};
  d->w_dec = {1, 0, 0, 1, 0.75f, 1};
  d->b_dec = {0, 0};
  EXPECT_THAT(d->Validate(), IsOk());
  return d;
}

// A standard SAE with random weights.
std::shared_ptr<const engine::Dictionary> RandomDictionary(int64_t d_in, int64_t d_sae,
                                                           uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto d = std::make_shared<engine::Dictionary>();
  d->config.d_in = d_in;
  d->config.d_sae = d_sae;
  d->config.architecture = engine::Architecture::kStandard;
  d->w_enc.resize(d_in * d_sae);
  d->w_dec.resize(d_in * d_sae);
  for (float& v : d->w_enc) v = normal(rng);
  for (float& v : d->w_dec) v = normal(rng);
  d->b_enc.assign(d_sae, 0.0f);
  d->b_dec.assign(d_in, 0.0f);
  EXPECT_THAT(d->Validate(), IsOk());
  return d;
}

// The four rows of the hand-worked example (d_in 2):
//   x      (1,0)   (0,1)    (1,1)   (2,0)
//   x_hat  (1,0)   (0,0.5)  (1,0)   (1,0)
//   codes  {0:1}   {1:2}    {0:1, 1:0.5}   {0:1, 2:0 (stored zero: inactive)}
const std::vector<float> kX = {1, 0, 0, 1, 1, 1, 2, 0};
const std::vector<float> kXHat = {1, 0, 0, 0.5f, 1, 0, 1, 0};
const std::vector<Row> kRows = {
    {{0, 1.0f}}, {{1, 2.0f}}, {{0, 1.0f}, {1, 0.5f}}, {{0, 1.0f}, {2, 0.0f}}};

// Feeds rows [begin, end) of the example.
absl::Status AddExampleRows(Evaluation& e, int64_t begin, int64_t end) {
  const std::vector<Row> rows(kRows.begin() + begin, kRows.begin() + end);
  return e.AddActivations(absl::MakeConstSpan(kX).subspan(2 * begin, 2 * (end - begin)),
                          Codes(3, rows),
                          absl::MakeConstSpan(kXHat).subspan(2 * begin, 2 * (end - begin)));
}

EvaluationOptions ExampleOptions() {
  EvaluationOptions o;
  o.context_size = 2;
  o.legacy_batch_tokens = 2;
  o.dark_matter_max_tokens = 0;
  o.per_token_error_norms = true;
  return o;
}

constexpr double kTol = 1e-12;

TEST(EvaluationTest, EveryMetricByHand) {
  Evaluation e(TinyDictionary(), ExampleOptions());
  // Two calls: the split crosses a legacy batch and a prompt.
  ASSERT_THAT(AddExampleRows(e, 0, 3), IsOk());
  ASSERT_THAT(AddExampleRows(e, 3, 4), IsOk());
  EXPECT_EQ(e.tokens(), 4);
  SAEDICT_ASSERT_OK_AND_ASSIGN(const EvaluationResult r, e.Finish());

  EXPECT_EQ(r.tokens, 4);
  EXPECT_EQ(r.tokens_with_activations, 4);
  EXPECT_EQ(r.prompts, 2);  // context_size 2: rows {0,1}, {2,3}
  EXPECT_FALSE(r.prompts_from_boundaries);
  EXPECT_NEAR(r.l0, 5.0 / 4, kTol);  // the stored zero does not count
  EXPECT_NEAR(r.l1, 5.5 / 4, kTol);

  // Σ||e||² = 0 + 0.25 + 1 + 1 = 2.25; x̄ = (1, 0.5); Σ||x - x̄||² = 3.
  ASSERT_TRUE(r.explained_variance.has_value());
  EXPECT_NEAR(*r.explained_variance, 1 - 2.25 / 3, kTol);
  EXPECT_NEAR(r.mse.value_or(-1), 2.25 / 8, kTol);
  EXPECT_NEAR(r.mse_sum_over_dims.value_or(-1), 2.25 / 4, kTol);
  // Batches {0,1} (mean (0.5,0.5)) and {2,3} (mean (1.5,0.5)); every
  // ||x - x̄_b||² is 0.5: ratios 1, 0.5, -1, -1.
  EXPECT_NEAR(r.explained_variance_legacy.value_or(-9), (1 + 0.5 - 1 - 1) / 4, kTol);
  EXPECT_NEAR(r.cossim.value_or(-1), (3 + 1 / std::sqrt(2.0)) / 4, kTol);
  EXPECT_NEAR(r.l2_norm_in.value_or(-1), (4 + std::sqrt(2.0)) / 4, kTol);
  EXPECT_NEAR(r.l2_norm_out.value_or(-1), 3.5 / 4, kTol);
  EXPECT_NEAR(r.l2_ratio.value_or(-1), (2 + 1 / std::sqrt(2.0)) / 4, kTol);
  EXPECT_NEAR(r.relative_reconstruction_bias.value_or(-1), 3.25 / 4.5, kTol);
  EXPECT_THAT(r.per_token_error_norms, ::testing::ElementsAre(0.0f, 0.5f, 1.0f, 1.0f));
  EXPECT_FALSE(r.dark_matter_share.has_value());  // disabled
  EXPECT_EQ(r.dark_matter_train_tokens, 0);
  EXPECT_EQ(r.dark_matter_test_tokens, 0);

  // Densities 0.75, 0.5, 0.
  ASSERT_EQ(r.features.size(), 3u);
  EXPECT_NEAR(r.features[0].feature_density, 0.75, kTol);
  EXPECT_NEAR(r.features[1].feature_density, 0.5, kTol);
  EXPECT_EQ(r.features[2].feature_density, 0.0);
  // f0 fires in both prompts (3 rows), f1 in both (2 rows), f2 never.
  EXPECT_NEAR(r.features[0].consistent_activation_heuristic, 1.5, kTol);
  EXPECT_NEAR(r.features[1].consistent_activation_heuristic, 1.0, kTol);
  EXPECT_TRUE(std::isnan(r.features[2].consistent_activation_heuristic));
  EXPECT_NEAR(r.frac_alive, 2.0 / 3, kTol);
  EXPECT_NEAR(r.freq_over_1_percent, 2.0 / 3, kTol);
  EXPECT_NEAR(r.freq_over_10_percent, 2.0 / 3, kTol);
  EXPECT_NEAR(r.normalized_freq_over_1_percent, 1.0, kTol);
  EXPECT_NEAR(r.normalized_freq_over_10_percent, 1.0, kTol);

  // Weights.
  for (int f = 0; f < 3; ++f) EXPECT_EQ(r.features[f].index, f);
  EXPECT_EQ(r.features[0].encoder_bias, 0.5);
  EXPECT_EQ(r.features[1].encoder_bias, -0.25);
  EXPECT_EQ(r.features[2].encoder_bias, 2.0);
  EXPECT_NEAR(r.features[0].encoder_norm, 1.0, kTol);
  EXPECT_NEAR(r.features[1].encoder_norm, std::sqrt(2.0), kTol);
  EXPECT_NEAR(r.features[2].encoder_norm, 2.0, kTol);
  EXPECT_NEAR(r.features[0].encoder_decoder_cosine_sim, 1.0, kTol);
  EXPECT_NEAR(r.features[1].encoder_decoder_cosine_sim, 1 / std::sqrt(2.0), kTol);
  EXPECT_NEAR(r.features[2].encoder_decoder_cosine_sim, 0.8, kTol);
  // Decoder cosines: (0,1) 0, (0,2) 0.6, (1,2) 0.8.
  EXPECT_NEAR(r.features[0].max_decoder_cosine_sim, 0.6, kTol);
  EXPECT_NEAR(r.features[1].max_decoder_cosine_sim, 0.8, kTol);
  EXPECT_NEAR(r.features[2].max_decoder_cosine_sim, 0.8, kTol);
  EXPECT_NEAR(r.average_max_decoder_cosine_sim, 2.2 / 3, kTol);
  // Encoder cosines: (0,1) 1/√2, (0,2) 0, (1,2) 1/√2.
  for (int f = 0; f < 3; ++f) {
    EXPECT_NEAR(r.features[f].max_encoder_cosine_sim, 1 / std::sqrt(2.0), kTol) << f;
  }
  EXPECT_NEAR(r.average_max_encoder_cosine_sim, 1 / std::sqrt(2.0), kTol);
}

TEST(EvaluationTest, CallerBoundariesReplaceContextSize) {
  {  // One boundary at the end: all four rows are one prompt.
    Evaluation e(TinyDictionary(), ExampleOptions());
    ASSERT_THAT(AddExampleRows(e, 0, 4), IsOk());
    e.EndPrompt();
    SAEDICT_ASSERT_OK_AND_ASSIGN(const EvaluationResult r, e.Finish());
    EXPECT_EQ(r.prompts, 1);
    EXPECT_TRUE(r.prompts_from_boundaries);
    EXPECT_NEAR(r.features[0].consistent_activation_heuristic, 3.0, kTol);
    EXPECT_NEAR(r.features[1].consistent_activation_heuristic, 2.0, kTol);
  }
  {  // Prompts {0} and {1, 2, 3} (longer than context_size 2); an empty
     // prompt (EndPrompt twice) does not count.
    Evaluation e(TinyDictionary(), ExampleOptions());
    ASSERT_THAT(AddExampleRows(e, 0, 1), IsOk());
    e.EndPrompt();
    e.EndPrompt();
    ASSERT_THAT(AddExampleRows(e, 1, 4), IsOk());
    SAEDICT_ASSERT_OK_AND_ASSIGN(const EvaluationResult r, e.Finish());
    EXPECT_EQ(r.prompts, 2);
    EXPECT_NEAR(r.features[0].consistent_activation_heuristic, 1.5, kTol);  // 3 rows / 2
    EXPECT_NEAR(r.features[1].consistent_activation_heuristic, 2.0, kTol);  // 2 rows / 1
  }
}

TEST(EvaluationTest, DefaultContextSizeIs128Rows) {
  EvaluationOptions o;
  EXPECT_EQ(o.context_size, 128);
  Evaluation e(TinyDictionary(), o);
  std::vector<Row> rows(130);
  rows[0] = {{0, 1.0f}, {1, 1.0f}};
  rows[127] = {{1, 1.0f}};  // same prompt as row 0
  rows[129] = {{0, 1.0f}};  // the second prompt
  const std::vector<float> zeros(130 * 2, 0.0f);
  ASSERT_THAT(e.AddActivations(zeros, Codes(3, rows), zeros), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(const EvaluationResult r, e.Finish());
  EXPECT_EQ(r.prompts, 2);
  EXPECT_NEAR(r.features[0].consistent_activation_heuristic, 1.0, kTol);
  EXPECT_NEAR(r.features[1].consistent_activation_heuristic, 2.0, kTol);
  // All-zero activations: no variance, nothing to divide by.
  EXPECT_FALSE(r.explained_variance.has_value());
  EXPECT_FALSE(r.explained_variance_legacy.has_value());
  EXPECT_FALSE(r.relative_reconstruction_bias.has_value());
  EXPECT_NEAR(r.mse.value_or(-1), 0.0, kTol);
}

TEST(EvaluationTest, L2RatioTreatsATinyInputNormAsOne) {
  EvaluationOptions o;
  o.dark_matter_max_tokens = 0;
  Evaluation e(TinyDictionary(), o);
  const std::vector<float> x = {1e-5f, 0, 2, 0}, x_hat = {0.5f, 0, 1, 0};
  ASSERT_THAT(e.AddActivations(x, EmptyRows(3, 2), x_hat), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(const EvaluationResult r, e.Finish());
  EXPECT_NEAR(r.l2_ratio.value_or(-1), (0.5 / 1 + 1.0 / 2) / 2, kTol);
  EXPECT_NEAR(r.cossim.value_or(-1), 1.0, 1e-9);
}

TEST(EvaluationTest, CorpusCodesGiveSparsityAndDensityOnly) {
  // d_sae 4 over 200 rows in two documents of 100: f0 in every row, f1 in
  // rows 5..14, f2 in rows 50 and 150 (density exactly 0.01: not "over 1%"),
  // f3 never.
  auto dict = RandomDictionary(2, 4, 7);
  Evaluation e(dict, {});
  std::vector<Row> rows(200);
  for (int i = 0; i < 200; ++i) rows[i].push_back({0, 1.0f});
  for (int i = 5; i < 15; ++i) rows[i].push_back({1, 2.0f});
  rows[50].push_back({2, -3.0f});
  rows[150].push_back({2, -3.0f});
  const SparseCodes all = Codes(4, rows);
  ASSERT_THAT(e.AddDocumentCodes(SliceRows(all, 0, 100)), IsOk());
  ASSERT_THAT(e.AddDocumentCodes(SliceRows(all, 100, 200)), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(const EvaluationResult r, e.Finish());

  EXPECT_EQ(r.tokens, 200);
  EXPECT_EQ(r.tokens_with_activations, 0);
  EXPECT_EQ(r.prompts, 2);
  EXPECT_TRUE(r.prompts_from_boundaries);
  EXPECT_NEAR(r.l0, 212.0 / 200, kTol);
  EXPECT_NEAR(r.l1, (200 + 20 + 6) / 200.0, kTol);
  EXPECT_NEAR(r.features[0].feature_density, 1.0, kTol);
  EXPECT_NEAR(r.features[1].feature_density, 0.05, kTol);
  EXPECT_EQ(r.features[2].feature_density, 0.01);
  EXPECT_EQ(r.features[3].feature_density, 0.0);
  EXPECT_NEAR(r.features[0].consistent_activation_heuristic, 100.0, kTol);
  EXPECT_NEAR(r.features[1].consistent_activation_heuristic, 10.0, kTol);
  EXPECT_NEAR(r.features[2].consistent_activation_heuristic, 1.0, kTol);
  EXPECT_TRUE(std::isnan(r.features[3].consistent_activation_heuristic));
  EXPECT_NEAR(r.freq_over_1_percent, 0.5, kTol);
  EXPECT_NEAR(r.freq_over_10_percent, 0.25, kTol);
  EXPECT_NEAR(r.normalized_freq_over_1_percent, 1.05 / 1.06, kTol);
  EXPECT_NEAR(r.normalized_freq_over_10_percent, 1.0 / 1.06, kTol);
  EXPECT_NEAR(r.frac_alive, 0.75, kTol);

  EXPECT_FALSE(r.explained_variance.has_value());
  EXPECT_FALSE(r.explained_variance_legacy.has_value());
  EXPECT_FALSE(r.mse.has_value());
  EXPECT_FALSE(r.mse_sum_over_dims.has_value());
  EXPECT_FALSE(r.cossim.has_value());
  EXPECT_FALSE(r.l2_norm_in.has_value());
  EXPECT_FALSE(r.l2_norm_out.has_value());
  EXPECT_FALSE(r.l2_ratio.has_value());
  EXPECT_FALSE(r.relative_reconstruction_bias.has_value());
  EXPECT_FALSE(r.dark_matter_share.has_value());
  EXPECT_TRUE(r.per_token_error_norms.empty());
}

// Rows of x ~ N(0, 1), d_in 8; x_hat = x - error(x, noise).
EvaluationResult DarkMatterRun(bool linear_error) {
  constexpr int64_t kD = 8, kRowsTotal = 6000;
  std::mt19937 rng(11);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> m(kD * kD), c(kD);
  for (double& v : m) v = 0.3 * normal(rng);
  for (double& v : c) v = normal(rng);
  std::vector<float> x(kRowsTotal * kD), x_hat(kRowsTotal * kD);
  for (int64_t r = 0; r < kRowsTotal; ++r) {
    for (int64_t j = 0; j < kD; ++j) x[r * kD + j] = static_cast<float>(normal(rng));
    for (int64_t j = 0; j < kD; ++j) {
      double e = 0;
      if (linear_error) {
        e = c[j];
        for (int64_t i = 0; i < kD; ++i) e += x[r * kD + i] * m[i * kD + j];
      } else {
        e = 0.5 * normal(rng);
      }
      x_hat[r * kD + j] = static_cast<float>(x[r * kD + j] - e);
    }
  }
  EvaluationOptions o;
  o.dark_matter_max_tokens = 5000;
  Evaluation e(RandomDictionary(kD, 4, 3), o);
  // Uneven chunks, so batches straddle calls.
  for (int64_t begin = 0; begin < kRowsTotal; begin += 777) {
    const int64_t n = std::min<int64_t>(777, kRowsTotal - begin);
    EXPECT_THAT(
        e.AddActivations(absl::MakeConstSpan(x).subspan(begin * kD, n * kD), EmptyRows(4, n),
                         absl::MakeConstSpan(x_hat).subspan(begin * kD, n * kD)),
        IsOk());
  }
  absl::StatusOr<EvaluationResult> r = e.Finish();
  EXPECT_THAT(r, IsOk());
  return r.ok() ? *std::move(r) : EvaluationResult{};
}

TEST(EvaluationTest, DarkMatterOfALinearErrorIsOne) {
  const EvaluationResult r = DarkMatterRun(/*linear_error=*/true);
  EXPECT_EQ(r.dark_matter_train_tokens, 4000);  // of the first 5000, every 5th held out
  EXPECT_EQ(r.dark_matter_test_tokens, 1000);
  ASSERT_TRUE(r.dark_matter_share.has_value());
  EXPECT_GT(*r.dark_matter_share, 0.999);
  EXPECT_LE(*r.dark_matter_share, 1.0 + 1e-9);
}

TEST(EvaluationTest, DarkMatterOfIndependentNoiseIsZero) {
  const EvaluationResult r = DarkMatterRun(/*linear_error=*/false);
  ASSERT_TRUE(r.dark_matter_share.has_value());
  EXPECT_LT(std::abs(*r.dark_matter_share), 0.05);
}

// --- the SAEBench JSON ---

std::set<std::string> KeysOf(const google::protobuf::Struct& s) {
  std::set<std::string> keys;
  for (const auto& [k, v] : s.fields()) keys.insert(k);
  return keys;
}

const google::protobuf::Struct& Child(const google::protobuf::Struct& s, const std::string& key) {
  static const google::protobuf::Struct kEmpty;
  auto it = s.fields().find(key);
  if (it == s.fields().end() || !it->second.has_struct_value()) {
    ADD_FAILURE() << key << " is not an object";
    return kEmpty;
  }
  return it->second.struct_value();
}

bool IsNull(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it != s.fields().end() && it->second.has_null_value();
}

// The text with string literals removed (what a NaN token would hide in).
std::string OutsideStrings(const std::string& json) {
  std::string out;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else {
      out += c;
    }
  }
  return out;
}

std::set<std::string> AbsentList(const google::protobuf::Struct& report) {
  std::set<std::string> out;
  auto it = Child(report, "saedict").fields().find("absent_metrics");
  if (it == Child(report, "saedict").fields().end()) return out;
  for (const auto& v : it->second.list_value().values()) out.insert(v.string_value());
  return out;
}

google::protobuf::Struct ParseReport(const std::string& json) {
  EXPECT_EQ(OutsideStrings(json).find("NaN"), std::string::npos);
  EXPECT_EQ(OutsideStrings(json).find("nan"), std::string::npos);
  EXPECT_EQ(OutsideStrings(json).find("Infinity"), std::string::npos);
  EXPECT_EQ(OutsideStrings(json).find("inf"), std::string::npos);
  absl::StatusOr<google::protobuf::Struct> report =
      formats::ParseJsonObject(json, "report", /*nonfinite_as_null=*/false);
  EXPECT_THAT(report, IsOk()) << json;
  return report.ok() ? *report : google::protobuf::Struct();
}

const std::set<std::string> kAlwaysAbsent = {"model_behavior_preservation.kl_div_score",
                                             "model_behavior_preservation.kl_div_with_ablation",
                                             "model_behavior_preservation.kl_div_with_sae",
                                             "model_performance_preservation.ce_loss_score",
                                             "model_performance_preservation.ce_loss_with_ablation",
                                             "model_performance_preservation.ce_loss_with_sae",
                                             "model_performance_preservation.ce_loss_without_sae"};

TEST(SaeBenchJsonTest, CoreLayoutKeySets) {
  auto dict = TinyDictionary();
  Evaluation e(dict, ExampleOptions());
  ASSERT_THAT(AddExampleRows(e, 0, 4), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(const EvaluationResult r, e.Finish());
  SaeBenchContext c = SaeBenchContextFor(dict->config);
  c.eval_id = "run-1";
  c.dictionary_id = "tiny \"quoted\"\n";
  c.weights_sha256 = "ab12";
  c.source = "activations";
  c.datetime_epoch_millis = 1700000000123;
  c.context_size = 2;
  const std::string json = SaeBenchCoreJson(r, c);
  const google::protobuf::Struct report = ParseReport(json);

  EXPECT_EQ(
      KeysOf(report),
      (std::set<std::string>{
          "eval_type_id", "eval_config", "eval_id", "datetime_epoch_millis", "eval_result_metrics",
          "eval_result_details", "eval_result_unstructured", "sae_bench_commit_hash", "sae_lens_id",
          "sae_lens_release_id", "sae_lens_version", "sae_cfg_dict", "saedict"}));
  EXPECT_EQ(report.fields().at("eval_type_id").string_value(), "core");
  EXPECT_EQ(report.fields().at("eval_id").string_value(), "run-1");
  EXPECT_EQ(report.fields().at("datetime_epoch_millis").number_value(), 1700000000123.0);
  EXPECT_EQ(report.fields().at("sae_lens_id").string_value(), "tiny \"quoted\"\n");
  EXPECT_TRUE(IsNull(report, "eval_result_unstructured"));
  EXPECT_EQ(KeysOf(Child(report, "eval_config")),
            (std::set<std::string>{
                "model_name", "llm_dtype", "batch_size_prompts", "n_eval_reconstruction_batches",
                "n_eval_sparsity_variance_batches", "dataset", "context_size", "compute_kl",
                "compute_ce_loss", "compute_l2_norms", "compute_sparsity_metrics",
                "compute_variance_metrics", "compute_featurewise_density_statistics",
                "compute_featurewise_weight_based_metrics",
                "exclude_special_tokens_from_reconstruction", "verbose"}));
  EXPECT_EQ(Child(report, "eval_config").fields().at("context_size").number_value(), 2);
  EXPECT_EQ(Child(report, "eval_config").fields().at("dataset").string_value(), "activations");

  const google::protobuf::Struct& metrics = Child(report, "eval_result_metrics");
  EXPECT_EQ(KeysOf(metrics),
            (std::set<std::string>{"model_behavior_preservation", "model_performance_preservation",
                                   "reconstruction_quality", "shrinkage", "sparsity", "token_stats",
                                   "misc_metrics"}));
  EXPECT_EQ(KeysOf(Child(metrics, "model_behavior_preservation")),
            (std::set<std::string>{"kl_div_score", "kl_div_with_ablation", "kl_div_with_sae"}));
  EXPECT_TRUE(IsNull(Child(metrics, "model_behavior_preservation"), "kl_div_score"));
  EXPECT_EQ(KeysOf(Child(metrics, "model_performance_preservation")),
            (std::set<std::string>{"ce_loss_score", "ce_loss_with_ablation", "ce_loss_with_sae",
                                   "ce_loss_without_sae"}));
  EXPECT_TRUE(IsNull(Child(metrics, "model_performance_preservation"), "ce_loss_without_sae"));
  EXPECT_EQ(
      KeysOf(Child(metrics, "reconstruction_quality")),
      (std::set<std::string>{"explained_variance", "explained_variance_legacy", "mse", "cossim"}));
  EXPECT_EQ(KeysOf(Child(metrics, "shrinkage")),
            (std::set<std::string>{"l2_norm_in", "l2_norm_out", "l2_ratio",
                                   "relative_reconstruction_bias"}));
  EXPECT_EQ(KeysOf(Child(metrics, "sparsity")), (std::set<std::string>{"l0", "l1"}));
  EXPECT_EQ(KeysOf(Child(metrics, "token_stats")),
            (std::set<std::string>{"total_tokens_eval_reconstruction",
                                   "total_tokens_eval_sparsity_variance"}));
  EXPECT_EQ(KeysOf(Child(metrics, "misc_metrics")),
            (std::set<std::string>{
                "freq_over_1_percent", "freq_over_10_percent", "normalized_freq_over_1_percent",
                "normalized_freq_over_10_percent", "average_max_encoder_cosine_sim",
                "average_max_decoder_cosine_sim", "frac_alive"}));
  // Values survive the round trip.
  EXPECT_EQ(Child(metrics, "sparsity").fields().at("l0").number_value(), 1.25);
  EXPECT_EQ(Child(metrics, "reconstruction_quality").fields().at("mse").number_value(), *r.mse);
  EXPECT_EQ(Child(metrics, "reconstruction_quality").fields().at("cossim").number_value(),
            *r.cossim);
  EXPECT_EQ(
      Child(metrics, "token_stats").fields().at("total_tokens_eval_reconstruction").number_value(),
      4);

  const auto& details = report.fields().at("eval_result_details").list_value();
  ASSERT_EQ(details.values_size(), 3);
  for (const auto& d : details.values()) {
    EXPECT_EQ(KeysOf(d.struct_value()),
              (std::set<std::string>{"index", "feature_density", "consistent_activation_heuristic",
                                     "encoder_bias", "encoder_norm", "encoder_decoder_cosine_sim",
                                     "max_decoder_cosine_sim", "max_encoder_cosine_sim"}));
  }
  EXPECT_EQ(details.values(1).struct_value().fields().at("index").number_value(), 1);
  EXPECT_EQ(details.values(0).struct_value().fields().at("feature_density").number_value(), 0.75);
  // The dead feature's heuristic is SAEBench's NaN: null here.
  EXPECT_TRUE(IsNull(details.values(2).struct_value(), "consistent_activation_heuristic"));

  EXPECT_EQ(
      KeysOf(Child(report, "sae_cfg_dict")),
      (std::set<std::string>{"architecture", "d_in", "d_sae", "dtype", "hook_name", "model_name",
                             "apply_b_dec_to_input", "normalize_activations", "k"}));
  EXPECT_EQ(Child(report, "sae_cfg_dict").fields().at("architecture").string_value(), "standard");
  EXPECT_EQ(Child(report, "sae_cfg_dict").fields().at("d_sae").number_value(), 3);
  EXPECT_TRUE(IsNull(Child(report, "sae_cfg_dict"), "k"));

  const google::protobuf::Struct& extra = Child(report, "saedict");
  EXPECT_EQ(
      KeysOf(extra),
      (std::set<std::string>{
          "dictionary_id", "weights_sha256", "source", "tokens", "prompts", "prompt_boundaries",
          "tokens_with_activations", "mse_sum_over_dims", "dark_matter_share",
          "dark_matter_train_tokens", "dark_matter_test_tokens", "dark_matter_max_tokens",
          "dark_matter_ridge", "legacy_batch_tokens", "absent_metrics", "null_values"}));
  EXPECT_EQ(extra.fields().at("mse_sum_over_dims").number_value(), 2.25 / 4);
  EXPECT_EQ(extra.fields().at("weights_sha256").string_value(), "ab12");
  EXPECT_TRUE(IsNull(extra, "dark_matter_share"));
  std::set<std::string> want = kAlwaysAbsent;
  want.insert("saedict.dark_matter_share");  // disabled in ExampleOptions
  EXPECT_EQ(AbsentList(report), want);
}

TEST(SaeBenchJsonTest, CorpusReportListsReconstructionAsAbsent) {
  auto dict = TinyDictionary();
  Evaluation e(dict, {});
  ASSERT_THAT(e.AddDocumentCodes(Codes(3, kRows)), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(const EvaluationResult r, e.Finish());
  SaeBenchContext c = SaeBenchContextFor(dict->config);
  c.source = "corpus:tiny";
  const google::protobuf::Struct report = ParseReport(SaeBenchCoreJson(r, c));
  const google::protobuf::Struct& metrics = Child(report, "eval_result_metrics");
  for (const char* k : {"explained_variance", "explained_variance_legacy", "mse", "cossim"}) {
    EXPECT_TRUE(IsNull(Child(metrics, "reconstruction_quality"), k)) << k;
  }
  for (const char* k : {"l2_norm_in", "l2_norm_out", "l2_ratio", "relative_reconstruction_bias"}) {
    EXPECT_TRUE(IsNull(Child(metrics, "shrinkage"), k)) << k;
  }
  EXPECT_EQ(Child(metrics, "sparsity").fields().at("l0").number_value(), 1.25);
  EXPECT_FALSE(Child(report, "eval_config").fields().at("compute_variance_metrics").bool_value());
  std::set<std::string> want = kAlwaysAbsent;
  for (const char* k :
       {"reconstruction_quality.explained_variance",
        "reconstruction_quality.explained_variance_legacy", "reconstruction_quality.mse",
        "reconstruction_quality.cossim", "shrinkage.l2_norm_in", "shrinkage.l2_norm_out",
        "shrinkage.l2_ratio", "shrinkage.relative_reconstruction_bias", "saedict.mse_sum_over_dims",
        "saedict.dark_matter_share"}) {
    want.insert(k);
  }
  EXPECT_EQ(AbsentList(report), want);
}

// --- error paths ---

TEST(EvaluationErrorTest, RejectsBadInputAndChangesNothing) {
  Evaluation e(TinyDictionary(), {});
  const SparseCodes two = EmptyRows(3, 2);
  const std::vector<float> four = {1, 2, 3, 4}, three = {1, 2, 3};
  EXPECT_THAT(e.AddActivations(three, two, four),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x: 3 values for 2 rows")));
  EXPECT_THAT(e.AddActivations(four, two, three),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x_hat: 3 values")));
  EXPECT_THAT(e.AddActivations(four, EmptyRows(5, 2), four),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_features 5")));
  EXPECT_THAT(e.AddDocumentCodes(EmptyRows(5, 2)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("d_sae 3")));
  const std::vector<float> nan_x = {1, 2, std::nanf(""), 4};
  EXPECT_THAT(e.AddActivations(nan_x, two, four),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x: row 1 column 0")));
  const std::vector<float> inf_x = {1, 2, 3, INFINITY};
  EXPECT_THAT(e.AddActivations(four, two, inf_x),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x_hat: row 1 column 1")));
  SparseCodes bad = Codes(3, {{{7, 1.0f}}, {}});  // feature 7 >= num_features
  EXPECT_THAT(e.AddActivations(four, bad, four),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("codes")));
  EXPECT_EQ(e.tokens(), 0);
  EXPECT_THAT(e.Finish(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no rows")));

  ASSERT_THAT(e.AddActivations(four, two, four), IsOk());
  EXPECT_EQ(e.tokens(), 2);
  ASSERT_THAT(e.Finish(), IsOk());
  EXPECT_THAT(e.Finish(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("finished")));
  EXPECT_THAT(e.AddDocumentCodes(two),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("finished")));
}

TEST(EvaluationErrorTest, BadOptionsAndDictionary) {
  EvaluationOptions o;
  o.legacy_batch_tokens = 0;
  Evaluation bad_options(TinyDictionary(), o);
  EXPECT_THAT(bad_options.AddDocumentCodes(EmptyRows(3, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("legacy_batch_tokens")));
  o = {};
  o.dark_matter_ridge = 0;
  Evaluation bad_ridge(TinyDictionary(), o);
  EXPECT_THAT(bad_ridge.Finish(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dark_matter_ridge")));
  Evaluation no_dictionary(nullptr, {});
  EXPECT_THAT(no_dictionary.AddDocumentCodes(EmptyRows(3, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no dictionary")));
  auto broken = std::make_shared<engine::Dictionary>(*TinyDictionary());
  broken->b_enc.pop_back();
  Evaluation invalid(broken, {});
  EXPECT_THAT(invalid.AddDocumentCodes(EmptyRows(3, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("b_enc")));
}

TEST(EvaluationErrorTest, FinishCanBeCancelled) {
  Evaluation e(RandomDictionary(16, 1024, 5), {});
  ASSERT_THAT(e.AddDocumentCodes(EmptyRows(1024, 3)), IsOk());
  EXPECT_THAT(e.Finish([] { return true; }), StatusIs(absl::StatusCode::kCancelled, ::testing::_));
}

// --- other architectures' weight metrics ---

TEST(EvaluationTest, GatedBiasIsBMagAndTiedMatchingPursuitUsesTheDecoder) {
  auto gated = std::make_shared<engine::Dictionary>(*TinyDictionary());
  gated->config.architecture = engine::Architecture::kGated;
  gated->b_enc.clear();
  gated->b_gate = {9, 9, 9};
  gated->b_mag = {1.5f, 2.5f, 3.5f};
  gated->r_mag = {0, 0, 0};
  ASSERT_THAT(gated->Validate(), IsOk());
  Evaluation g(gated, {});
  ASSERT_THAT(g.AddDocumentCodes(EmptyRows(3, 1)), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(const EvaluationResult rg, g.Finish());
  EXPECT_EQ(rg.features[1].encoder_bias, 2.5);

  auto mp = std::make_shared<engine::Dictionary>(*TinyDictionary());
  mp->config.architecture = engine::Architecture::kMatchingPursuit;
  mp->config.k = 2;
  mp->w_enc.clear();
  mp->b_enc.clear();
  ASSERT_THAT(mp->Validate(), IsOk());
  Evaluation m(mp, {});
  ASSERT_THAT(m.AddDocumentCodes(EmptyRows(3, 1)), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(const EvaluationResult rm, m.Finish());
  EXPECT_EQ(rm.features[0].encoder_bias, 0.0);  // SAEBench's zeros: no encoder bias
  EXPECT_NEAR(rm.features[2].encoder_norm, 1.25, kTol);
  EXPECT_NEAR(rm.features[2].encoder_decoder_cosine_sim, 1.0, kTol);
  EXPECT_NEAR(rm.features[0].max_encoder_cosine_sim, 0.6, kTol);
  EXPECT_NEAR(rm.average_max_encoder_cosine_sim, 2.2 / 3, kTol);
}

TEST(EvaluationTest, OneFeatureHasNoMaxCosine) {
  auto d = RandomDictionary(4, 1, 9);
  Evaluation e(d, {});
  ASSERT_THAT(e.AddDocumentCodes(EmptyRows(1, 2)), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(const EvaluationResult r, e.Finish());
  EXPECT_TRUE(std::isnan(r.average_max_decoder_cosine_sim));
  EXPECT_TRUE(std::isnan(r.features[0].max_encoder_cosine_sim));
  const google::protobuf::Struct report =
      ParseReport(SaeBenchCoreJson(r, SaeBenchContextFor(d->config)));
  EXPECT_TRUE(IsNull(Child(Child(report, "eval_result_metrics"), "misc_metrics"),
                     "average_max_decoder_cosine_sim"));
  EXPECT_EQ(AbsentList(report).count("misc_metrics.average_max_encoder_cosine_sim"), 1u);
}

// --- stories260k: the float64 reference ---

struct StoriesCase {
  const char* sae;
};

void PrintTo(const StoriesCase& c, std::ostream* os) { *os << c.sae; }

class Stories260kEvaluationTest : public ::testing::TestWithParam<StoriesCase> {};

double Number(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  EXPECT_TRUE(it != s.fields().end()) << key;
  return it == s.fields().end() ? NAN : it->second.number_value();
}

void ExpectRelative(double got, double want, double tolerance, const char* what) {
  EXPECT_LE(std::abs(got - want), tolerance * std::abs(want))
      << what << ": got " << got << ", reference " << want;
}

// Max cosine with another feature, brute force in float64.
std::vector<double> BruteMaxCosine(const engine::Dictionary& d, index::DirectionKind kind) {
  const int64_t n = d.config.d_sae, dim = d.config.d_in;
  std::vector<double> unit(n * dim);
  for (int64_t i = 0; i < n; ++i) {
    double norm = 0;
    for (int64_t j = 0; j < dim; ++j) {
      const double v =
          kind == index::DirectionKind::kDecoder ? d.w_dec[i * dim + j] : d.w_enc[j * n + i];
      unit[i * dim + j] = v;
      norm += v * v;
    }
    for (int64_t j = 0; j < dim; ++j) unit[i * dim + j] /= std::sqrt(norm);
  }
  std::vector<double> best(n, -2);
  for (int64_t a = 0; a < n; ++a) {
    for (int64_t b = 0; b < n; ++b) {
      if (a == b) continue;
      double c = 0;
      for (int64_t j = 0; j < dim; ++j) c += unit[a * dim + j] * unit[b * dim + j];
      best[a] = std::max(best[a], c);
    }
  }
  return best;
}

// TopK rows whose float32 codes (from `encoder`) keep a different set of
// latents than the float64 top k; each must be a near tie (the k-th and
// (k+1)-th float64 pre-activations within 1e-5). Counts, per feature, the
// rows where it is in one set and not the other. Returns the number of rows.
int64_t NearTieSwaps(const engine::Dictionary& d, const std::vector<float>& acts,
                     const engine::Encoder& encoder, std::vector<int64_t>& rows_of) {
  const int64_t d_in = d.config.d_in, d_sae = d.config.d_sae, k = d.config.k;
  const int64_t n = static_cast<int64_t>(acts.size()) / d_in;
  absl::StatusOr<engine::EncodeResult> enc = encoder.Encode(acts, n);
  EXPECT_THAT(enc, IsOk());
  if (!enc.ok()) return 0;
  int64_t swaps = 0;
  std::vector<double> pre(d_sae), sorted(d_sae);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t f = 0; f < d_sae; ++f) pre[f] = d.b_enc[f];
    for (int64_t j = 0; j < d_in; ++j) {
      const double v = static_cast<double>(acts[r * d_in + j]) - d.b_dec[j];
      for (int64_t f = 0; f < d_sae; ++f) pre[f] += v * d.w_enc[j * d_sae + f];
    }
    sorted = pre;
    std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<>());
    const double kth = sorted[k - 1];
    const double next = *std::max_element(sorted.begin() + k, sorted.end());
    std::set<uint32_t> want, got;
    for (int64_t f = 0; f < d_sae; ++f) {
      if (pre[f] >= kth && pre[f] > 0) want.insert(static_cast<uint32_t>(f));
    }
    for (uint64_t i = enc->codes.row_offsets[r]; i < enc->codes.row_offsets[r + 1]; ++i) {
      if (enc->codes.values[i] != 0) got.insert(enc->codes.indices[i]);
    }
    if (want == got) continue;
    ++swaps;
    EXPECT_LT(kth - next, 1e-5) << "row " << r << " differs from float64 without a near tie";
    for (uint32_t f : want) rows_of[f] += got.count(f) == 0;
    for (uint32_t f : got) rows_of[f] += want.count(f) == 0;
  }
  return swaps;
}

TEST_P(Stories260kEvaluationTest, MatchesTheFloat64Reference) {
  SAEDICT_REQUIRE_STORIES260K(dir);
  const std::string sae = GetParam().sae;
  SAEDICT_ASSERT_OK_AND_ASSIGN(const std::string metrics_json,
                               formats::ReadFileToString(dir / "reference/metrics.json"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(const google::protobuf::Struct all,
                               formats::ParseJsonObject(metrics_json, "metrics.json"));
  ASSERT_TRUE(all.fields().count(sae)) << sae;
  const google::protobuf::Struct& ref = all.fields().at(sae).struct_value();
  const std::string acts_file = ref.fields().at("acts_file").string_value();

  SAEDICT_ASSERT_OK_AND_ASSIGN(formats::LoadedDictionary loaded,
                               formats::LoadDictionary(dir / sae));
  auto dict = std::make_shared<const engine::Dictionary>(std::move(loaded.dictionary));
  const int64_t d_in = dict->config.d_in;
  SAEDICT_ASSERT_OK_AND_ASSIGN(const formats::NpyArray npy, formats::ReadNpyFile(dir / acts_file));
  ASSERT_EQ(npy.dtype, formats::NpyDType::kF16);
  ASSERT_EQ(npy.shape, (std::vector<int64_t>{75317, d_in}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(const std::vector<float> acts,
                               formats::NpyToFloat32(npy, acts_file));

  // Document boundaries from docs.jsonl: one prompt per story.
  SAEDICT_ASSERT_OK_AND_ASSIGN(const std::string docs,
                               formats::ReadFileToString(dir / "docs.jsonl"));
  std::vector<std::pair<int64_t, int64_t>> spans;  // start, length
  std::istringstream lines(docs);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    SAEDICT_ASSERT_OK_AND_ASSIGN(const google::protobuf::Struct doc,
                                 formats::ParseJsonObject(line, "docs.jsonl"));
    spans.emplace_back(static_cast<int64_t>(Number(doc, "start")),
                       static_cast<int64_t>(Number(doc, "length")));
  }
  ASSERT_EQ(spans.size(), 300u);

  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<engine::Encoder> encoder,
                               engine::Encoder::Create(dict));
  engine::EncodeOptions encode;
  encode.return_reconstruction = true;
  Evaluation e(dict, {});
  int64_t expected_start = 0;
  for (const auto& [start, length] : spans) {
    ASSERT_EQ(start, expected_start);  // stories are back to back
    expected_start += length;
    const absl::Span<const float> x =
        absl::MakeConstSpan(acts).subspan(start * d_in, length * d_in);
    SAEDICT_ASSERT_OK_AND_ASSIGN(const engine::EncodeResult enc,
                                 encoder->Encode(x, length, encode));
    ASSERT_THAT(e.AddActivations(x, enc.codes, enc.reconstruction), IsOk());
    e.EndPrompt();
  }
  ASSERT_EQ(expected_start, 75317);
  SAEDICT_ASSERT_OK_AND_ASSIGN(const EvaluationResult r, e.Finish());

  EXPECT_EQ(r.tokens, 75317);
  EXPECT_EQ(r.prompts, 300);
  ExpectRelative(r.l0, Number(ref, "l0_mean"), 1e-4, "l0_mean");
  ExpectRelative(r.mse.value_or(NAN), Number(ref, "mse"), 1e-4, "mse");
  ExpectRelative(r.mse_sum_over_dims.value_or(NAN), Number(ref, "mse_sum_over_dims"), 1e-4,
                 "mse_sum_over_dims");
  ExpectRelative(r.explained_variance.value_or(NAN), Number(ref, "explained_variance"), 1e-4,
                 "explained_variance");
  EXPECT_EQ(1.0 - r.frac_alive, Number(ref, "dead_fraction"));
  std::printf(
      "[stories260k] %s: l0 %.10g (ref %.10g)  mse %.10g (ref %.10g)  "
      "mse_sum_over_dims %.10g (ref %.10g)  explained_variance %.10g (ref %.10g)  "
      "dead %g (ref %g)  ev_legacy %.6g  cossim %.6g  l2_ratio %.6g  "
      "dark_matter %.6g  avg_max_dec_cos %.6g\n",
      sae.c_str(), r.l0, Number(ref, "l0_mean"), *r.mse, Number(ref, "mse"), *r.mse_sum_over_dims,
      Number(ref, "mse_sum_over_dims"), *r.explained_variance, Number(ref, "explained_variance"),
      1.0 - r.frac_alive, Number(ref, "dead_fraction"), r.explained_variance_legacy.value_or(NAN),
      r.cossim.value_or(NAN), r.l2_ratio.value_or(NAN), r.dark_matter_share.value_or(NAN),
      r.average_max_decoder_cosine_sim);

  // Per-feature densities against <sae>_freq.npy, to 1e-6. TopK near ties
  // (README: the 16th and 17th pre-activations within 1e-5) may make the
  // float32 encoder keep the other latent: each such row, found here in
  // float64, allows its two latents one row of difference.
  SAEDICT_ASSERT_OK_AND_ASSIGN(const formats::NpyArray freq_npy,
                               formats::ReadNpyFile(dir / "reference" / (sae + "_freq.npy")));
  SAEDICT_ASSERT_OK_AND_ASSIGN(const std::vector<float> freq,
                               formats::NpyToFloat32(freq_npy, "freq"));
  ASSERT_EQ(freq.size(), r.features.size());
  std::vector<int64_t> tie_rows_of(freq.size(), 0);
  int64_t ties = 0;
  if (dict->config.architecture == engine::Architecture::kTopK) {
    ties = NearTieSwaps(*dict, acts, *encoder, tie_rows_of);
    EXPECT_LE(ties, 20) << "rows where the float32 top-k differs from float64";
  }
  double worst = 0;
  for (size_t f = 0; f < freq.size(); ++f) {
    const double allowed = 1e-6 + static_cast<double>(tie_rows_of[f]) / 75317;
    EXPECT_NEAR(r.features[f].feature_density, freq[f], allowed) << "feature " << f;
    if (tie_rows_of[f] == 0) {
      worst = std::max(worst, std::abs(r.features[f].feature_density - freq[f]));
    }
  }
  std::printf("[stories260k] %s: largest density difference %.3g outside %lld near-tie rows\n",
              sae.c_str(), worst, static_cast<long long>(ties));

  // The exact index agrees with brute force.
  const std::vector<double> dec = BruteMaxCosine(*dict, index::DirectionKind::kDecoder);
  const std::vector<double> enc = BruteMaxCosine(*dict, index::DirectionKind::kEncoder);
  for (size_t f = 0; f < dec.size(); ++f) {
    EXPECT_NEAR(r.features[f].max_decoder_cosine_sim, dec[f], 1e-9) << f;
    EXPECT_NEAR(r.features[f].max_encoder_cosine_sim, enc[f], 1e-9) << f;
  }
}

INSTANTIATE_TEST_SUITE_P(AllSaes, Stories260kEvaluationTest,
                         ::testing::Values(StoriesCase{"topk_l2_a"}, StoriesCase{"topk_l2_b"},
                                           StoriesCase{"relu_l4"}, StoriesCase{"jumprelu_l2"}),
                         [](const auto& info) { return std::string(info.param.sae); });

// Timing (run with --gtest_also_run_disabled_tests): Finish on a 16384 x 2304
// dictionary, dominated by the two exact max-cosine searches.
TEST(EvaluationTimingTest, DISABLED_FinishAt16384x2304) {
  auto dict = RandomDictionary(2304, 16384, 1);
  Evaluation e(dict, {});
  ASSERT_THAT(e.AddDocumentCodes(EmptyRows(16384, 1)), IsOk());
  const auto start = std::chrono::steady_clock::now();
  SAEDICT_ASSERT_OK_AND_ASSIGN(const EvaluationResult r, e.Finish());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[timing] Finish 16384 x 2304: %.2f s (average max decoder cosine %.4f)\n", s,
              r.average_max_decoder_cosine_sim);
  // One direction kind alone: the index build and the neighbour precompute.
  const auto t0 = std::chrono::steady_clock::now();
  index::IndexConfig config;
  config.factory = "Flat";
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<index::FeatureIndex> idx,
      index::FeatureIndex::Build(dict, index::DirectionKind::kDecoder, config));
  const auto t1 = std::chrono::steady_clock::now();
  index::NeighbourOptions options;
  options.top_n = 1;
  ASSERT_THAT(index::PrecomputeNeighbours(
                  *idx, options,
                  [](int64_t, std::vector<std::vector<index::Hit>>) { return absl::OkStatus(); }),
              IsOk());
  const auto t2 = std::chrono::steady_clock::now();
  std::printf("[timing] decoder only: index build %.2f s, top-1 neighbours %.2f s\n",
              std::chrono::duration<double>(t1 - t0).count(),
              std::chrono::duration<double>(t2 - t1).count());
}

// Timing: the activation pass at d_in 2304 (131072 rows, all of them in the
// dark-matter fit: the dsyrk / dgemm moments dominate) and its Finish (the
// ridge solve).
TEST(EvaluationTimingTest, DISABLED_ActivationPassAt2304) {
  constexpr int64_t kD = 2304, kChunk = 4096, kChunks = 32;
  auto dict = RandomDictionary(kD, 64, 2);
  std::mt19937 rng(4);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(kChunk * kD), x_hat(kChunk * kD);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = normal(rng);
    x_hat[i] = 0.9f * x[i] + 0.1f * normal(rng);
  }
  EvaluationOptions options;
  if (getenv("SAEDICT_TIMING_NO_DARK_MATTER")) options.dark_matter_max_tokens = 0;
  Evaluation e(dict, options);
  const SparseCodes codes = EmptyRows(64, kChunk);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < kChunks; ++c) ASSERT_THAT(e.AddActivations(x, codes, x_hat), IsOk());
  const auto added = std::chrono::steady_clock::now();
  SAEDICT_ASSERT_OK_AND_ASSIGN(const EvaluationResult r, e.Finish());
  const auto done = std::chrono::steady_clock::now();
  std::printf(
      "[timing] %lld rows of d_in %lld: AddActivations %.2f s, Finish %.2f s "
      "(dark matter share %.4f)\n",
      static_cast<long long>(kChunk * kChunks), static_cast<long long>(kD),
      std::chrono::duration<double>(added - start).count(),
      std::chrono::duration<double>(done - added).count(), r.dark_matter_share.value_or(NAN));
}

}  // namespace
}  // namespace saedict::compare
