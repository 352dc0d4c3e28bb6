// Big-endian and order-preserving float key encoding (see keys.h).
#include "storage/keys.h"

#include <cstring>

namespace saedict::storage::keys {

void AppendU32(std::string* out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, 4);
}

void AppendU64(std::string* out, uint64_t v) {
  AppendU32(out, static_cast<uint32_t>(v >> 32));
  AppendU32(out, static_cast<uint32_t>(v));
}

uint32_t ReadU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

uint64_t ReadU64(const char* p) { return (uint64_t{ReadU32(p)} << 32) | ReadU32(p + 4); }

uint32_t OrderedFromFloat(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

float FloatFromOrdered(uint32_t u) {
  const uint32_t bits = (u & 0x80000000u) ? (u & 0x7FFFFFFFu) : ~u;
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

std::string DictionaryNameKey(std::string_view dictionary_id) {
  std::string k = "d";
  k.append(dictionary_id);
  return k;
}

std::string CorpusNameKey(std::string_view corpus) {
  std::string k = "c";
  k.append(corpus);
  return k;
}

std::string DocKey(uint32_t corpus, uint64_t doc) {
  std::string k;
  k.reserve(12);
  AppendU32(&k, corpus);
  AppendU64(&k, doc);
  return k;
}

std::string ForwardKey(uint32_t dict, uint32_t corpus, uint64_t doc) {
  std::string k;
  k.reserve(16);
  AppendU32(&k, dict);
  AppendU32(&k, corpus);
  AppendU64(&k, doc);
  return k;
}

std::string StatsKey(uint32_t dict, uint32_t feature) { return InvertedPrefix(dict, feature); }

std::string DictPrefix(uint32_t dict) {
  std::string k;
  AppendU32(&k, dict);
  return k;
}

std::string InvertedPrefix(uint32_t dict, uint32_t feature) {
  std::string k;
  k.reserve(8);
  AppendU32(&k, dict);
  AppendU32(&k, feature);
  return k;
}

void AppendInvertedKey(std::string* out, uint32_t dict, uint32_t feature, float value,
                       uint32_t corpus, uint64_t doc, uint32_t pos) {
  AppendU32(out, dict);
  AppendU32(out, feature);
  AppendU32(out, DescendingFromFloat(value));
  AppendU32(out, corpus);
  AppendU64(out, doc);
  AppendU32(out, pos);
}

std::optional<InvertedKey> ParseInvertedKey(std::string_view key) {
  if (key.size() != kInvertedKeySize) return std::nullopt;
  const char* p = key.data();
  InvertedKey k;
  k.dict = ReadU32(p);
  k.feature = ReadU32(p + 4);
  k.value = FloatFromDescending(ReadU32(p + 8));
  k.corpus = ReadU32(p + 12);
  k.doc = ReadU64(p + 16);
  k.pos = ReadU32(p + 24);
  return k;
}

std::string PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(s.back());
    if (last != 0xFF) {
      ++last;
      return s;
    }
    s.pop_back();
  }
  return s;
}

std::string NeighboursKey(std::string_view dictionary_id, uint32_t feature) {
  std::string key(dictionary_id);
  key.push_back('\0');
  AppendU32(&key, feature);
  return key;
}

std::string NeighboursManifestKey(std::string_view dictionary_id) {
  std::string key(dictionary_id);
  key.push_back('\1');
  return key;
}

std::string NeighboursBegin(std::string_view dictionary_id) {
  std::string key(dictionary_id);
  key.push_back('\0');
  return key;
}

std::string NeighboursEnd(std::string_view dictionary_id) {
  std::string key(dictionary_id);
  key.push_back('\2');
  return key;
}

}  // namespace saedict::storage::keys
