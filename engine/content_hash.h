// Content hash of a dictionary: SHA-256 over everything that decides what
// Encode / Decode return — the encode-relevant configuration (architecture,
// d_in, d_sae, k, normalization, b_dec subtraction, decoder-norm rescale,
// matching-pursuit threshold) and every canonical F32 tensor, each tensor
// named and length-prefixed, floats as little-endian bytes. Display metadata
// (model and hook names) is left out: renaming a hook keeps the hash, any
// change to a weight bit changes it.
//
// Answers and stored dictionaries name this hash so a notebook can tell which
// weights produced a result (a reload of changed weights changes it).
//
// Thread safety: pure function.
#ifndef SAEDICT_ENGINE_CONTENT_HASH_H_
#define SAEDICT_ENGINE_CONTENT_HASH_H_

#include <string>

#include "engine/dictionary.h"

namespace saedict::engine {

// 64 lowercase hex digits.
std::string DictionaryContentSha256(const Dictionary& dictionary);

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_CONTENT_HASH_H_
