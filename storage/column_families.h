// The Store's column families, in the order Store::Open opens them, and
// their RocksDB options (DESIGN.md §4): bloom filters for the point-looked-up
// families (docs, forward, stats), the StatsRecord merge operator on stats,
// and for the bulk families (docs, forward, inverted) bigger blocks and ZSTD
// (level 3, level 9 on the last level where most bytes settle). The all-key
// inverted family gets 64 KiB blocks with long restart intervals, so
// consecutive keys share their [dict][feature][value...] prefix, and memtable
// insert hints per [dict][feature] (ingest puts its keys sorted). Sizes
// measured in tests/storage/corpus_size_test.cc. One block cache is shared.
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
  kNeighboursFamily,
  kExplanationsFamily,
  kExplanationTermsFamily,
  kNumFamilies,
};

// Knobs of the bulk families; the defaults are what Store::Open uses
// (measured in tests/storage/corpus_size_test.cc).
struct FamilyTuning {
  rocksdb::CompressionType forward_compression = rocksdb::kZSTD;
  rocksdb::CompressionType inverted_compression = rocksdb::kZSTD;
  int zstd_level = 3;             // bulk families, levels above the last
  int bottommost_zstd_level = 9;  // the last level, where most bytes end up
  size_t forward_block_size = 16 << 10;
  size_t inverted_block_size = 64 << 10;
  int inverted_restart_interval = 256;
  size_t block_cache_bytes = 64 << 20;  // shared by all families
};

// The memtables of all families together stay within this many bytes
// (RocksDB's db_write_buffer_size: past it the largest memtable is
// flushed). Without it each busy family held up to 2 x 64 MiB, filling at
// its own pace, so the server's memory swung by ~150 MiB and the slowest
// family (docs) kept it climbing for 20 minutes under ingest.
inline constexpr size_t kMemtableBudgetBytes = 64 << 20;

rocksdb::DBOptions StoreDbOptions();
// kNumFamilies descriptors, indexed by FamilyIndex.
std::vector<rocksdb::ColumnFamilyDescriptor> StoreColumnFamilies(const FamilyTuning& tuning = {});

}  // namespace saedict::storage

#endif  // SAEDICT_STORAGE_COLUMN_FAMILIES_H_
