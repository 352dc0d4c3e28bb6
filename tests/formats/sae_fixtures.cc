// Small SAEs on disk for tests (see sae_fixtures.h).
#include "tests/formats/sae_fixtures.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "formats/codecs/file_io.h"
#include "formats/codecs/float_convert.h"
#include "formats/codecs/json.h"
#include "formats/codecs/npz.h"
#include "formats/codecs/safetensors.h"
#include "util/status_macros.h"

namespace saedict::testing {
namespace {

using engine::Architecture;
using engine::Dictionary;
using formats::DType;

std::vector<float> Uniform(std::mt19937_64& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

formats::FloatKind Kind(DType t) {
  switch (t) {
    case DType::kF16:
      return formats::FloatKind::kF16;
    case DType::kBF16:
      return formats::FloatKind::kBF16;
    case DType::kF32:
      break;
  }
  return formats::FloatKind::kF32;
}

formats::StDType StKind(DType t) {
  switch (t) {
    case DType::kF16:
      return formats::StDType::kF16;
    case DType::kBF16:
      return formats::StDType::kBF16;
    case DType::kF32:
      break;
  }
  return formats::StDType::kF32;
}

const char* TorchName(DType t) {
  switch (t) {
    case DType::kF16:
      return "float16";
    case DType::kBF16:
      return "bfloat16";
    case DType::kF32:
      break;
  }
  return "float32";
}

// Tensors encoded in one dtype; keeps the encoded bytes alive for writing.
class TensorSet {
 public:
  explicit TensorSet(DType dtype) : dtype_(dtype) {}
  void Add(const std::string& name, const std::vector<float>& v, std::vector<int64_t> shape) {
    bytes_.push_back(formats::EncodeFloats(v, Kind(dtype_)));
    tensors_.push_back({name, StKind(dtype_), std::move(shape), {}});
  }
  absl::Status Write(const std::filesystem::path& file) {
    for (size_t i = 0; i < tensors_.size(); ++i) tensors_[i].data = bytes_[i];
    return formats::WriteSafetensorsFile(file, tensors_, {{"format", "pt"}});
  }

 private:
  DType dtype_;
  std::vector<std::string> bytes_;
  std::vector<formats::SafetensorToWrite> tensors_;
};

absl::Status MakeDir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  return absl::OkStatus();
}

std::string Bool(bool b) { return b ? "true" : "false"; }

std::string SaeLensCfg(const Dictionary& d, DType dtype, bool pre_6_0) {
  const engine::DictionaryConfig& c = d.config;
  const Architecture a = c.architecture;
  const bool topk = a == Architecture::kTopK;
  std::string arch = engine::ArchitectureName(a);
  if (c.is_transcoder()) {  // SAELens's transcoder architectures
    arch = absl::StrCat(a == Architecture::kJumpReLU ? "jumprelu_" : "",
                        d.has_skip() ? "skip_" : "", "transcoder");
  }
  std::string out = "{\n";
  auto field = [&out](const std::string& key, const std::string& json_value) {
    absl::StrAppend(&out, out.size() > 2 ? ",\n" : "", "  ", formats::JsonQuote(key), ": ",
                    json_value);
  };
  if (!pre_6_0 || (a != Architecture::kStandard && !topk)) {
    field("architecture", formats::JsonQuote(arch));
  } else if (topk) {
    field("architecture", "\"standard\"");
  }
  field("d_in", absl::StrCat(c.d_in));
  field("d_sae", absl::StrCat(c.d_sae));
  if (c.is_transcoder()) field("d_out", absl::StrCat(c.d_out));
  field("dtype",
        formats::JsonQuote(pre_6_0 ? absl::StrCat("torch.", TorchName(dtype)) : TorchName(dtype)));
  field("device", "\"cpu\"");
  field("apply_b_dec_to_input", Bool(c.apply_b_dec_to_input));
  field("normalize_activations", formats::JsonQuote(engine::NormalizationName(c.normalization)));
  if (c.rescale_acts_by_decoder_norm) field("rescale_acts_by_decoder_norm", "true");
  if (a == Architecture::kMatchingPursuit) {
    field("k", absl::StrCat(c.k));
    field("residual_threshold", absl::StrFormat("%.9g", c.mp_residual_threshold));
  }
  if (pre_6_0) {
    field("activation_fn", topk ? "\"topk\"" : "\"relu\"");
    if (topk) field("activation_fn_kwargs", absl::StrCat("{\"k\": ", c.k, "}"));
    field("model_name", formats::JsonQuote(c.model_name));
    field("hook_point", formats::JsonQuote(c.hook_name));
    field("hook_point_layer", "0");
    field("finetuning_scaling_factor", "false");
  } else {
    if (topk) field("k", absl::StrCat(c.k));
    field("metadata",
          absl::StrCat("{\"model_name\": ", formats::JsonQuote(c.model_name),
                       ", \"hook_name\": ", formats::JsonQuote(c.hook_name),
                       c.is_transcoder()
                           ? absl::StrCat(", \"hook_name_out\": ", formats::JsonQuote(c.hook_name_out))
                           : "",
                       ", \"context_size\": 128, \"prepend_bos\": true}"));
  }
  out += "\n}\n";
  return out;
}

}  // namespace

Dictionary RandomDictionary(Architecture arch, int64_t d_in, int64_t d_sae, int32_t k,
                            uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Dictionary d;
  engine::DictionaryConfig& c = d.config;
  c.model_name = "fixture-model";
  c.hook_name = "blocks.0.hook_resid_pre";
  c.d_in = d_in;
  c.d_sae = d_sae;
  c.architecture = arch;
  const bool uses_k = arch == Architecture::kTopK || arch == Architecture::kMatchingPursuit;
  c.k = uses_k ? (k > 0 ? k : static_cast<int32_t>(std::min<int64_t>(8, d_sae))) : 0;
  d.w_dec.resize(static_cast<size_t>(d_sae * d_in));
  for (int64_t i = 0; i < d_sae; ++i) {
    float* row = &d.w_dec[i * d_in];
    double sq = 0;
    for (int64_t j = 0; j < d_in; ++j) {
      row[j] = normal(rng);
      sq += double{row[j]} * row[j];
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(std::max(sq, 1e-12)));
    for (int64_t j = 0; j < d_in; ++j) row[j] *= inv;
  }
  const bool tied = arch == Architecture::kMatchingPursuit;
  std::vector<float> noise = Uniform(rng, d_in * d_sae, -0.05f, 0.05f);
  d.w_enc.resize(d.w_dec.size());
  for (int64_t i = 0; i < d_sae; ++i) {
    for (int64_t j = 0; j < d_in; ++j) {
      d.w_enc[j * d_sae + i] = d.w_dec[i * d_in + j] + (tied ? 0.0f : noise[j * d_sae + i]);
    }
  }
  d.b_dec = Uniform(rng, d_in, -0.1f, 0.1f);
  if (arch == Architecture::kGated) {
    d.b_gate = Uniform(rng, d_sae, -0.2f, 0.05f);
    d.b_mag = Uniform(rng, d_sae, -0.1f, 0.1f);
    d.r_mag = Uniform(rng, d_sae, -0.2f, 0.2f);
  } else if (!tied) {
    d.b_enc = Uniform(rng, d_sae, -0.2f, 0.05f);
  }
  if (arch == Architecture::kJumpReLU) d.threshold = Uniform(rng, d_sae, 0.05f, 0.3f);
  return d;
}

Dictionary RandomTranscoder(Architecture arch, int64_t d_in, int64_t d_out, int64_t d_sae,
                            bool skip, uint64_t seed) {
  Dictionary d = RandomDictionary(arch, d_in, d_sae, 0, seed);
  engine::DictionaryConfig& c = d.config;
  c.hook_name = "blocks.0.ln2.hook_normalized";
  c.hook_name_out = "blocks.0.hook_mlp_out";
  c.d_out = d_out;
  c.apply_b_dec_to_input = false;
  std::mt19937_64 rng(seed + 1000);
  d.w_dec = Uniform(rng, d_sae * d_out, -0.3f, 0.3f);
  d.b_dec = Uniform(rng, d_out, -0.1f, 0.1f);
  if (skip) d.w_skip = Uniform(rng, d_out * d_in, -0.2f, 0.2f);
  return d;
}

std::vector<float> RandomActivations(int64_t n, int64_t d_in, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n * d_in));
  for (float& v : x) v = normal(rng);
  return x;
}

Dictionary RoundWeights(const Dictionary& d, DType dtype) {
  Dictionary out = d;
  const formats::FloatKind kind = Kind(dtype);
  for (std::vector<float>* t : {&out.w_enc, &out.b_enc, &out.w_dec, &out.b_dec, &out.threshold,
                                &out.b_gate, &out.b_mag, &out.r_mag, &out.w_skip}) {
    const std::string bytes = formats::EncodeFloats(*t, kind);
    formats::DecodeFloats(bytes, kind, t->data());
  }
  if (d.config.architecture == Architecture::kMatchingPursuit) {
    // Loaders rebuild the tied encoder from the rounded decoder.
    for (int64_t i = 0; i < d.config.d_sae; ++i) {
      for (int64_t j = 0; j < d.config.d_in; ++j) {
        out.w_enc[j * d.config.d_sae + i] = out.w_dec[i * d.config.d_in + j];
      }
    }
  }
  return out;
}

absl::Status WriteSaeLensFolder(const std::filesystem::path& dir, const Dictionary& d, DType dtype,
                                bool pre_6_0_cfg) {
  SAEDICT_RETURN_IF_ERROR(d.Validate());
  SAEDICT_RETURN_IF_ERROR(MakeDir(dir));
  const int64_t n_in = d.config.d_in, n_sae = d.config.d_sae, n_out = d.config.decoder_dim();
  TensorSet tensors(dtype);
  if (d.config.architecture != Architecture::kMatchingPursuit) {
    tensors.Add("W_enc", d.w_enc, {n_in, n_sae});
  }
  if (!d.b_enc.empty()) tensors.Add("b_enc", d.b_enc, {n_sae});
  tensors.Add("W_dec", d.w_dec, {n_sae, n_out});
  tensors.Add("b_dec", d.b_dec, {n_out});
  if (d.has_skip()) tensors.Add("W_skip", d.w_skip, {d.config.d_out, n_in});
  if (!d.threshold.empty()) tensors.Add("threshold", d.threshold, {n_sae});
  if (!d.b_gate.empty()) {
    tensors.Add("b_gate", d.b_gate, {n_sae});
    tensors.Add("b_mag", d.b_mag, {n_sae});
    tensors.Add("r_mag", d.r_mag, {n_sae});
  }
  SAEDICT_RETURN_IF_ERROR(tensors.Write(dir / "sae_weights.safetensors"));
  return formats::WriteFileAtomically(dir / "cfg.json", SaeLensCfg(d, dtype, pre_6_0_cfg));
}

absl::Status WriteSparsifyFolder(const std::filesystem::path& dir, const Dictionary& d,
                                 DType dtype) {
  SAEDICT_RETURN_IF_ERROR(d.Validate());
  const engine::DictionaryConfig& c = d.config;
  if (c.architecture != Architecture::kTopK || !c.apply_b_dec_to_input ||
      c.normalization != engine::Normalization::kNone || c.rescale_acts_by_decoder_norm) {
    return absl::InvalidArgumentError(
        "sparsify holds only topk SAEs that subtract b_dec, without normalization or rescaling");
  }
  SAEDICT_RETURN_IF_ERROR(MakeDir(dir));
  std::vector<float> enc_t(d.w_enc.size());
  for (int64_t j = 0; j < c.d_in; ++j) {
    for (int64_t i = 0; i < c.d_sae; ++i) enc_t[i * c.d_in + j] = d.w_enc[j * c.d_sae + i];
  }
  TensorSet tensors(dtype);
  tensors.Add("encoder.weight", enc_t, {c.d_sae, c.d_in});
  tensors.Add("encoder.bias", d.b_enc, {c.d_sae});
  tensors.Add("W_dec", d.w_dec, {c.d_sae, c.d_in});
  tensors.Add("b_dec", d.b_dec, {c.d_in});
  SAEDICT_RETURN_IF_ERROR(tensors.Write(dir / "sae.safetensors"));
  const std::string cfg =
      absl::StrCat("{\"activation\": \"topk\", \"k\": ", c.k, ", \"num_latents\": ", c.d_sae,
                   ", \"d_in\": ", c.d_in, ", \"normalize_decoder\": true, \"expansion_factor\": ",
                   std::max<int64_t>(1, c.d_sae / c.d_in),
                   ", \"multi_topk\": false, \"skip_connection\": false}\n");
  return formats::WriteFileAtomically(dir / "cfg.json", cfg);
}

namespace {

// b_enc for a format that does not subtract b_dec from the input:
// (x - b_dec) W + b = x W + (b - b_dec W).
std::vector<float> BEncWithoutBdec(const Dictionary& d) {
  const engine::DictionaryConfig& c = d.config;
  std::vector<float> b_enc = d.b_enc;
  if (!c.apply_b_dec_to_input) return b_enc;
  for (int64_t i = 0; i < c.d_sae; ++i) {
    double acc = 0;
    for (int64_t j = 0; j < c.d_in; ++j) acc += double{d.b_dec[j]} * d.w_enc[j * c.d_sae + i];
    b_enc[i] = static_cast<float>(b_enc[i] - acc);
  }
  return b_enc;
}

}  // namespace

absl::Status WriteGemmaScopeNpz(const std::filesystem::path& file, const Dictionary& d) {
  SAEDICT_RETURN_IF_ERROR(d.Validate());
  const engine::DictionaryConfig& c = d.config;
  if (c.architecture != Architecture::kJumpReLU ||
      c.normalization != engine::Normalization::kNone) {
    return absl::InvalidArgumentError("Gemma Scope holds only jumprelu SAEs without normalization");
  }
  const std::vector<float> b_enc = BEncWithoutBdec(d);
  if (file.has_parent_path()) SAEDICT_RETURN_IF_ERROR(MakeDir(file.parent_path()));
  std::map<std::string, formats::NpyArray> arrays;
  arrays["W_enc"] = formats::NpyFromFloat32({c.d_in, c.d_sae}, d.w_enc);
  arrays["W_dec"] = formats::NpyFromFloat32({c.d_sae, c.d_in}, d.w_dec);
  arrays["b_enc"] = formats::NpyFromFloat32({c.d_sae}, b_enc);
  arrays["b_dec"] = formats::NpyFromFloat32({c.d_in}, d.b_dec);
  arrays["threshold"] = formats::NpyFromFloat32({c.d_sae}, d.threshold);
  return formats::WriteNpzFile(file, arrays);
}

absl::Status WriteGemmaScope2Folder(const std::filesystem::path& dir, const Dictionary& d) {
  SAEDICT_RETURN_IF_ERROR(d.Validate());
  const engine::DictionaryConfig& c = d.config;
  if (c.architecture != Architecture::kJumpReLU ||
      c.normalization != engine::Normalization::kNone) {
    return absl::InvalidArgumentError(
        "Gemma Scope 2 holds only jumprelu SAEs without normalization");
  }
  SAEDICT_RETURN_IF_ERROR(MakeDir(dir));
  TensorSet tensors(DType::kF32);
  const int64_t d_out = c.decoder_dim();
  tensors.Add("w_enc", d.w_enc, {c.d_in, c.d_sae});
  tensors.Add("w_dec", d.w_dec, {c.d_sae, d_out});
  tensors.Add("b_enc", BEncWithoutBdec(d), {c.d_sae});
  tensors.Add("b_dec", d.b_dec, {d_out});
  tensors.Add("threshold", d.threshold, {c.d_sae});
  if (d.has_skip()) {  // affine_skip_connection [d_in, d_out] = W_skip^T
    std::vector<float> t(d.w_skip.size());
    for (int64_t o = 0; o < d_out; ++o) {
      for (int64_t j = 0; j < c.d_in; ++j) t[j * d_out + o] = d.w_skip[o * c.d_in + j];
    }
    tensors.Add("affine_skip_connection", t, {c.d_in, d_out});
  }
  return tensors.Write(dir / "params.safetensors");
}

absl::Status CompareDictionaries(const Dictionary& a, const Dictionary& b, float tol) {
  const engine::DictionaryConfig& x = a.config;
  const engine::DictionaryConfig& y = b.config;
  auto differ = [](const std::string& what, const auto& u, const auto& v) {
    return absl::InvalidArgumentError(absl::StrCat(what, " differs: ", u, " vs ", v));
  };
  if (x.model_name != y.model_name) return differ("model_name", x.model_name, y.model_name);
  if (x.hook_name != y.hook_name) return differ("hook_name", x.hook_name, y.hook_name);
  if (x.d_in != y.d_in) return differ("d_in", x.d_in, y.d_in);
  if (x.d_sae != y.d_sae) return differ("d_sae", x.d_sae, y.d_sae);
  if (x.d_out != y.d_out) return differ("d_out", x.d_out, y.d_out);
  if (x.hook_name_out != y.hook_name_out) {
    return differ("hook_name_out", x.hook_name_out, y.hook_name_out);
  }
  if (x.architecture != y.architecture) {
    return differ("architecture", engine::ArchitectureName(x.architecture),
                  engine::ArchitectureName(y.architecture));
  }
  if (x.apply_b_dec_to_input != y.apply_b_dec_to_input) {
    return differ("apply_b_dec_to_input", x.apply_b_dec_to_input, y.apply_b_dec_to_input);
  }
  if (x.normalization != y.normalization) {
    return differ("normalization", engine::NormalizationName(x.normalization),
                  engine::NormalizationName(y.normalization));
  }
  if (x.k != y.k) return differ("k", x.k, y.k);
  if (x.rescale_acts_by_decoder_norm != y.rescale_acts_by_decoder_norm) {
    return differ("rescale_acts_by_decoder_norm", x.rescale_acts_by_decoder_norm,
                  y.rescale_acts_by_decoder_norm);
  }
  if (!(std::fabs(x.mp_residual_threshold - y.mp_residual_threshold) <= tol)) {
    return differ("mp_residual_threshold", x.mp_residual_threshold, y.mp_residual_threshold);
  }
  const std::pair<const char*, std::vector<float> Dictionary::*> tensors[] = {
      {"W_enc", &Dictionary::w_enc},         {"b_enc", &Dictionary::b_enc},
      {"W_dec", &Dictionary::w_dec},         {"b_dec", &Dictionary::b_dec},
      {"threshold", &Dictionary::threshold}, {"b_gate", &Dictionary::b_gate},
      {"b_mag", &Dictionary::b_mag},         {"r_mag", &Dictionary::r_mag},
      {"W_skip", &Dictionary::w_skip},
  };
  for (const auto& [name, member] : tensors) {
    const std::vector<float>& u = a.*member;
    const std::vector<float>& v = b.*member;
    if (u.size() != v.size()) {
      return differ(absl::StrCat("size of ", name), u.size(), v.size());
    }
    for (size_t i = 0; i < u.size(); ++i) {
      if (!(std::fabs(u[i] - v[i]) <= tol)) {
        return differ(absl::StrCat(name, "[", i, "]"), u[i], v[i]);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace saedict::testing
