// Tokenization of explanations and queries (rules: explanation_terms.h).
#include "storage/explanation_terms.h"

namespace saedict::storage {
namespace {

bool IsWordByte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

// `word` cut to at most kMaxTermBytes bytes without splitting a UTF-8
// character (continuation bytes are 10xxxxxx).
std::string CutTerm(std::string word) {
  if (word.size() <= kMaxTermBytes) return word;
  size_t n = kMaxTermBytes;
  while (n > 0 && (static_cast<unsigned char>(word[n]) & 0xC0) == 0x80) --n;
  word.resize(n);
  return word;
}

}  // namespace

std::vector<TextWord> SplitWords(absl::string_view text) {
  std::vector<TextWord> words;
  size_t i = 0;
  while (i < text.size()) {
    if (!IsWordByte(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    const size_t begin = i;
    std::string term;
    while (i < text.size() && IsWordByte(static_cast<unsigned char>(text[i]))) {
      char c = text[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      term.push_back(c);
      ++i;
    }
    words.push_back(TextWord{begin, i, CutTerm(std::move(term))});
  }
  return words;
}

std::vector<std::string> Terms(absl::string_view text) {
  std::vector<std::string> terms;
  for (TextWord& w : SplitWords(text)) terms.push_back(std::move(w.term));
  return terms;
}

}  // namespace saedict::storage
