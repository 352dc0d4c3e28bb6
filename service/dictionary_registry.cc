#include "service/dictionary_registry.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "formats/dictionary_loader.h"
#include "service/path_guard.h"
#include "service/proto_convert.h"
#include "service/resource_name.h"
#include "util/log.h"
#include "util/status_macros.h"

namespace saedict::service {
namespace {

namespace fs = std::filesystem;

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
  SAEDICT_ASSIGN_OR_RETURN(std::vector<records::v1::DictionaryRecord> records, store_->ListDictionaries());
  std::set<std::string> referenced;
  for (records::v1::DictionaryRecord& record : records) {
    referenced.insert(record.weights_file());
    const std::string& id = record.info().id();
    absl::StatusOr<engine::Dictionary> dict =
        formats::ReadCanonical(WeightsDir() / record.weights_file());
    std::optional<engine::ComputeMode> default_mode;
    if (record.info().has_default_compute_mode()) {
      absl::StatusOr<engine::ComputeMode> mode = ToEngine(
          static_cast<v1::ComputeMode>(record.info().default_compute_mode()),
          "default_compute_mode");
      if (mode.ok()) default_mode = *mode;
    }
    v1::DictionaryInfo info = FromRecord(record.info());
    absl::StatusOr<std::unique_ptr<engine::Encoder>> encoder =
        dict.ok() ? MakeEncoder(std::make_shared<const engine::Dictionary>(std::move(*dict)),
                                default_mode, &info)
                  : absl::StatusOr<std::unique_ptr<engine::Encoder>>(dict.status());
    if (!encoder.ok()) {
      LogError(absl::StrCat("dictionary '", id, "' not restored: ", encoder.status().ToString()));
      continue;
    }
    info.set_weights_sha256((*encoder)->content_sha256());
    if (record.info().weights_sha256() != (*encoder)->content_sha256()) {
      // Records written before content hashes existed (or by another build): fill it in.
      record.mutable_info()->set_weights_sha256((*encoder)->content_sha256());
      if (absl::Status s = store_->PutDictionary(record); !s.ok()) {
        LogError(absl::StrCat("dictionary '", id, "' not restored: ", s.ToString()));
        continue;
      }
    }
    absl::MutexLock lock(&mu_);
    entries_[id] = Entry{std::move(info), record.weights_file(), std::move(*encoder)};
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
    return absl::AlreadyExistsError(absl::StrCat("dictionary '", id, "' is being loaded or deleted"));
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
  return LoadFrom(request, std::nullopt, request.path());
}

absl::StatusOr<v1::DictionaryInfo> DictionaryRegistry::LoadUploaded(
    const v1::LoadDictionaryRequest& request, const fs::path& folder, const fs::path& path,
    const std::string& source_description) {
  return LoadFrom(request, std::make_pair(folder, path), source_description);
}

absl::StatusOr<v1::DictionaryInfo> DictionaryRegistry::LoadFrom(
    const v1::LoadDictionaryRequest& request,
    const std::optional<std::pair<fs::path, fs::path>>& uploaded,
    const std::string& source_description) {
  if (!request.alias().empty()) {
    SAEDICT_RETURN_IF_ERROR(ValidateResourceName(request.alias(), "alias", "dictionary alias"));
  }
  SAEDICT_RETURN_IF_ERROR(ReserveId(request.id(), request.replace()));
  auto load = [&]() -> absl::StatusOr<v1::DictionaryInfo> {
    fs::path path, root;
    if (uploaded.has_value()) {
      root = uploaded->first;
      path = uploaded->second;
    } else {
      SAEDICT_ASSIGN_OR_RETURN(path, ResolveUnderRoot(options_.dictionary_root, request.path()));
      root = options_.dictionary_root;
    }
    SAEDICT_ASSIGN_OR_RETURN(formats::SourceFormat format, FromProto(request.format()));
    // Every file the loader opens must also resolve inside the root.
    SAEDICT_ASSIGN_OR_RETURN(formats::LoadedDictionary loaded,
                             formats::LoadDictionary(path, {.format = format, .root = root}));
    auto dict = std::make_shared<const engine::Dictionary>(std::move(loaded.dictionary));
    v1::DictionaryInfo info = InfoFromDictionary(*dict);
    info.set_source_format(ToProto(loaded.format));
    info.set_source_dtype(ToProto(loaded.source_dtype));
    info.set_source_path(source_description);
    info.set_alias(request.alias());
    std::optional<engine::ComputeMode> default_mode;
    if (request.has_default_compute_mode()) {
      SAEDICT_ASSIGN_OR_RETURN(default_mode,
                               ToEngine(request.default_compute_mode(), "default_compute_mode"));
    }
    return Publish(request.id(), request.replace(), std::move(dict), std::move(info),
                   default_mode);
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
      Publish(id, /*replace=*/false, std::move(dict), std::move(info), std::nullopt);
  ReleaseId(id);
  return result;
}

absl::StatusOr<std::unique_ptr<engine::Encoder>> DictionaryRegistry::MakeEncoder(
    std::shared_ptr<const engine::Dictionary> dict, std::optional<engine::ComputeMode> default_mode,
    v1::DictionaryInfo* info) const {
  engine::EncoderOptions options;
  options.fast_exact = options_.fast_exact;
  options.default_compute_mode =
      default_mode.has_value() ? default_mode : options_.default_compute_mode;
  absl::StatusOr<std::unique_ptr<engine::Encoder>> encoder =
      engine::Encoder::Create(std::move(dict), options);
  if (!encoder.ok()) {
    if (absl::IsUnimplemented(encoder.status())) {  // a BF16 default without BF16 here
      return absl::Status(encoder.status().code(),
                          absl::StrCat("default_compute_mode: ", encoder.status().message()));
    }
    return encoder.status();
  }
  info->set_default_compute_mode(ToProto((*encoder)->default_compute_mode()));
  info->set_fast_exact_ready((*encoder)->fast_exact_ready());
  info->set_fast_exact_bytes((*encoder)->fast_exact_bytes());
  info->set_fast_exact_screen(std::string((*encoder)->fast_exact_screen()));
  return encoder;
}

absl::StatusOr<v1::DictionaryInfo> DictionaryRegistry::Publish(
    const std::string& id, bool replace, std::shared_ptr<const engine::Dictionary> dict,
    v1::DictionaryInfo info, std::optional<engine::ComputeMode> default_mode) {
  if (!info.alias().empty()) {
    absl::MutexLock lock(&mu_);
    for (const auto& [other_id, entry] : entries_) {
      if (other_id != id && entry.info.alias() == info.alias() &&
          entry.info.model_name() == info.model_name()) {
        return absl::AlreadyExistsError(absl::StrCat(
            "alias: '", info.alias(), "' is already the alias of dictionary '", other_id,
            "' of model '", info.model_name(), "'; an alias names one dictionary per model"));
      }
    }
  }
  SAEDICT_ASSIGN_OR_RETURN(std::unique_ptr<engine::Encoder> encoder,
                           MakeEncoder(dict, default_mode, &info));
  const absl::Time now = absl::Now();
  info.set_id(id);
  info.mutable_loaded_at()->set_seconds(absl::ToUnixSeconds(now));
  info.set_weights_sha256(encoder->content_sha256());
  // A fresh file per load: a replace never touches the file the old record uses.
  const std::string weights_file = absl::StrCat(id, ".", absl::ToUnixNanos(now), ".safetensors");
  const fs::path weights_path = WeightsDir() / weights_file;
  SAEDICT_RETURN_IF_ERROR(formats::WriteCanonical(*dict, weights_path));
  records::v1::DictionaryRecord record;
  *record.mutable_info() = ToRecord(info);
  if (default_mode.has_value()) {
    record.mutable_info()->set_default_compute_mode(ToProto(*default_mode));
  }
  record.set_weights_file(weights_file);
  // A replace drops the latents stored for the old weights and writes the new
  // record in one atomic step, serialised with ingest writes: a batch encoded
  // with the old weights lands before it (and is dropped) or is refused after.
  absl::Status put = replace ? store_->ReplaceDictionary(record) : store_->PutDictionary(record);
  if (!put.ok()) {
    std::error_code ec;
    fs::remove(weights_path, ec);
    return put;
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
  {
    absl::MutexLock lock(&mu_);
    if (entries_.find(id) == entries_.end()) {
      return absl::NotFoundError(absl::StrCat("dictionary '", id, "' not found"));
    }
    if (loading_.count(id) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("dictionary '", id, "' is being loaded or deleted; retry after it"));
    }
    loading_.insert(id);  // no load or delete of this id until we are done
  }
  // The synced delete runs without the registry lock: Encode, List and Get
  // of every dictionary go on meanwhile. Record first: a crash after this
  // leaves only an orphan file, removed at start-up.
  absl::Status deleted = store_->DeleteDictionary(id);
  std::string weights_file;
  {
    absl::MutexLock lock(&mu_);
    loading_.erase(id);
    if (!deleted.ok()) return deleted;
    auto it = entries_.find(id);
    weights_file = it->second.weights_file;
    entries_.erase(it);
  }
  std::error_code ec;
  fs::remove(WeightsDir() / weights_file, ec);
  LogInfo(absl::StrCat("deleted dictionary '", id, "'"));
  return absl::OkStatus();
}

}  // namespace saedict::service
