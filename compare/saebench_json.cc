// SaeBenchCoreJson (see saebench_json.h): a small streaming JSON writer
// (indentation, escaping, shortest round-trip doubles, null for absent or
// non-finite values) and the SAEBench core layout on top of it.
#include "compare/saebench_json.h"

#include <array>
#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"

namespace saedict::compare {
namespace {

class JsonWriter {
 public:
  // `inline_object`: the whole object on one line.
  void BeginObject(bool inline_object = false) { Open('{', inline_object); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('[', false); }
  void EndArray() { Close(']'); }

  void Key(std::string_view key) {
    Separate();
    Quote(key);
    out_ += ": ";
    after_key_ = true;
  }

  void Null() { Scalar("null"); }
  void Bool(bool b) { Scalar(b ? "true" : "false"); }
  void Int(int64_t v) { Scalar(absl::StrCat(v)); }
  void String(std::string_view s) {
    Separate();
    Quote(s);
  }
  void Double(double v) {
    if (!std::isfinite(v)) return Null();
    char buf[64];
    const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), v);
    std::string s(buf, r.ptr);
    // Keep floats recognisable as floats (16.0, not 16).
    if (s.find_first_of(".e") == std::string::npos) s += ".0";
    Scalar(s);
  }
  void Double(const std::optional<double>& v) { v ? Double(*v) : Null(); }

  // Shorthands for "key": value.
  template <typename T>
  void Field(std::string_view key, const T& value) {
    Key(key);
    Value(value);
  }

  std::string Take() && {
    out_ += '\n';
    return std::move(out_);
  }

 private:
  struct Level {
    bool first = true;
    bool inline_level = false;
  };

  void Value(double v) { Double(v); }
  void Value(const std::optional<double>& v) { Double(v); }
  void Value(int64_t v) { Int(v); }
  void Value(int v) { Int(v); }
  void Value(bool v) { Bool(v); }
  void Value(const std::string& v) { String(v); }
  void Value(const char* v) { String(v); }
  void Value(std::nullptr_t) { Null(); }

  bool Inline() const { return !stack_.empty() && stack_.back().inline_level; }

  void Newline() {
    out_ += '\n';
    out_.append(2 * stack_.size(), ' ');
  }

  // Before a value or key: the comma and line break it needs.
  void Separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (stack_.empty()) return;
    if (!stack_.back().first) out_ += Inline() ? ", " : ",";
    if (!Inline()) Newline();
    stack_.back().first = false;
  }

  void Scalar(std::string_view text) {
    Separate();
    out_ += text;
  }

  void Open(char c, bool inline_object) {
    Separate();
    out_ += c;
    stack_.push_back({true, inline_object || Inline()});
  }

  void Close(char c) {
    const Level level = stack_.back();
    stack_.pop_back();
    if (!level.first && !level.inline_level) Newline();
    out_ += c;
  }

  void Quote(std::string_view s) {
    out_ += '"';
    for (const char ch : s) {
      const unsigned char u = static_cast<unsigned char>(ch);
      switch (ch) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default:
          if (u < 0x20) {
            static const char kHex[] = "0123456789abcdef";
            out_ += "\\u00";
            out_ += kHex[u >> 4];
            out_ += kHex[u & 15];
          } else {
            out_ += ch;  // UTF-8 passes through
          }
      }
    }
    out_ += '"';
  }

  std::string out_;
  std::vector<Level> stack_;
  bool after_key_ = false;
};

bool Present(const std::optional<double>& v) { return v.has_value() && std::isfinite(*v); }

// The reconstruction_quality and shrinkage groups by name, in report order
// (AbsentMetrics and the writer walk the same tables).
using NamedMetric = std::pair<const char*, const std::optional<double>*>;
std::array<NamedMetric, 4> ReconstructionMetrics(const EvaluationResult& r) {
  return {{{"explained_variance", &r.explained_variance},
           {"explained_variance_legacy", &r.explained_variance_legacy},
           {"mse", &r.mse},
           {"cossim", &r.cossim}}};
}
std::array<NamedMetric, 4> ShrinkageMetrics(const EvaluationResult& r) {
  return {{{"l2_norm_in", &r.l2_norm_in},
           {"l2_norm_out", &r.l2_norm_out},
           {"l2_ratio", &r.l2_ratio},
           {"relative_reconstruction_bias", &r.relative_reconstruction_bias}}};
}

}  // namespace

SaeBenchContext SaeBenchContextFor(const engine::DictionaryConfig& config) {
  SaeBenchContext c;
  c.model_name = config.model_name;
  c.architecture = engine::ArchitectureName(config.architecture);
  c.hook_name = config.hook_name;
  c.d_in = config.d_in;
  c.d_sae = config.d_sae;
  c.apply_b_dec_to_input = config.apply_b_dec_to_input;
  c.normalize_activations = engine::NormalizationName(config.normalization);
  c.k = config.k;
  return c;
}

std::vector<std::string> AbsentMetrics(const EvaluationResult& r) {
  std::vector<std::string> absent;
  for (const char* m : {"kl_div_score", "kl_div_with_ablation", "kl_div_with_sae"}) {
    absent.push_back(absl::StrCat("model_behavior_preservation.", m));
  }
  for (const char* m :
       {"ce_loss_score", "ce_loss_with_ablation", "ce_loss_with_sae", "ce_loss_without_sae"}) {
    absent.push_back(absl::StrCat("model_performance_preservation.", m));
  }
  const auto reconstruction = ReconstructionMetrics(r);
  const auto shrinkage = ShrinkageMetrics(r);
  for (const auto& [name, value] : reconstruction) {
    if (!Present(*value)) absent.push_back(absl::StrCat("reconstruction_quality.", name));
  }
  for (const auto& [name, value] : shrinkage) {
    if (!Present(*value)) absent.push_back(absl::StrCat("shrinkage.", name));
  }
  if (!std::isfinite(r.average_max_encoder_cosine_sim)) {
    absent.push_back("misc_metrics.average_max_encoder_cosine_sim");
  }
  if (!std::isfinite(r.average_max_decoder_cosine_sim)) {
    absent.push_back("misc_metrics.average_max_decoder_cosine_sim");
  }
  if (!Present(r.mse_sum_over_dims)) absent.push_back("saedict.mse_sum_over_dims");
  if (!Present(r.dark_matter_share)) absent.push_back("saedict.dark_matter_share");
  return absent;
}

std::string SaeBenchCoreJson(const EvaluationResult& r, const SaeBenchContext& c) {
  const bool activations = r.tokens_with_activations > 0;
  const auto reconstruction = ReconstructionMetrics(r);
  const auto shrinkage = ShrinkageMetrics(r);
  const std::vector<std::string> absent = AbsentMetrics(r);

  JsonWriter w;
  w.BeginObject();
  w.Field("eval_type_id", "core");

  w.Key("eval_config");
  w.BeginObject();
  w.Field("model_name", c.model_name);
  w.Field("llm_dtype", nullptr);
  w.Field("batch_size_prompts", nullptr);
  w.Field("n_eval_reconstruction_batches", 0);
  w.Field("n_eval_sparsity_variance_batches", nullptr);
  w.Field("dataset", c.source);
  w.Field("context_size", c.context_size);
  w.Field("compute_kl", false);
  w.Field("compute_ce_loss", false);
  w.Field("compute_l2_norms", activations);
  w.Field("compute_sparsity_metrics", true);
  w.Field("compute_variance_metrics", activations);
  w.Field("compute_featurewise_density_statistics", true);
  w.Field("compute_featurewise_weight_based_metrics", true);
  w.Field("exclude_special_tokens_from_reconstruction", false);
  w.Field("verbose", false);
  w.EndObject();

  w.Field("eval_id", c.eval_id);
  w.Field("datetime_epoch_millis", c.datetime_epoch_millis);

  w.Key("eval_result_metrics");
  w.BeginObject();
  w.Key("model_behavior_preservation");
  w.BeginObject();
  w.Field("kl_div_score", nullptr);
  w.Field("kl_div_with_ablation", nullptr);
  w.Field("kl_div_with_sae", nullptr);
  w.EndObject();
  w.Key("model_performance_preservation");
  w.BeginObject();
  w.Field("ce_loss_score", nullptr);
  w.Field("ce_loss_with_ablation", nullptr);
  w.Field("ce_loss_with_sae", nullptr);
  w.Field("ce_loss_without_sae", nullptr);
  w.EndObject();
  w.Key("reconstruction_quality");
  w.BeginObject();
  for (const auto& [name, value] : reconstruction) w.Field(name, *value);
  w.EndObject();
  w.Key("shrinkage");
  w.BeginObject();
  for (const auto& [name, value] : shrinkage) w.Field(name, *value);
  w.EndObject();
  w.Key("sparsity");
  w.BeginObject();
  w.Field("l0", r.l0);
  w.Field("l1", r.l1);
  w.EndObject();
  w.Key("token_stats");
  w.BeginObject();
  w.Field("total_tokens_eval_reconstruction", r.tokens_with_activations);
  w.Field("total_tokens_eval_sparsity_variance", r.tokens);
  w.EndObject();
  w.Key("misc_metrics");
  w.BeginObject();
  w.Field("freq_over_1_percent", r.freq_over_1_percent);
  w.Field("freq_over_10_percent", r.freq_over_10_percent);
  w.Field("normalized_freq_over_1_percent", r.normalized_freq_over_1_percent);
  w.Field("normalized_freq_over_10_percent", r.normalized_freq_over_10_percent);
  w.Field("average_max_encoder_cosine_sim", r.average_max_encoder_cosine_sim);
  w.Field("average_max_decoder_cosine_sim", r.average_max_decoder_cosine_sim);
  w.Field("frac_alive", r.frac_alive);
  w.EndObject();
  w.EndObject();  // eval_result_metrics

  w.Key("eval_result_details");
  w.BeginArray();
  for (const EvaluationResult::Feature& f : r.features) {
    w.BeginObject(/*inline_object=*/true);
    w.Field("index", f.index);
    w.Field("feature_density", f.feature_density);
    w.Field("consistent_activation_heuristic", f.consistent_activation_heuristic);
    w.Field("encoder_bias", f.encoder_bias);
    w.Field("encoder_norm", f.encoder_norm);
    w.Field("encoder_decoder_cosine_sim", f.encoder_decoder_cosine_sim);
    w.Field("max_decoder_cosine_sim", f.max_decoder_cosine_sim);
    w.Field("max_encoder_cosine_sim", f.max_encoder_cosine_sim);
    w.EndObject();
  }
  w.EndArray();

  w.Field("eval_result_unstructured", nullptr);
  w.Field("sae_bench_commit_hash", "unknown");
  w.Field("sae_lens_id", c.dictionary_id);
  w.Field("sae_lens_release_id", nullptr);
  w.Field("sae_lens_version", nullptr);

  w.Key("sae_cfg_dict");
  w.BeginObject();
  w.Field("architecture", c.architecture);
  w.Field("d_in", c.d_in);
  w.Field("d_sae", c.d_sae);
  w.Field("dtype", "float32");
  w.Field("hook_name", c.hook_name);
  w.Field("model_name", c.model_name);
  w.Field("apply_b_dec_to_input", c.apply_b_dec_to_input);
  w.Field("normalize_activations", c.normalize_activations);
  w.Key("k");
  if (c.k > 0) {
    w.Int(c.k);
  } else {
    w.Null();
  }
  w.EndObject();

  w.Key("saedict");
  w.BeginObject();
  w.Field("dictionary_id", c.dictionary_id);
  w.Field("weights_sha256", c.weights_sha256);
  w.Field("source", c.source);
  w.Field("tokens", r.tokens);
  w.Field("prompts", r.prompts);
  w.Field("prompt_boundaries", r.prompts_from_boundaries ? "caller" : "context_size");
  w.Field("tokens_with_activations", r.tokens_with_activations);
  w.Field("mse_sum_over_dims", r.mse_sum_over_dims);
  w.Field("dark_matter_share", r.dark_matter_share);
  w.Field("dark_matter_train_tokens", r.dark_matter_train_tokens);
  w.Field("dark_matter_test_tokens", r.dark_matter_test_tokens);
  w.Field("dark_matter_max_tokens", r.options.dark_matter_max_tokens);
  w.Field("dark_matter_ridge", r.options.dark_matter_ridge);
  w.Field("legacy_batch_tokens", r.options.legacy_batch_tokens);
  w.Key("absent_metrics");
  w.BeginArray();
  for (const std::string& a : absent) w.String(a);
  w.EndArray();
  w.Field("null_values",
          "null marks a value that was not computed (listed in absent_metrics) or is undefined: "
          "the consistent_activation_heuristic of a feature that never fired (SAEBench: NaN) "
          "and the max cosines when d_sae is 1");
  w.EndObject();

  w.EndObject();
  return std::move(w).Take();
}

}  // namespace saedict::compare
