// Column family names and options (see column_families.h).
#include "storage/column_families.h"

#include <memory>

#include "rocksdb/cache.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "storage/stats_merge.h"

namespace saedict::storage {
namespace {

rocksdb::ColumnFamilyOptions Family(const std::shared_ptr<rocksdb::Cache>& cache, bool bloom,
                                    size_t block_size, int restart_interval,
                                    rocksdb::CompressionType compression, int level) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.block_size = block_size;
  table.block_restart_interval = restart_interval;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  if (bloom) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions cf;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.compression = compression;
  cf.bottommost_compression = compression;
  cf.compression_opts.level = level;
  cf.bottommost_compression_opts.level = level;
  cf.bottommost_compression_opts.enabled = true;
  cf.level_compaction_dynamic_level_bytes = true;
  return cf;
}

}  // namespace

rocksdb::DBOptions StoreDbOptions() {
  rocksdb::DBOptions db;
  db.create_missing_column_families = true;
  db.max_background_jobs = 2;
  db.bytes_per_sync = 1 << 20;
  return db;
}

std::vector<rocksdb::ColumnFamilyDescriptor> StoreColumnFamilies(const FamilyTuning& tuning) {
  auto cache = rocksdb::NewLRUCache(tuning.block_cache_bytes);
  const int kDefaultLevel = rocksdb::CompressionOptions::kDefaultCompressionLevel;
  auto small = [&](bool bloom) {
    return Family(cache, bloom, 4 << 10, 16, rocksdb::kLZ4Compression, kDefaultLevel);
  };
  rocksdb::ColumnFamilyOptions stats = small(/*bloom=*/true);
  stats.merge_operator = NewStatsMergeOperator();
  std::vector<rocksdb::ColumnFamilyDescriptor> families(kNumFamilies);
  families[kDefaultFamily] = {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()};
  families[kDictionariesFamily] = {"dictionaries", small(false)};
  families[kNamesFamily] = {"names", small(false)};
  families[kDocsFamily] = {"docs", Family(cache, true, 16 << 10, 16, tuning.forward_compression,
                                          tuning.zstd_level)};
  families[kForwardFamily] = {"forward",
                              Family(cache, true, tuning.forward_block_size, 16,
                                     tuning.forward_compression, tuning.zstd_level)};
  families[kInvertedFamily] = {
      "inverted", Family(cache, false, tuning.inverted_block_size, tuning.inverted_restart_interval,
                         tuning.inverted_compression, tuning.zstd_level)};
  families[kStatsFamily] = {"stats", stats};
  return families;
}

}  // namespace saedict::storage
