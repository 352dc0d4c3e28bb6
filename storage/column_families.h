// The Store's column families, in the order Store::Open opens them, and
// their RocksDB options (DESIGN.md §4): bloom filters for the point-looked-up
// families (docs, forward, stats), the StatsRecord merge operator on stats,
// and for the bulk families (forward, inverted) bigger blocks, ZSTD and, for
// the all-key inverted family, long restart intervals so consecutive keys
// share their [dict][feature][value] prefix. One block cache is shared.
//
// Thread safety: pure functions.
#ifndef SAEDICT_STORAGE_COLUMN_FAMILIES_H_
#define SAEDICT_STORAGE_COLUMN_FAMILIES_H_

#include <cstddef>
#include <vector>

#include "rocksdb/db.h"
#include "rocksdb/options.h"

namespace saedict::storage {

enum FamilyIndex : size_t {
  kDefaultFamily = 0,
  kDictionariesFamily,
  kNamesFamily,
  kDocsFamily,
  kForwardFamily,
  kInvertedFamily,
  kStatsFamily,
  kNumFamilies,
};

// Knobs of the bulk families; the defaults are what Store::Open uses
// (measured in tests/storage/corpus_size_test.cc).
struct FamilyTuning {
  rocksdb::CompressionType forward_compression = rocksdb::kZSTD;
  rocksdb::CompressionType inverted_compression = rocksdb::kZSTD;
  int zstd_level = 3;                  // for the bulk families, every level
  size_t forward_block_size = 16 << 10;
  size_t inverted_block_size = 32 << 10;
  int inverted_restart_interval = 128;
  size_t block_cache_bytes = 64 << 20;  // shared by all families
};

rocksdb::DBOptions StoreDbOptions();
// kNumFamilies descriptors, indexed by FamilyIndex.
std::vector<rocksdb::ColumnFamilyDescriptor> StoreColumnFamilies(const FamilyTuning& tuning = {});

}  // namespace saedict::storage

#endif  // SAEDICT_STORAGE_COLUMN_FAMILIES_H_
