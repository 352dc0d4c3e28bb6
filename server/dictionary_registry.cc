#include "server/dictionary_registry.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "formats/dictionary_loader.h"
#include "server/path_guard.h"
#include "server/resource_name.h"
#include "util/log.h"
#include "util/status_macros.h"

namespace saedict::server {
namespace {

namespace fs = std::filesystem;

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
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("format: ", static_cast<int>(f), " (", v1::SourceFormat_Name(f),
                       ") cannot be loaded; expected AUTO, SAELENS, SPARSIFY or GEMMA_SCOPE"));
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
  info.set_weight_bytes(d.WeightBytes());
  return info;
}

}  // namespace

absl::Status ValidateDictionaryId(const std::string& id) {
  return ValidateResourceName(id, "id", "dictionary id");
}

DictionaryRegistry::DictionaryRegistry(const RegistryOptions& options, storage::Store* store)
    : options_(options), store_(store) {}

absl::StatusOr<std::unique_ptr<DictionaryRegistry>> DictionaryRegistry::Create(
    const RegistryOptions& options, storage::Store* store) {
  std::unique_ptr<DictionaryRegistry> registry(new DictionaryRegistry(options, store));
  std::error_code ec;
  fs::create_directories(registry->WeightsDir(), ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", registry->WeightsDir().string(), ": ", ec.message()));
  }
  SAEDICT_RETURN_IF_ERROR(registry->Restore());
  return registry;
}

fs::path DictionaryRegistry::WeightsDir() const { return options_.data_dir / "dictionaries"; }

absl::Status DictionaryRegistry::Restore() {
  SAEDICT_ASSIGN_OR_RETURN(std::vector<v1::DictionaryRecord> records, store_->ListDictionaries());
  std::set<std::string> referenced;
  for (v1::DictionaryRecord& record : records) {
    referenced.insert(record.weights_file());
    const std::string& id = record.info().id();
    absl::StatusOr<engine::Dictionary> dict =
        formats::ReadCanonical(WeightsDir() / record.weights_file());
    absl::StatusOr<std::unique_ptr<engine::Encoder>> encoder =
        dict.ok()
            ? engine::Encoder::Create(std::make_shared<const engine::Dictionary>(std::move(*dict)))
            : absl::StatusOr<std::unique_ptr<engine::Encoder>>(dict.status());
    if (!encoder.ok()) {
      LogError(absl::StrCat("dictionary '", id, "' not restored: ", encoder.status().ToString()));
      continue;
    }
    absl::MutexLock lock(&mu_);
    entries_[id] = Entry{record.info(), record.weights_file(), std::move(*encoder)};
  }
  // Canonical files no record points at are left-overs of interrupted loads.
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(WeightsDir(), ec)) {
    if (referenced.count(e.path().filename().string()) == 0) fs::remove(e.path(), ec);
  }
  LogInfo(absl::StrCat("restored ", entries_.size(), " of ", records.size(), " dictionaries"));
  return absl::OkStatus();
}

absl::Status DictionaryRegistry::ReserveId(const std::string& id, bool replace) {
  SAEDICT_RETURN_IF_ERROR(ValidateDictionaryId(id));
  absl::MutexLock lock(&mu_);
  if (loading_.count(id) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("dictionary '", id, "' is being loaded"));
  }
  if (!replace && entries_.count(id) != 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("dictionary '", id, "' already exists; set replace to overwrite it"));
  }
  loading_.insert(id);
  return absl::OkStatus();
}

void DictionaryRegistry::ReleaseId(const std::string& id) {
  absl::MutexLock lock(&mu_);
  loading_.erase(id);
}

absl::StatusOr<v1::DictionaryInfo> DictionaryRegistry::Load(
    const v1::LoadDictionaryRequest& request) {
  SAEDICT_RETURN_IF_ERROR(ReserveId(request.id(), request.replace()));
  auto load = [&]() -> absl::StatusOr<v1::DictionaryInfo> {
    SAEDICT_ASSIGN_OR_RETURN(fs::path path,
                             ResolveUnderRoot(options_.dictionary_root, request.path()));
    SAEDICT_ASSIGN_OR_RETURN(formats::SourceFormat format, FromProto(request.format()));
    SAEDICT_ASSIGN_OR_RETURN(formats::LoadedDictionary loaded,
                             formats::LoadDictionary(path, format));
    auto dict = std::make_shared<const engine::Dictionary>(std::move(loaded.dictionary));
    v1::DictionaryInfo info = InfoFromDictionary(*dict);
    info.set_source_format(ToProto(loaded.format));
    info.set_source_dtype(ToProto(loaded.source_dtype));
    info.set_source_path(request.path());
    return Publish(request.id(), request.replace(), std::move(dict), std::move(info));
  };
  absl::StatusOr<v1::DictionaryInfo> result = load();
  ReleaseId(request.id());
  return result;
}

absl::StatusOr<v1::DictionaryInfo> DictionaryRegistry::LoadBuilt(
    const std::string& id, std::shared_ptr<const engine::Dictionary> dict,
    const std::string& source_description) {
  SAEDICT_RETURN_IF_ERROR(ReserveId(id, /*replace=*/false));
  v1::DictionaryInfo info = InfoFromDictionary(*dict);
  info.set_source_path(source_description);
  info.set_source_format(v1::SOURCE_FORMAT_BUILTIN);
  info.set_source_dtype(v1::DTYPE_F32);
  absl::StatusOr<v1::DictionaryInfo> result =
      Publish(id, /*replace=*/false, std::move(dict), std::move(info));
  ReleaseId(id);
  return result;
}

absl::StatusOr<v1::DictionaryInfo> DictionaryRegistry::Publish(
    const std::string& id, bool replace, std::shared_ptr<const engine::Dictionary> dict,
    v1::DictionaryInfo info) {
  SAEDICT_ASSIGN_OR_RETURN(std::unique_ptr<engine::Encoder> encoder, engine::Encoder::Create(dict));
  const absl::Time now = absl::Now();
  info.set_id(id);
  info.mutable_loaded_at()->set_seconds(absl::ToUnixSeconds(now));
  if (replace) {
    // Latents stored for this id were encoded with the old weights.
    SAEDICT_RETURN_IF_ERROR(store_->corpus()->DeleteDictionaryData(id));
  }
  // A fresh file per load: a replace never touches the file the old record uses.
  const std::string weights_file = absl::StrCat(id, ".", absl::ToUnixNanos(now), ".safetensors");
  const fs::path weights_path = WeightsDir() / weights_file;
  SAEDICT_RETURN_IF_ERROR(formats::WriteCanonical(*dict, weights_path));
  v1::DictionaryRecord record;
  *record.mutable_info() = info;
  record.set_weights_file(weights_file);
  if (absl::Status s = store_->PutDictionary(record); !s.ok()) {
    std::error_code ec;
    fs::remove(weights_path, ec);
    return s;
  }
  std::string old_file;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it != entries_.end()) old_file = it->second.weights_file;
    entries_[id] = Entry{info, weights_file, std::move(encoder)};
  }
  if (!old_file.empty()) {
    std::error_code ec;
    fs::remove(WeightsDir() / old_file, ec);
  }
  LogInfo(absl::StrCat("loaded dictionary '", id, "' (", replace ? "replaced, " : "", info.d_in(),
                       "x", info.d_sae(), ")"));
  return info;
}

std::vector<v1::DictionaryInfo> DictionaryRegistry::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::DictionaryInfo> out;
  out.reserve(entries_.size());
  for (const auto& [id, entry] : entries_) out.push_back(entry.info);
  return out;
}

absl::StatusOr<v1::DictionaryInfo> DictionaryRegistry::Get(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("dictionary '", id, "' not found"));
  }
  return it->second.info;
}

absl::StatusOr<std::shared_ptr<const engine::Encoder>> DictionaryRegistry::GetEncoder(
    const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("dictionary '", id, "' not found"));
  }
  return it->second.encoder;
}

absl::Status DictionaryRegistry::Delete(const std::string& id) {
  std::string weights_file;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      return absl::NotFoundError(absl::StrCat("dictionary '", id, "' not found"));
    }
    if (loading_.count(id) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("dictionary '", id, "' is being replaced; retry after the load"));
    }
    // Record first: a crash after this leaves only an orphan file, removed at start-up.
    SAEDICT_RETURN_IF_ERROR(store_->DeleteDictionary(id));
    weights_file = it->second.weights_file;
    entries_.erase(it);
  }
  std::error_code ec;
  fs::remove(WeightsDir() / weights_file, ec);
  LogInfo(absl::StrCat("deleted dictionary '", id, "'"));
  return absl::OkStatus();
}

}  // namespace saedict::server
