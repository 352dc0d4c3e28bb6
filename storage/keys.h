// Key encoding for the corpus column families (layout: corpus_store.h).
// Integers are big-endian so RocksDB's bytewise order is numeric order;
// inverted-index values use an order-preserving u32 image of the float,
// bit-inverted so a forward scan comes out value-descending.
//
// Thread safety: pure functions.
#ifndef SAEDICT_STORAGE_KEYS_H_
#define SAEDICT_STORAGE_KEYS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace saedict::storage::keys {

// Stats key of a dictionary's totals ([dict][kTotalsFeature]).
inline constexpr uint32_t kTotalsFeature = 0xFFFFFFFFu;
// [dict u32][feature u32][~ordered value u32][corpus u32][doc u64][pos u32].
inline constexpr size_t kInvertedKeySize = 28;

void AppendU32(std::string* out, uint32_t v);
void AppendU64(std::string* out, uint64_t v);
// REQUIRES: 4 (8) readable bytes at p.
uint32_t ReadU32(const char* p);
uint64_t ReadU64(const char* p);

// Monotone bijection float -> u32 (for non-NaN floats; -0 < +0): positives
// get the sign bit flipped, negatives all bits.
uint32_t OrderedFromFloat(float v);
float FloatFromOrdered(uint32_t u);
// ~OrderedFromFloat: larger values sort first.
inline uint32_t DescendingFromFloat(float v) { return ~OrderedFromFloat(v); }
inline float FloatFromDescending(uint32_t u) { return FloatFromOrdered(~u); }

// names family.
std::string DictionaryNameKey(std::string_view dictionary_id);  // 'd' id
std::string CorpusNameKey(std::string_view corpus);             // 'c' corpus
inline constexpr char kNextNumberKey[] = "next";

std::string DocKey(uint32_t corpus, uint64_t doc);
std::string ForwardKey(uint32_t dict, uint32_t corpus, uint64_t doc);
std::string StatsKey(uint32_t dict, uint32_t feature);
std::string DictPrefix(uint32_t dict);                        // 4 bytes
std::string InvertedPrefix(uint32_t dict, uint32_t feature);  // 8 bytes
void AppendInvertedKey(std::string* out, uint32_t dict, uint32_t feature, float value,
                       uint32_t corpus, uint64_t doc, uint32_t pos);

struct InvertedKey {
  uint32_t dict = 0;
  uint32_t feature = 0;
  float value = 0;
  uint32_t corpus = 0;
  uint64_t doc = 0;
  uint32_t pos = 0;
};
// nullopt when `key` is not kInvertedKeySize bytes.
std::optional<InvertedKey> ParseInvertedKey(std::string_view key);

// The smallest key greater than every key starting with `prefix`; empty when
// there is none (prefix all 0xFF).
std::string PrefixSuccessor(std::string_view prefix);

// neighbours family: <dictionary id> 0x00 <feature u32> -> NeighboursRecord,
// <dictionary id> 0x01 -> NeighboursManifest. Ids never hold bytes < 0x20,
// so [id 0x00, id 0x02) covers exactly one dictionary.
std::string NeighboursKey(std::string_view dictionary_id, uint32_t feature);
std::string NeighboursManifestKey(std::string_view dictionary_id);
std::string NeighboursBegin(std::string_view dictionary_id);
std::string NeighboursEnd(std::string_view dictionary_id);

}  // namespace saedict::storage::keys

#endif  // SAEDICT_STORAGE_KEYS_H_
