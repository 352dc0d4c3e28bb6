// StatsRecord addition and the stats merge operator (see stats_merge.h).
#include "storage/stats_merge.h"

#include <deque>
#include <string>

namespace saedict::storage {
namespace {

bool Parse(const rocksdb::Slice& bytes, records::v1::StatsRecord* out) {
  return out->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

class StatsMergeOperator final : public rocksdb::MergeOperator {
 public:
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    records::v1::StatsRecord acc;
    if (in.existing_value != nullptr && !Parse(*in.existing_value, &acc)) return false;
    for (const rocksdb::Slice& operand : in.operand_list) {
      records::v1::StatsRecord delta;
      if (!Parse(operand, &delta)) return false;
      AddStatsRecord(delta, &acc);
    }
    return acc.SerializeToString(&out->new_value);
  }

  bool PartialMergeMulti(const rocksdb::Slice& /*key*/,
                         const std::deque<rocksdb::Slice>& operand_list, std::string* new_value,
                         rocksdb::Logger* /*logger*/) const override {
    records::v1::StatsRecord acc;
    for (const rocksdb::Slice& operand : operand_list) {
      records::v1::StatsRecord delta;
      if (!Parse(operand, &delta)) return false;  // left for the full merge to report
      AddStatsRecord(delta, &acc);
    }
    return acc.SerializeToString(new_value);
  }

  const char* Name() const override { return "saedict.StatsMerge"; }
};

}  // namespace

void AddStatsRecord(const records::v1::StatsRecord& delta, records::v1::StatsRecord* into) {
  into->set_count(into->count() + delta.count());
  into->set_sum(into->sum() + delta.sum());
  into->set_sum_sq(into->sum_sq() + delta.sum_sq());
  into->set_documents(into->documents() + delta.documents());
  auto* bins = into->mutable_bins();
  for (const auto& [bin, count] : delta.bins()) {
    auto it = bins->find(bin);
    if (it == bins->end()) {
      if (count != 0) (*bins)[bin] = count;
    } else if ((it->second += count) == 0) {
      bins->erase(it);
    }
  }
}

std::shared_ptr<rocksdb::MergeOperator> NewStatsMergeOperator() {
  return std::make_shared<StatsMergeOperator>();
}

}  // namespace saedict::storage
