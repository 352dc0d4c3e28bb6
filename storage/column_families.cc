// Column family names and options (see column_families.h).
#include "storage/column_families.h"

#include <algorithm>
#include <memory>

#include "rocksdb/cache.h"
#include "rocksdb/convenience.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "storage/stats_merge.h"

namespace saedict::storage {
namespace {

// `wanted` when this RocksDB build has it, else LZ4, else none.
rocksdb::CompressionType Available(rocksdb::CompressionType wanted) {
  const std::vector<rocksdb::CompressionType> supported = rocksdb::GetSupportedCompressions();
  for (rocksdb::CompressionType c : {wanted, rocksdb::kLZ4Compression}) {
    if (c == rocksdb::kNoCompression ||
        std::find(supported.begin(), supported.end(), c) != supported.end()) {
      return c;
    }
  }
  return rocksdb::kNoCompression;
}

rocksdb::ColumnFamilyOptions Family(const std::shared_ptr<rocksdb::Cache>& cache, bool bloom,
                                    size_t block_size, int restart_interval,
                                    rocksdb::CompressionType wanted, int level,
                                    int bottommost_level, bool dynamic_levels = true) {
  const rocksdb::CompressionType compression = Available(wanted);
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
  cf.bottommost_compression_opts.level = bottommost_level;
  cf.bottommost_compression_opts.enabled = true;
  // New families only: switching an existing one over is not seamless.
  cf.level_compaction_dynamic_level_bytes = dynamic_levels;
  return cf;
}

}  // namespace

rocksdb::DBOptions StoreDbOptions() {
  rocksdb::DBOptions db;
  db.create_missing_column_families = true;
  db.max_background_jobs = 2;
  db.bytes_per_sync = 1 << 20;
  db.db_write_buffer_size = kMemtableBudgetBytes;
  return db;
}

std::vector<rocksdb::ColumnFamilyDescriptor> StoreColumnFamilies(const FamilyTuning& tuning) {
  auto cache = rocksdb::NewLRUCache(tuning.block_cache_bytes);
  const int kDefaultLevel = rocksdb::CompressionOptions::kDefaultCompressionLevel;
  auto small = [&](bool bloom, bool dynamic_levels) {
    return Family(cache, bloom, 4 << 10, 16, rocksdb::kLZ4Compression, kDefaultLevel, kDefaultLevel,
                  dynamic_levels);
  };
  rocksdb::ColumnFamilyOptions stats = small(/*bloom=*/true, /*dynamic_levels=*/true);
  stats.merge_operator = NewStatsMergeOperator();
  std::vector<rocksdb::ColumnFamilyDescriptor> families(kNumFamilies);
  families[kDefaultFamily] = {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()};
  // "dictionaries" predates the other families: its level layout stays as it was.
  families[kDictionariesFamily] = {"dictionaries", small(false, false)};
  families[kNamesFamily] = {"names", small(false, true)};
  families[kDocsFamily] = {"docs", Family(cache, true, 16 << 10, 16, tuning.forward_compression,
                                          tuning.zstd_level, tuning.bottommost_zstd_level)};
  families[kForwardFamily] = {
      "forward", Family(cache, true, tuning.forward_block_size, 16, tuning.forward_compression,
                        tuning.zstd_level, tuning.bottommost_zstd_level)};
  families[kInvertedFamily] = {
      "inverted",
      Family(cache, false, tuning.inverted_block_size, tuning.inverted_restart_interval,
             tuning.inverted_compression, tuning.zstd_level, tuning.bottommost_zstd_level)};
  // Inserts of one feature land next to the previous one (~40% faster ingest).
  families[kInvertedFamily].options.memtable_insert_with_hint_prefix_extractor.reset(
      rocksdb::NewFixedPrefixTransform(8));
  families[kStatsFamily] = {"stats", stats};
  families[kNeighboursFamily] = {"neighbours", small(/*bloom=*/true, /*dynamic_levels=*/true)};
  // Explanations are read by feature prefix and postings by term prefix:
  // no point-lookup bloom filters.
  families[kExplanationsFamily] = {"explanations", small(/*bloom=*/false, /*dynamic_levels=*/true)};
  families[kExplanationTermsFamily] = {"explanation_terms",
                                       small(/*bloom=*/false, /*dynamic_levels=*/true)};
  return families;
}

}  // namespace saedict::storage
