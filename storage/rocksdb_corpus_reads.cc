// RocksDbCorpusStore's reads: documents, codes, statistics, and the
// index scans behind TopTokens and SampleTokensInRanges (see
// rocksdb_corpus_store.h and corpus_store.h).
#include <algorithm>
#include <map>
#include <memory>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rocksdb/snapshot.h"
#include "saedict/records/v1/records.pb.h"
#include "storage/codes_codec.h"
#include "storage/keys.h"
#include "storage/rocksdb_corpus_store.h"
#include "storage/rocksdb_status.h"
#include "storage/token_ranking.h"
#include "util/status_macros.h"

namespace saedict::storage {

absl::StatusOr<std::optional<StoredDocument>> RocksDbCorpusStore::GetDocument(
    const std::string& corpus, uint64_t doc_id) {
  const std::optional<uint32_t> c = CorpusNumber(corpus);
  if (!c) return std::nullopt;
  return ReadDocument(rocksdb::ReadOptions(), *c, corpus, doc_id);
}

absl::StatusOr<std::optional<StoredDocument>> RocksDbCorpusStore::ReadDocument(
    const rocksdb::ReadOptions& ro, uint32_t corpus_number, const std::string& corpus,
    uint64_t doc_id) {
  std::string bytes;
  rocksdb::Status s = db_->Get(ro, cf_.docs, keys::DocKey(corpus_number, doc_id), &bytes);
  if (s.IsNotFound()) return std::nullopt;
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("get ", DocName(corpus, doc_id))));
  records::v1::DocumentRecord record;
  if (!record.ParseFromString(bytes) || record.token_ids().size() % 4 != 0 ||
      (record.token_strings_size() != 0 &&
       static_cast<size_t>(record.token_strings_size()) != record.token_ids().size() / 4)) {
    return absl::InternalError(
        absl::StrCat("storage: document record of ", DocName(corpus, doc_id), " is corrupt"));
  }
  StoredDocument out;
  const std::string& ids = record.token_ids();
  out.token_ids.resize(ids.size() / 4);
  const auto* p = reinterpret_cast<const unsigned char*>(ids.data());
  for (size_t t = 0; t < out.token_ids.size(); ++t, p += 4) {
    out.token_ids[t] = static_cast<int32_t>(uint32_t{p[0]} | (uint32_t{p[1]} << 8) |
                                            (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24));
  }
  out.token_strings.assign(record.token_strings().begin(), record.token_strings().end());
  return out;
}

absl::StatusOr<std::optional<StoredCodes>> RocksDbCorpusStore::GetCodes(
    const std::string& dictionary_id, const std::string& corpus, uint64_t doc_id) {
  const std::optional<uint32_t> d = DictNumber(dictionary_id);
  const std::optional<uint32_t> c = CorpusNumber(corpus);
  if (!d || !c) return std::nullopt;
  std::string bytes;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf_.forward, keys::ForwardKey(*d, *c, doc_id), &bytes);
  if (s.IsNotFound()) return std::nullopt;
  const std::string what = CodesName(dictionary_id, corpus, doc_id);
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("get codes ", what)));
  SAEDICT_ASSIGN_OR_RETURN(StoredCodes codes, DecodeCodes(bytes, what));
  return codes;
}

absl::StatusOr<FeatureStatsRecord> RocksDbCorpusStore::GetFeatureStats(
    const std::string& dictionary_id, uint32_t feature) {
  if (feature == keys::kTotalsFeature) {
    return absl::InvalidArgumentError(absl::StrCat("storage: feature ", feature, " is reserved"));
  }
  FeatureStatsRecord out;
  const std::optional<uint32_t> d = DictNumber(dictionary_id);
  if (!d) return out;
  const std::string what =
      absl::StrCat("stats of dictionary '", dictionary_id, "' feature ", feature);
  rocksdb::ManagedSnapshot snapshot(db_);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.snapshot();
  std::string bytes;
  rocksdb::Status s = db_->Get(ro, cf_.stats, keys::StatsKey(*d, feature), &bytes);
  if (s.IsNotFound()) return out;
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("get ", what)));
  records::v1::StatsRecord record;
  if (!record.ParseFromString(bytes)) {
    return absl::InternalError(absl::StrCat("storage: ", what, " is corrupt"));
  }
  if (record.count() <= 0) return out;
  out.count = record.count();
  out.sum = record.sum();
  out.sum_sq = record.sum_sq();
  for (const auto& [bin, count] : record.bins()) {
    if (count != 0) out.bins.emplace_back(bin, count);
  }
  std::sort(out.bins.begin(), out.bins.end());

  const std::string prefix = keys::InvertedPrefix(*d, feature);
  const std::string end = keys::PrefixSuccessor(prefix);
  const rocksdb::Slice lower(prefix), upper(end);
  ro.iterate_lower_bound = &lower;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_.inverted));
  it->SeekToFirst();  // the document with the highest peak holds the maximum
  if (it->Valid()) {
    const std::optional<keys::InvertedKey> key = keys::ParseInvertedKey(it->key().ToStringView());
    if (!key) {
      return absl::InternalError(absl::StrCat("storage: inverted key of ", what, " is corrupt"));
    }
    out.max = key->value;
  }
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(it->status(), absl::StrCat("scan ", what)));
  return out;
}

absl::StatusOr<DictionaryTotals> RocksDbCorpusStore::GetDictionaryTotals(
    const std::string& dictionary_id) {
  DictionaryTotals out;
  const std::optional<uint32_t> d = DictNumber(dictionary_id);
  if (!d) return out;
  std::string bytes;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf_.stats, keys::StatsKey(*d, keys::kTotalsFeature), &bytes);
  if (s.IsNotFound()) return out;
  const std::string what = absl::StrCat("totals of dictionary '", dictionary_id, "'");
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("get ", what)));
  records::v1::StatsRecord record;
  if (!record.ParseFromString(bytes)) {
    return absl::InternalError(absl::StrCat("storage: ", what, " is corrupt"));
  }
  out.tokens = record.count();
  out.documents = record.documents();
  return out;
}

// One feature's inverted-index entries in descending peak order, read under
// one snapshot together with the forward records and documents they lead to
// (the feature's values decoded once per record, and attached to the
// TokenRefs made from them).
class RocksDbCorpusStore::FeatureScan : public PeakOrderedDocuments {
 public:
  FeatureScan(RocksDbCorpusStore* store, uint32_t dict, uint32_t feature, std::string what)
      : store_(store),
        snapshot_(store->db_),
        dict_(dict),
        feature_(feature),
        what_(std::move(what)),
        prefix_(keys::InvertedPrefix(dict, feature)),
        end_(keys::PrefixSuccessor(prefix_)),
        upper_(end_) {
    ro_.snapshot = snapshot_.snapshot();
    rocksdb::ReadOptions scan = ro_;
    scan.iterate_upper_bound = &upper_;
    it_.reset(store->db_->NewIterator(scan, store->cf_.inverted));
  }

  // Positions the scan at the first document whose peak is <= start (all
  // documents without one).
  void Seek(std::optional<float> start_at_or_below) override {
    std::string target = prefix_;
    if (start_at_or_below) keys::AppendU32(&target, keys::DescendingFromFloat(*start_at_or_below));
    it_->Seek(target);
    started_ = false;
  }

  // The next index entry; nullopt at the end. INTERNAL for a corrupt key.
  absl::StatusOr<std::optional<Entry>> Next() override {
    if (started_) it_->Next();
    started_ = true;
    if (!it_->Valid()) {
      SAEDICT_RETURN_IF_ERROR(FromRocksDb(it_->status(), absl::StrCat("scan ", what_)));
      return std::nullopt;
    }
    std::optional<keys::InvertedKey> key = keys::ParseInvertedKey(it_->key().ToStringView());
    if (!key) {
      return absl::InternalError(absl::StrCat("storage: inverted key of ", what_, " is corrupt"));
    }
    return Entry{key->value, key->corpus, key->doc};
  }

  // The scanned feature's value at every row of the forward record `key`
  // names; INTERNAL when it is missing (a corrupt index) or does not decode.
  absl::StatusOr<const std::vector<float>*> FeatureValues(const Entry& key) override {
    std::string bytes;
    rocksdb::Status s = store_->db_->Get(ro_, store_->cf_.forward,
                                         keys::ForwardKey(dict_, key.corpus, key.doc), &bytes);
    if (s.IsNotFound()) {
      return absl::InternalError(absl::StrCat("storage: inverted key of ", what_,
                                              " names document ", key.doc, " without codes"));
    }
    SAEDICT_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("get codes for ", what_)));
    SAEDICT_ASSIGN_OR_RETURN(std::vector<float> values,
                             DecodeFeatureValues(bytes, feature_, what_));
    auto& slot = decoded_[{key.corpus, key.doc}];
    slot = std::make_shared<const std::vector<float>>(std::move(values));
    return slot.get();
  }

  // A TokenRef with its corpus name, its document's decoded codes and its
  // document read under the snapshot.
  absl::StatusOr<TokenRef> Ref(const RankedToken& t) {
    TokenRef ref;
    {
      absl::ReaderMutexLock names(&store_->names_mu_);
      auto name = store_->corpus_names_.find(t.corpus);
      if (name == store_->corpus_names_.end()) {
        return absl::InternalError(
            absl::StrCat("storage: inverted key names unknown corpus number ", t.corpus));
      }
      ref.corpus = name->second;
    }
    ref.doc_id = t.doc;
    ref.position = t.pos;
    ref.value = t.value;
    auto values = decoded_.find({t.corpus, t.doc});
    if (values != decoded_.end()) ref.feature_values = values->second;
    auto cached = documents_.find({t.corpus, t.doc});
    if (cached == documents_.end()) {
      SAEDICT_ASSIGN_OR_RETURN(std::optional<StoredDocument> read,
                               store_->ReadDocument(ro_, t.corpus, ref.corpus, t.doc));
      std::shared_ptr<const StoredDocument> shared;
      if (read.has_value()) shared = std::make_shared<const StoredDocument>(std::move(*read));
      cached = documents_.emplace(std::make_pair(t.corpus, t.doc), std::move(shared)).first;
    }
    ref.document = cached->second;
    return ref;
  }

  absl::StatusOr<std::vector<TokenRef>> Refs(const std::vector<RankedToken>& tokens) {
    std::vector<TokenRef> out;
    out.reserve(tokens.size());
    for (const RankedToken& t : tokens) {
      SAEDICT_ASSIGN_OR_RETURN(TokenRef ref, Ref(t));
      out.push_back(std::move(ref));
    }
    return out;
  }

 private:
  RocksDbCorpusStore* const store_;
  rocksdb::ManagedSnapshot snapshot_;
  rocksdb::ReadOptions ro_;  // reads under the snapshot
  const uint32_t dict_;
  const uint32_t feature_;
  const std::string what_;
  const std::string prefix_, end_;
  const rocksdb::Slice upper_;  // views end_
  std::unique_ptr<rocksdb::Iterator> it_;
  bool started_ = false;
  std::map<std::pair<uint32_t, uint64_t>, std::shared_ptr<const std::vector<float>>> decoded_;
  std::map<std::pair<uint32_t, uint64_t>, std::shared_ptr<const StoredDocument>> documents_;
};

absl::StatusOr<std::vector<TokenRef>> RocksDbCorpusStore::TopTokens(
    const std::string& dictionary_id, uint32_t feature, int64_t limit,
    std::optional<float> start_at_or_below) {
  SAEDICT_RETURN_IF_ERROR(CheckTopTokensArguments(limit, start_at_or_below));
  const std::optional<uint32_t> d = DictNumber(dictionary_id);
  if (!d || limit == 0) return std::vector<TokenRef>();
  FeatureScan scan(
      this, *d, feature,
      absl::StrCat("top tokens of dictionary '", dictionary_id, "' feature ", feature));
  scan.Seek(start_at_or_below);
  std::vector<RankedToken> candidates;
  const size_t want = static_cast<size_t>(limit);
  for (;;) {
    SAEDICT_ASSIGN_OR_RETURN(std::optional<PeakOrderedDocuments::Entry> key, scan.Next());
    if (!key) break;
    // Documents come in descending peak order (ties: corpus, doc ascending):
    // once `want` candidates rank before anything this document (and so any
    // later one) can hold, the top is complete.
    if (candidates.size() >= want) {
      std::nth_element(candidates.begin(), candidates.begin() + (want - 1), candidates.end(),
                       RanksBefore);
      candidates.resize(want);
      const RankedToken& worst = *std::min_element(
          candidates.begin(), candidates.end(),
          [](const RankedToken& a, const RankedToken& b) { return RanksBefore(b, a); });
      if (worst.value > key->peak ||
          (worst.value == key->peak &&
           std::tie(worst.corpus, worst.doc) < std::tie(key->corpus, key->doc))) {
        break;
      }
    }
    SAEDICT_ASSIGN_OR_RETURN(const std::vector<float>* values, scan.FeatureValues(*key));
    for (size_t t = 0; t < values->size(); ++t) {
      const float v = (*values)[t];
      if (v == 0 || (start_at_or_below && v > *start_at_or_below)) continue;
      candidates.push_back({v, key->corpus, key->doc, static_cast<uint32_t>(t)});
    }
  }
  std::sort(candidates.begin(), candidates.end(), RanksBefore);
  if (candidates.size() > want) candidates.resize(want);
  return scan.Refs(candidates);
}

absl::StatusOr<std::vector<std::vector<TokenRef>>> RocksDbCorpusStore::SampleTokensInRanges(
    const std::string& dictionary_id, uint32_t feature, const std::vector<ValueRange>& ranges,
    int64_t per_range, int64_t candidates_per_range) {
  SAEDICT_RETURN_IF_ERROR(CheckSampleArguments(ranges, per_range, candidates_per_range));
  std::vector<std::vector<TokenRef>> out(ranges.size());
  const std::optional<uint32_t> d = DictNumber(dictionary_id);
  if (!d || per_range == 0 || ranges.empty()) return out;
  FeatureScan scan(
      this, *d, feature,
      absl::StrCat("sampled tokens of dictionary '", dictionary_id, "' feature ", feature));
  SAEDICT_ASSIGN_OR_RETURN(
      std::vector<std::vector<RankedToken>> found,
      CollectRangeCandidates(scan, ranges, static_cast<size_t>(candidates_per_range)));
  for (size_t i = 0; i < ranges.size(); ++i) {
    SAEDICT_ASSIGN_OR_RETURN(
        out[i], scan.Refs(EvenlySpacedPicks(std::move(found[i]), static_cast<size_t>(per_range))));
  }
  return out;
}

}  // namespace saedict::storage
