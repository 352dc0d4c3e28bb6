// The "stats" column family's merge operator: a StatsRecord operand is added
// field-wise (count, sum, sum_sq, documents, bins by key) to the existing
// value, so a re-ingest merges the negated old contribution. Bins whose
// count reaches zero are dropped. Operands that do not parse make the merge
// fail, which RocksDB reports as Corruption (INTERNAL through FromRocksDb).
//
// Thread safety: the operator is stateless; AddStatsRecord is a pure function.
#ifndef SAEDICT_STORAGE_STATS_MERGE_H_
#define SAEDICT_STORAGE_STATS_MERGE_H_

#include <memory>

#include "rocksdb/merge_operator.h"
#include "saedict/records/v1/records.pb.h"

namespace saedict::storage {

// *into += delta, dropping bins that become zero.
void AddStatsRecord(const records::v1::StatsRecord& delta, records::v1::StatsRecord* into);

std::shared_ptr<rocksdb::MergeOperator> NewStatsMergeOperator();

}  // namespace saedict::storage

#endif  // SAEDICT_STORAGE_STATS_MERGE_H_
