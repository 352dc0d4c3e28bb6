// ServiceCore: the saedict.v1 operations on plain protobuf messages, with no
// gRPC inside, so the gRPC front end (and later an HTTP one) stays a thin
// adapter: decode nothing, call the core, convert the status.
//
// Encode requests go through the dynamic batcher; Decode and Intervene call
// the encoder directly. Error codes are those of DictionaryRegistry plus
// INVALID_ARGUMENT for tensors/options and RESOURCE_EXHAUSTED when the
// encode queue is full.
//
// Thread safety: every method is thread-safe.
#ifndef SAEDICT_SERVER_SERVICE_CORE_H_
#define SAEDICT_SERVER_SERVICE_CORE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "engine/batcher.h"
#include "saedict/v1/saedict.pb.h"
#include "server/dictionary_registry.h"

namespace saedict::server {

class ServiceCore {
 public:
  // Both must outlive the core.
  ServiceCore(DictionaryRegistry* registry, engine::EncodeBatcher* batcher)
      : registry_(registry), batcher_(batcher) {}

  absl::StatusOr<v1::LoadDictionaryResponse> LoadDictionary(const v1::LoadDictionaryRequest& r);
  absl::StatusOr<v1::ListDictionariesResponse> ListDictionaries(
      const v1::ListDictionariesRequest& r);
  absl::StatusOr<v1::GetDictionaryResponse> GetDictionary(const v1::GetDictionaryRequest& r);
  absl::StatusOr<v1::DeleteDictionaryResponse> DeleteDictionary(
      const v1::DeleteDictionaryRequest& r);
  absl::StatusOr<v1::EncodeResponse> Encode(const v1::EncodeRequest& r);
  absl::StatusOr<v1::DecodeResponse> Decode(const v1::DecodeRequest& r);
  absl::StatusOr<v1::InterveneResponse> Intervene(const v1::InterveneRequest& r);

 private:
  absl::StatusOr<std::shared_ptr<const engine::Encoder>> EncoderFor(const std::string& id) const;

  DictionaryRegistry* const registry_;
  engine::EncodeBatcher* const batcher_;
};

}  // namespace saedict::server

#endif  // SAEDICT_SERVER_SERVICE_CORE_H_
