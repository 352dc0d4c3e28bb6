// The embedded demo dictionary: a deterministic random TopK SAE (d_in 64,
// d_sae 512, k 16, unit-norm decoder rows) so a fresh `saedictd` has
// something to encode with before any real SAE is loaded.
// Thread safety: pure function.
#ifndef SAEDICT_SERVER_DEMO_DICTIONARY_H_
#define SAEDICT_SERVER_DEMO_DICTIONARY_H_

#include <memory>

#include "engine/dictionary.h"

namespace saedict::server {

inline constexpr char kDemoDictionaryId[] = "demo";

std::shared_ptr<const engine::Dictionary> MakeDemoDictionary();

}  // namespace saedict::server

#endif  // SAEDICT_SERVER_DEMO_DICTIONARY_H_
