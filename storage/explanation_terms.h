// Explanation tokenization: how explanation text and search queries become
// BM25 terms (storage/explanation_store.h). One rule for both, so a query
// word matches the explanations that contain it:
//  - a word is a maximal run of ASCII letters and digits and of bytes >= 0x80
//    (so UTF-8 letters of any script stay inside words); everything else
//    (spaces, punctuation, apostrophes, control bytes) separates words;
//  - ASCII letters are lowercased; other characters are kept as they are
//    (no Unicode case folding, no stemming, no stop words: BM25's IDF already
//    weighs common words down);
//  - a word longer than kMaxTermBytes is cut to its first kMaxTermBytes
//    bytes, at a UTF-8 character boundary.
//
// Thread safety: pure functions.
#ifndef SAEDICT_STORAGE_EXPLANATION_TERMS_H_
#define SAEDICT_STORAGE_EXPLANATION_TERMS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace saedict::storage {

inline constexpr size_t kMaxTermBytes = 64;

struct TextWord {
  size_t begin = 0;  // byte span of the word in the text
  size_t end = 0;
  std::string term;  // the word as a term (lowercased, cut)
};

// The words of `text` in order, with their spans.
std::vector<TextWord> SplitWords(absl::string_view text);
// Only the terms, in order (repeats kept).
std::vector<std::string> Terms(absl::string_view text);

}  // namespace saedict::storage

#endif  // SAEDICT_STORAGE_EXPLANATION_TERMS_H_
