// SaeBenchCoreJson: an EvaluationResult as SAEBench's "core" eval output
// (sae_bench/evals/core/eval_output.py, CoreEvalOutput), so SAEBench's
// graphing and comparison notebooks read it, plus a "saedict" object with
// what SAEBench has no field for.
//
// Layout (every key below is always written, in this order):
//   eval_type_id "core", eval_config {model_name, llm_dtype,
//   batch_size_prompts, n_eval_reconstruction_batches,
//   n_eval_sparsity_variance_batches, dataset, context_size, compute_kl,
//   compute_ce_loss, compute_l2_norms, compute_sparsity_metrics,
//   compute_variance_metrics, compute_featurewise_density_statistics,
//   compute_featurewise_weight_based_metrics,
//   exclude_special_tokens_from_reconstruction, verbose}, eval_id,
//   datetime_epoch_millis, eval_result_metrics {model_behavior_preservation
//   {kl_div_score, kl_div_with_ablation, kl_div_with_sae},
//   model_performance_preservation {ce_loss_score, ce_loss_with_ablation,
//   ce_loss_with_sae, ce_loss_without_sae}, reconstruction_quality
//   {explained_variance, explained_variance_legacy, mse, cossim}, shrinkage
//   {l2_norm_in, l2_norm_out, l2_ratio, relative_reconstruction_bias},
//   sparsity {l0, l1}, token_stats {total_tokens_eval_reconstruction,
//   total_tokens_eval_sparsity_variance}, misc_metrics {freq_over_1_percent,
//   freq_over_10_percent, normalized_freq_over_1_percent,
//   normalized_freq_over_10_percent, average_max_encoder_cosine_sim,
//   average_max_decoder_cosine_sim, frac_alive}}, eval_result_details [one
//   {index, feature_density, consistent_activation_heuristic, encoder_bias,
//   encoder_norm, encoder_decoder_cosine_sim, max_decoder_cosine_sim,
//   max_encoder_cosine_sim} per feature], eval_result_unstructured (null),
//   sae_bench_commit_hash ("unknown": SAEBench did not run), sae_lens_id
//   (the dictionary id), sae_lens_release_id (null), sae_lens_version (null),
//   sae_cfg_dict {architecture, d_in, d_sae, dtype, hook_name, model_name,
//   apply_b_dec_to_input, normalize_activations, k}, saedict
//   {dictionary_id, weights_sha256, source, tokens, prompts,
//   prompt_boundaries, tokens_with_activations, mse_sum_over_dims,
//   dark_matter_share, dark_matter_train_tokens, dark_matter_test_tokens,
//   dark_matter_max_tokens, dark_matter_ridge, legacy_batch_tokens,
//   absent_metrics, null_values}.
//
// Absent is never zero: a metric that was not computed is null, and its path
// ("model_behavior_preservation.kl_div_score", "saedict.dark_matter_share",
// ...) is listed in saedict.absent_metrics. KL and CE need the language
// model, which saedict never runs, so those seven are always absent;
// reconstruction_quality and shrinkage are absent without activations. JSON
// has no NaN: any non-finite number is written as null (per feature: the
// consistent_activation_heuristic of a dead feature, SAEBench's NaN; the max
// cosines when d_sae == 1); saedict.null_values says so.
//
// SAEBench fields with no saedict meaning: eval_config.llm_dtype and
// batch_size_prompts and n_eval_sparsity_variance_batches are null (the
// caller computed the activations; rows come as sent, not in batches of
// prompts); n_eval_reconstruction_batches is 0 and compute_kl /
// compute_ce_loss false (no model run). token_stats: total_tokens_eval_
// reconstruction counts the rows whose reconstruction was measured (SAEBench
// counts its model-run batches there), total_tokens_eval_sparsity_variance
// all rows. eval_config.dataset is the context's source.
//
// Thread safety: pure functions.
#ifndef SAEDICT_COMPARE_SAEBENCH_JSON_H_
#define SAEDICT_COMPARE_SAEBENCH_JSON_H_

#include <cstdint>
#include <string>
#include <vector>

#include "compare/evaluation.h"
#include "engine/dictionary.h"

namespace saedict::compare {

struct SaeBenchContext {
  std::string eval_id;        // unique id of this run (SAEBench writes a UUID)
  std::string dictionary_id;  // saedict's id; also sae_lens_id
  std::string model_name;     // eval_config.model_name, sae_cfg_dict.model_name
  std::string architecture;   // engine::ArchitectureName
  std::string hook_name;
  std::string weights_sha256;  // engine::Encoder::content_sha256
  std::string source;          // "activations" or "corpus:<name>"
  int64_t d_in = 0;
  int64_t d_sae = 0;
  int64_t datetime_epoch_millis = 0;
  int64_t context_size = 128;  // EvaluationOptions::context_size the run used
  bool apply_b_dec_to_input = true;
  std::string normalize_activations = "none";  // engine::NormalizationName
  int32_t k = 0;                               // topk / matching pursuit; 0: none (null)
};

// The context fields a dictionary's config determines (model_name,
// architecture, hook_name, d_in, d_sae, apply_b_dec_to_input,
// normalize_activations, k); the caller fills in the rest.
SaeBenchContext SaeBenchContextFor(const engine::DictionaryConfig& config);

// The report, pretty-printed with two-space indentation (one line per
// feature in eval_result_details). Numbers are written in the shortest form
// that reads back to the same double.
std::string SaeBenchCoreJson(const EvaluationResult& result, const SaeBenchContext& context);

// The report's saedict.absent_metrics: the paths ("shrinkage.l2_ratio", ...)
// of the metrics `result` does not hold, in report order.
std::vector<std::string> AbsentMetrics(const EvaluationResult& result);

}  // namespace saedict::compare

#endif  // SAEDICT_COMPARE_SAEBENCH_JSON_H_
