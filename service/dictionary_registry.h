// DictionaryRegistry: the loaded dictionaries of one server and their
// durable record. Loading reads an SAE from under the dictionary root,
// writes its canonical F32 copy to <data_dir>/dictionaries/ and its metadata
// to the Store, then publishes an Encoder for it. At start-up every stored
// dictionary is brought back from its canonical copy.
//
// Errors: INVALID_ARGUMENT (bad id, bad file), PERMISSION_DENIED (path
// outside the root), NOT_FOUND (unknown id, missing path), ALREADY_EXISTS
// (id taken and replace not asked, or a load of that id in progress).
//
// Thread safety: all methods are thread-safe. Loads run without the lock;
// readers get shared_ptr<const Encoder> that stay valid after a delete.
#ifndef SAEDICT_SERVICE_DICTIONARY_REGISTRY_H_
#define SAEDICT_SERVICE_DICTIONARY_REGISTRY_H_

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/encoder.h"
#include "saedict/v1/saedict.pb.h"
#include "storage/store.h"

namespace saedict::service {

struct RegistryOptions {
  std::filesystem::path data_dir;         // canonical weights go to data_dir/dictionaries
  std::filesystem::path dictionary_root;  // LoadDictionary paths must resolve inside it
  // Requests without a compute mode get the dictionary's default: the one
  // asked for at load, else this, else the fastest exact mode on this CPU.
  std::optional<engine::ComputeMode> default_compute_mode;
  // Build each dictionary's FAST_EXACT screen (engine::EncoderOptions::fast_exact).
  bool fast_exact = true;
};

class DictionaryRegistry {
 public:
  // Restores every stored dictionary. A record whose canonical file is
  // missing or corrupt is logged and left out (its record is kept, so an
  // operator can inspect it; loading the id again replaces it).
  static absl::StatusOr<std::unique_ptr<DictionaryRegistry>> Create(const RegistryOptions& options,
                                                                    storage::Store* store);

  absl::StatusOr<v1::DictionaryInfo> Load(const v1::LoadDictionaryRequest& request);
  // Loads the dictionary at `path` (a folder, or a .npz) inside `folder`
  // (an upload's verified files, outside the dictionary root; every file the
  // loader opens must be inside the folder) exactly like Load;
  // request.path is ignored and DictionaryInfo's source_path is
  // `source_description`.
  absl::StatusOr<v1::DictionaryInfo> LoadUploaded(const v1::LoadDictionaryRequest& request,
                                                  const std::filesystem::path& folder,
                                                  const std::filesystem::path& path,
                                                  const std::string& source_description);
  // Loads an already-built dictionary (the embedded demo) under `id`.
  absl::StatusOr<v1::DictionaryInfo> LoadBuilt(const std::string& id,
                                               std::shared_ptr<const engine::Dictionary> dict,
                                               const std::string& source_description);
  std::vector<v1::DictionaryInfo> List() const;
  absl::StatusOr<v1::DictionaryInfo> Get(const std::string& id) const;
  absl::Status Delete(const std::string& id);
  absl::StatusOr<std::shared_ptr<const engine::Encoder>> GetEncoder(const std::string& id) const;

 private:
  struct Entry {
    v1::DictionaryInfo info;
    std::string weights_file;
    std::shared_ptr<const engine::Encoder> encoder;
  };
  DictionaryRegistry(const RegistryOptions& options, storage::Store* store);
  absl::Status Restore();
  // Load and LoadUploaded: `uploaded` = (folder, path) when set, else
  // request.path under the dictionary root.
  absl::StatusOr<v1::DictionaryInfo> LoadFrom(
      const v1::LoadDictionaryRequest& request,
      const std::optional<std::pair<std::filesystem::path, std::filesystem::path>>& uploaded,
      const std::string& source_description);
  // Persists and publishes; `info` has everything but id-independent fields set.
  absl::StatusOr<v1::DictionaryInfo> Publish(const std::string& id, bool replace,
                                             std::shared_ptr<const engine::Dictionary> dict,
                                             v1::DictionaryInfo info,
                                             std::optional<engine::ComputeMode> default_mode);
  // The encoder for dict with the default mode resolved (see RegistryOptions),
  // and its mode fields filled into info.
  absl::StatusOr<std::unique_ptr<engine::Encoder>> MakeEncoder(
      std::shared_ptr<const engine::Dictionary> dict,
      std::optional<engine::ComputeMode> default_mode, v1::DictionaryInfo* info) const;
  absl::Status ReserveId(const std::string& id, bool replace);
  void ReleaseId(const std::string& id);
  std::filesystem::path WeightsDir() const;

  const RegistryOptions options_;
  storage::Store* const store_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> loading_ ABSL_GUARDED_BY(mu_);
};

// [A-Za-z0-9._-]{1,128}, not "." or "..". INVALID_ARGUMENT naming the id.
absl::Status ValidateDictionaryId(const std::string& id);

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_DICTIONARY_REGISTRY_H_
