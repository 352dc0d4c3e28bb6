// The engine's name for the shared CSR type (util/sparse_codes.h).
#ifndef SAEDICT_ENGINE_SPARSE_CODES_H_
#define SAEDICT_ENGINE_SPARSE_CODES_H_

#include "util/sparse_codes.h"

namespace saedict::engine {

using SparseCodes = ::saedict::SparseCodes;

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_SPARSE_CODES_H_
