// Wire <-> domain conversions (see proto_convert.h).
#include "service/proto_convert.h"

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace saedict::service {

v1::Architecture ToProto(engine::Architecture a) {
  switch (a) {
    case engine::Architecture::kStandard:
      return v1::ARCHITECTURE_STANDARD;
    case engine::Architecture::kTopK:
      return v1::ARCHITECTURE_TOPK;
    case engine::Architecture::kJumpReLU:
      return v1::ARCHITECTURE_JUMPRELU;
    case engine::Architecture::kGated:
      return v1::ARCHITECTURE_GATED;
    case engine::Architecture::kMatchingPursuit:
      return v1::ARCHITECTURE_MATCHING_PURSUIT;
  }
  return v1::ARCHITECTURE_UNSPECIFIED;
}

v1::Normalization ToProto(engine::Normalization n) {
  switch (n) {
    case engine::Normalization::kNone:
      return v1::NORMALIZATION_NONE;
    case engine::Normalization::kConstantNormRescale:
      return v1::NORMALIZATION_CONSTANT_NORM_RESCALE;
    case engine::Normalization::kLayerNorm:
      return v1::NORMALIZATION_LAYER_NORM;
  }
  return v1::NORMALIZATION_NONE;
}

v1::SourceFormat ToProto(formats::SourceFormat f) {
  switch (f) {
    case formats::SourceFormat::kSaeLens:
      return v1::SOURCE_FORMAT_SAELENS;
    case formats::SourceFormat::kSparsify:
      return v1::SOURCE_FORMAT_SPARSIFY;
    case formats::SourceFormat::kGemmaScope:
      return v1::SOURCE_FORMAT_GEMMA_SCOPE;
    case formats::SourceFormat::kGemmaScope2:
      return v1::SOURCE_FORMAT_GEMMA_SCOPE_2;
    case formats::SourceFormat::kAuto:
      break;
  }
  return v1::SOURCE_FORMAT_AUTO;
}

absl::StatusOr<formats::SourceFormat> FromProto(v1::SourceFormat f) {
  switch (f) {
    case v1::SOURCE_FORMAT_AUTO:
      return formats::SourceFormat::kAuto;
    case v1::SOURCE_FORMAT_SAELENS:
      return formats::SourceFormat::kSaeLens;
    case v1::SOURCE_FORMAT_SPARSIFY:
      return formats::SourceFormat::kSparsify;
    case v1::SOURCE_FORMAT_GEMMA_SCOPE:
      return formats::SourceFormat::kGemmaScope;
    case v1::SOURCE_FORMAT_GEMMA_SCOPE_2:
      return formats::SourceFormat::kGemmaScope2;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("format: ", static_cast<int>(f), " (", v1::SourceFormat_Name(f),
                       ") cannot be loaded; expected AUTO, SAELENS, SPARSIFY, GEMMA_SCOPE or "
                       "GEMMA_SCOPE_2"));
  }
}

v1::DType ToProto(formats::DType d) {
  switch (d) {
    case formats::DType::kF32:
      return v1::DTYPE_F32;
    case formats::DType::kF16:
      return v1::DTYPE_F16;
    case formats::DType::kBF16:
      return v1::DTYPE_BF16;
  }
  return v1::DTYPE_UNSPECIFIED;
}

// The fields every dictionary's info derives from its config and weights.
v1::DictionaryInfo InfoFromDictionary(const engine::Dictionary& d) {
  const engine::DictionaryConfig& c = d.config;
  v1::DictionaryInfo info;
  info.set_model_name(c.model_name);
  info.set_hook_name(c.hook_name);
  info.set_d_in(c.d_in);
  info.set_d_sae(c.d_sae);
  info.set_architecture(ToProto(c.architecture));
  info.set_k(c.k);
  info.set_normalization(ToProto(c.normalization));
  info.set_apply_b_dec_to_input(c.apply_b_dec_to_input);
  info.set_rescale_acts_by_decoder_norm(c.rescale_acts_by_decoder_norm);
  info.set_mp_residual_threshold(c.mp_residual_threshold);
  for (int64_t w : c.matryoshka_widths) info.add_matryoshka_widths(w);
  info.set_d_out(c.d_out);
  info.set_hook_name_out(c.hook_name_out);
  info.set_skip_connection(d.has_skip());
  info.set_weight_bytes(d.WeightBytes());
  return info;
}

v1::ComputeMode ToProto(engine::ComputeMode m) {
  switch (m) {
    case engine::ComputeMode::kBF16:
      return v1::COMPUTE_MODE_BF16;
    case engine::ComputeMode::kFastExact:
      return v1::COMPUTE_MODE_FAST_EXACT;
    case engine::ComputeMode::kF32:
      break;
  }
  return v1::COMPUTE_MODE_F32;
}

v1::ValuePrecision ToProto(storage::ValuePrecision p) {
  return p == storage::ValuePrecision::kF16 ? v1::VALUE_PRECISION_F16 : v1::VALUE_PRECISION_F32;
}

absl::StatusOr<storage::ValuePrecision> ToStorage(v1::ValuePrecision p) {
  switch (p) {
    case v1::VALUE_PRECISION_F32:
      return storage::ValuePrecision::kF32;
    case v1::VALUE_PRECISION_F16:
      return storage::ValuePrecision::kF16;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("value_precision: ", static_cast<int>(p),
                       " is not a ValuePrecision; expected F32 or F16"));
  }
}

absl::StatusOr<engine::ComputeMode> ToEngine(v1::ComputeMode m, absl::string_view field) {
  switch (m) {
    case v1::COMPUTE_MODE_F32:
      return engine::ComputeMode::kF32;
    case v1::COMPUTE_MODE_BF16:
      return engine::ComputeMode::kBF16;
    case v1::COMPUTE_MODE_FAST_EXACT:
      return engine::ComputeMode::kFastExact;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": ", static_cast<int>(m),
                       " is not a ComputeMode; expected F32, BF16 or FAST_EXACT"));
  }
}

absl::StatusOr<engine::EncodeOptions> ToEngine(const v1::EncodeOptions& o,
                                               const engine::Encoder& encoder) {
  const int64_t d_sae = encoder.dictionary().config.d_sae;
  if (o.top_k() < 0 || o.top_k() > d_sae) {
    return absl::InvalidArgumentError(absl::StrCat("options.top_k: ", o.top_k(),
                                                   " is out of range; expected 0 (the "
                                                   "dictionary's default) or 1..",
                                                   d_sae, " (d_sae)"));
  }
  engine::EncodeOptions out;
  out.top_k = o.top_k();
  out.return_reconstruction = o.return_reconstruction();
  out.return_row_error = o.return_error();
  if (o.has_compute_mode()) {
    SAEDICT_ASSIGN_OR_RETURN(out.compute_mode,
                             ToEngine(o.compute_mode(), "options.compute_mode"));
  } else {
    out.compute_mode = encoder.default_compute_mode();
  }
  return out;
}

absl::StatusOr<engine::FeatureEdit> ToEngine(const v1::FeatureEdit& e, int index) {
  engine::FeatureEdit out;
  out.feature = e.feature();
  out.value = e.value();
  out.rows.assign(e.rows().begin(), e.rows().end());
  switch (e.op()) {
    case v1::EDIT_OP_SET:
      out.op = engine::EditOp::kSet;
      break;
    case v1::EDIT_OP_ADD:
      out.op = engine::EditOp::kAdd;
      break;
    case v1::EDIT_OP_SCALE:
      out.op = engine::EditOp::kScale;
      break;
    case v1::EDIT_OP_ABLATE:
      out.op = engine::EditOp::kAblate;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "edits[", index, "].op: ", static_cast<int>(e.op()), " (", v1::EditOp_Name(e.op()),
          ") is not an edit; expected SET, ADD, SCALE or ABLATE"));
  }
  return out;
}

records::v1::DictionaryMetadata ToRecord(const v1::DictionaryInfo& info) {
  records::v1::DictionaryMetadata r;
  r.set_id(info.id());
  r.set_model_name(info.model_name());
  r.set_hook_name(info.hook_name());
  r.set_d_in(info.d_in());
  r.set_d_sae(info.d_sae());
  r.set_architecture(info.architecture());
  r.set_k(info.k());
  r.set_normalization(info.normalization());
  r.set_apply_b_dec_to_input(info.apply_b_dec_to_input());
  r.set_rescale_acts_by_decoder_norm(info.rescale_acts_by_decoder_norm());
  r.set_source_format(info.source_format());
  r.set_source_path(info.source_path());
  r.set_source_dtype(info.source_dtype());
  r.set_weight_bytes(info.weight_bytes());
  if (info.has_loaded_at()) *r.mutable_loaded_at() = info.loaded_at();
  r.set_mp_residual_threshold(info.mp_residual_threshold());
  r.set_weights_sha256(info.weights_sha256());
  *r.mutable_matryoshka_widths() = info.matryoshka_widths();
  r.set_alias(info.alias());
  r.set_d_out(info.d_out());
  r.set_hook_name_out(info.hook_name_out());
  r.set_skip_connection(info.skip_connection());
  return r;
}

v1::DictionaryInfo FromRecord(const records::v1::DictionaryMetadata& r) {
  v1::DictionaryInfo info;
  info.set_id(r.id());
  info.set_model_name(r.model_name());
  info.set_hook_name(r.hook_name());
  info.set_d_in(r.d_in());
  info.set_d_sae(r.d_sae());
  info.set_architecture(static_cast<v1::Architecture>(r.architecture()));
  info.set_k(r.k());
  info.set_normalization(static_cast<v1::Normalization>(r.normalization()));
  info.set_apply_b_dec_to_input(r.apply_b_dec_to_input());
  info.set_rescale_acts_by_decoder_norm(r.rescale_acts_by_decoder_norm());
  info.set_source_format(static_cast<v1::SourceFormat>(r.source_format()));
  info.set_source_path(r.source_path());
  info.set_source_dtype(static_cast<v1::DType>(r.source_dtype()));
  info.set_weight_bytes(r.weight_bytes());
  if (r.has_loaded_at()) *info.mutable_loaded_at() = r.loaded_at();
  info.set_mp_residual_threshold(r.mp_residual_threshold());
  info.set_weights_sha256(r.weights_sha256());
  *info.mutable_matryoshka_widths() = r.matryoshka_widths();
  info.set_alias(r.alias());
  info.set_d_out(r.d_out());
  info.set_hook_name_out(r.hook_name_out());
  info.set_skip_connection(r.skip_connection());
  return info;
}

}  // namespace saedict::service
