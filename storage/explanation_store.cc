// ExplanationStore (contract and layout: explanation_store.h).
#include "storage/explanation_store.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/snapshot.h"
#include "rocksdb/write_batch.h"
#include "storage/explanation_terms.h"
#include "storage/keys.h"
#include "storage/rocksdb_status.h"
#include "util/sha256.h"
#include "util/status_macros.h"

namespace saedict::storage {
namespace {

constexpr char kTotalsKey[] = "\x01totals";
constexpr size_t kIdSize = 16;
constexpr double kK1 = 1.2;
constexpr double kB = 0.75;

rocksdb::WriteOptions SyncWrite() {
  rocksdb::WriteOptions w;
  w.sync = true;
  return w;
}

absl::Status CheckKey(const ExplanationKey& key) {
  if (key.dictionary_id.empty() || key.dictionary_id.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("storage: explanation key has a bad dictionary id '", key.dictionary_id, "'"));
  }
  if (!IsLowerHex(key.id, kIdSize)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "storage: explanation id must be 16 lowercase hex digits, got '", key.id, "'"));
  }
  return absl::OkStatus();
}

std::string FeaturePrefix(const std::string& dict, uint32_t feature) {
  std::string k = dict;
  k.push_back('\0');
  keys::AppendU32(&k, feature);
  return k;
}

std::string RecordKey(const ExplanationKey& key) {
  return FeaturePrefix(key.dictionary_id, key.feature) + key.id;
}

// <dict> 0x00 <feature> <id> (the tail of a posting key, and a record key).
std::optional<ExplanationKey> ParseRecordKey(absl::string_view k) {
  const size_t zero = k.find('\0');
  if (zero == absl::string_view::npos || k.size() != zero + 1 + 4 + kIdSize) return std::nullopt;
  ExplanationKey key;
  key.dictionary_id = std::string(k.substr(0, zero));
  key.feature = keys::ReadU32(k.data() + zero + 1);
  key.id = std::string(k.substr(zero + 5));
  return key;
}

std::string PostingKey(const std::string& term, const ExplanationKey& key) {
  std::string k = term;
  k.push_back('\0');
  k += RecordKey(key);
  return k;
}

std::string EncodeTotals(const ExplanationTotals& t) {
  std::string v;
  keys::AppendU64(&v, t.explanations);
  keys::AppendU64(&v, t.terms);
  return v;
}

// term -> frequency for one text; the document length is terms.size().
absl::flat_hash_map<std::string, uint32_t> TermFrequencies(const std::vector<std::string>& terms) {
  absl::flat_hash_map<std::string, uint32_t> tf;
  for (const std::string& t : terms) ++tf[t];
  return tf;
}

absl::StatusOr<std::optional<records::v1::ExplanationRecord>> ReadRecord(
    rocksdb::DB* db, const rocksdb::ReadOptions& ro, rocksdb::ColumnFamilyHandle* cf,
    const ExplanationKey& key) {
  std::string bytes;
  rocksdb::Status s = db->Get(ro, cf, RecordKey(key), &bytes);
  if (s.IsNotFound()) return std::nullopt;
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(s, "get explanation"));
  records::v1::ExplanationRecord record;
  if (!record.ParseFromString(bytes)) {
    return absl::InternalError(absl::StrCat("storage: explanation ", key.id, " of feature ",
                                            key.feature, " of dictionary '", key.dictionary_id,
                                            "' is corrupt (", bytes.size(), " bytes)"));
  }
  return record;
}

}  // namespace

bool ExplanationKey::operator<(const ExplanationKey& o) const {
  return std::tie(dictionary_id, feature, id) < std::tie(o.dictionary_id, o.feature, o.id);
}

ExplanationStore::ExplanationStore(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* explanations,
                                   rocksdb::ColumnFamilyHandle* terms, DiskSpaceGuard guard)
    : db_(db), records_(explanations), terms_(terms), guard_(std::move(guard)) {}

absl::StatusOr<ExplanationTotals> ExplanationStore::ReadTotals(const rocksdb::ReadOptions& ro) {
  std::string bytes;
  rocksdb::Status s = db_->Get(ro, terms_, kTotalsKey, &bytes);
  if (s.IsNotFound()) return ExplanationTotals{};
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(s, "get explanation totals"));
  if (bytes.size() != 16) {
    return absl::InternalError(
        absl::StrCat("storage: explanation totals are corrupt (", bytes.size(), " bytes, want 16)"));
  }
  return ExplanationTotals{keys::ReadU64(bytes.data()), keys::ReadU64(bytes.data() + 8)};
}

absl::StatusOr<ExplanationTotals> ExplanationStore::Totals() {
  return ReadTotals(rocksdb::ReadOptions());
}

absl::Status ExplanationStore::Write(const std::vector<ExplanationKey>& remove,
                                     const std::vector<StoredExplanation>& put) {
  for (const ExplanationKey& k : remove) SAEDICT_RETURN_IF_ERROR(CheckKey(k));
  for (const StoredExplanation& e : put) SAEDICT_RETURN_IF_ERROR(CheckKey(e.key));
  if (!put.empty()) SAEDICT_RETURN_IF_ERROR(guard_.Check("write explanations"));
  absl::MutexLock lock(&write_mu_);
  const rocksdb::ReadOptions ro;
  SAEDICT_ASSIGN_OR_RETURN(ExplanationTotals totals, ReadTotals(ro));
  // What this batch has done so far to each key (nullopt: removed), so a key
  // that appears twice sees its own earlier change.
  absl::flat_hash_map<std::string, std::optional<records::v1::ExplanationRecord>> pending;
  rocksdb::WriteBatch wb;
  auto remove_one = [&](const ExplanationKey& key) -> absl::Status {
    const std::string rk = RecordKey(key);
    std::optional<records::v1::ExplanationRecord> old;
    if (auto it = pending.find(rk); it != pending.end()) {
      old = it->second;
    } else {
      SAEDICT_ASSIGN_OR_RETURN(old, ReadRecord(db_, ro, records_, key));
    }
    if (!old) return absl::OkStatus();
    for (const auto& [term, tf] : TermFrequencies(Terms(old->text()))) {
      SAEDICT_RETURN_IF_ERROR(FromRocksDb(wb.Delete(terms_, PostingKey(term, key)), "batch"));
    }
    SAEDICT_RETURN_IF_ERROR(FromRocksDb(wb.Delete(records_, rk), "batch"));
    totals.explanations -= std::min<uint64_t>(totals.explanations, 1);
    totals.terms -= std::min<uint64_t>(totals.terms, static_cast<uint64_t>(old->term_count()));
    pending[rk] = std::nullopt;
    return absl::OkStatus();
  };
  for (const ExplanationKey& key : remove) SAEDICT_RETURN_IF_ERROR(remove_one(key));
  for (const StoredExplanation& e : put) {
    SAEDICT_RETURN_IF_ERROR(remove_one(e.key));
    const std::vector<std::string> terms = Terms(e.record.text());
    records::v1::ExplanationRecord record = e.record;
    record.set_term_count(static_cast<int32_t>(terms.size()));
    for (const auto& [term, tf] : TermFrequencies(terms)) {
      std::string value;
      keys::AppendU32(&value, tf);
      keys::AppendU32(&value, static_cast<uint32_t>(terms.size()));
      SAEDICT_RETURN_IF_ERROR(FromRocksDb(wb.Put(terms_, PostingKey(term, e.key), value), "batch"));
    }
    const std::string rk = RecordKey(e.key);
    SAEDICT_RETURN_IF_ERROR(FromRocksDb(wb.Put(records_, rk, record.SerializeAsString()), "batch"));
    totals.explanations += 1;
    totals.terms += terms.size();
    pending[rk] = std::move(record);
  }
  if (wb.Count() == 0) return absl::OkStatus();
  SAEDICT_RETURN_IF_ERROR(FromRocksDb(wb.Put(terms_, kTotalsKey, EncodeTotals(totals)), "batch"));
  return FromRocksDb(db_->Write(SyncWrite(), &wb), "write explanations");
}

absl::StatusOr<std::optional<records::v1::ExplanationRecord>> ExplanationStore::Get(
    const ExplanationKey& key) {
  SAEDICT_RETURN_IF_ERROR(CheckKey(key));
  return ReadRecord(db_, rocksdb::ReadOptions(), records_, key);
}

namespace {

// Calls fn for every record whose key starts with `prefix`.
absl::Status ScanRecords(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                         const std::string& prefix,
                         const std::function<absl::Status(const StoredExplanation&)>& fn) {
  rocksdb::ManagedSnapshot snapshot(db);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.snapshot();
  const std::string end = prefix.empty() ? std::string() : keys::PrefixSuccessor(prefix);
  const rocksdb::Slice lower(prefix), upper(end);
  if (!prefix.empty()) {
    ro.iterate_lower_bound = &lower;
    ro.iterate_upper_bound = &upper;
  }
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const absl::string_view k(it->key().data(), it->key().size());
    std::optional<ExplanationKey> key = ParseRecordKey(k);
    StoredExplanation e;
    if (!key || !e.record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::InternalError(
          absl::StrCat("storage: explanation record with key of ", k.size(), " bytes is corrupt"));
    }
    e.key = std::move(*key);
    SAEDICT_RETURN_IF_ERROR(fn(e));
  }
  return FromRocksDb(it->status(), "scan explanations");
}

}  // namespace

absl::StatusOr<std::vector<StoredExplanation>> ExplanationStore::List(
    const std::string& dictionary_id, uint32_t feature) {
  std::vector<StoredExplanation> out;
  SAEDICT_RETURN_IF_ERROR(ScanRecords(db_, records_, FeaturePrefix(dictionary_id, feature),
                                      [&](const StoredExplanation& e) {
                                        out.push_back(e);
                                        return absl::OkStatus();
                                      }));
  return out;
}

absl::Status ExplanationStore::ForEach(
    const std::string& dictionary_id,
    const std::function<absl::Status(const StoredExplanation&)>& fn) {
  return ScanRecords(db_, records_,
                     dictionary_id.empty() ? std::string() : dictionary_id + std::string(1, '\0'),
                     fn);
}

absl::Status ExplanationStore::DeleteDictionary(const std::string& dictionary_id) {
  if (dictionary_id.empty()) return absl::InvalidArgumentError("storage: empty dictionary id");
  std::vector<ExplanationKey> keys;
  SAEDICT_RETURN_IF_ERROR(ForEach(dictionary_id, [&](const StoredExplanation& e) {
    keys.push_back(e.key);
    return absl::OkStatus();
  }));
  constexpr size_t kPerBatch = 4096;
  for (size_t i = 0; i < keys.size(); i += kPerBatch) {
    const std::vector<ExplanationKey> part(keys.begin() + i,
                                           keys.begin() + std::min(keys.size(), i + kPerBatch));
    SAEDICT_RETURN_IF_ERROR(Write(part, {}));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ExplanationMatch>> ExplanationStore::Search(
    const std::vector<std::string>& terms, const std::vector<std::string>& dictionary_ids,
    size_t limit, size_t* total) {
  rocksdb::ManagedSnapshot snapshot(db_);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.snapshot();
  SAEDICT_ASSIGN_OR_RETURN(const ExplanationTotals totals, ReadTotals(ro));
  const absl::flat_hash_set<std::string> only(dictionary_ids.begin(), dictionary_ids.end());
  const double n = static_cast<double>(totals.explanations);
  const double avgdl =
      totals.explanations ? static_cast<double>(totals.terms) / n : 1.0;
  // Distinct query terms in query order; a match records which by bit.
  std::vector<std::string> query;
  for (const std::string& term : terms) {
    if (term.empty() || query.size() == kMaxQueryTerms) continue;
    if (std::find(query.begin(), query.end(), term) == query.end()) query.push_back(term);
  }
  struct Scored {
    std::string record_key;
    double score = 0;
    uint64_t terms = 0;  // bit i: query[i] matched
  };
  std::vector<Scored> scored;
  absl::flat_hash_map<std::string, size_t> index_of;  // record key -> scored[]
  for (size_t q = 0; q < query.size(); ++q) {
    const std::string& term = query[q];
    const std::string prefix = term + std::string(1, '\0');
    const std::string end = keys::PrefixSuccessor(prefix);
    const rocksdb::Slice lower(prefix), upper(end);
    rocksdb::ReadOptions scan = ro;
    scan.iterate_lower_bound = &lower;
    scan.iterate_upper_bound = &upper;
    // df counts every posting; the scores need tf, dl and the key of those kept.
    struct Posting {
      size_t at;  // into scored
      uint32_t tf, dl;
    };
    std::vector<Posting> postings;
    uint64_t df = 0;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(scan, terms_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++df;
      const absl::string_view k(it->key().data() + prefix.size(), it->key().size() - prefix.size());
      if (it->value().size() != 8) {
        return absl::InternalError(absl::StrCat("storage: posting of term '", term, "' is corrupt"));
      }
      if (!only.empty()) {
        const size_t zero = k.find('\0');
        if (zero == absl::string_view::npos || !only.contains(k.substr(0, zero))) continue;
      }
      auto [slot, inserted] = index_of.try_emplace(k, scored.size());
      if (inserted) scored.push_back(Scored{std::string(k), 0, 0});
      postings.push_back(Posting{slot->second, keys::ReadU32(it->value().data()),
                                 keys::ReadU32(it->value().data() + 4)});
    }
    SAEDICT_RETURN_IF_ERROR(FromRocksDb(it->status(), "scan explanation postings"));
    const double idf = std::log(1.0 + (n - static_cast<double>(df) + 0.5) /
                                          (static_cast<double>(df) + 0.5));
    for (const Posting& p : postings) {
      const double tf = p.tf;
      const double norm = kK1 * (1.0 - kB + kB * static_cast<double>(p.dl) / avgdl);
      scored[p.at].score += idf * tf * (kK1 + 1.0) / (tf + norm);
      scored[p.at].terms |= uint64_t{1} << q;
    }
  }
  if (total != nullptr) *total = scored.size();
  // Record keys order as (dictionary, feature, id) do: the id is fixed-width.
  auto better = [](const Scored& a, const Scored& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.record_key < b.record_key;
  };
  const size_t keep = std::min(limit, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(keep),
                    scored.end(), better);
  std::vector<ExplanationMatch> out;
  out.reserve(keep);
  for (size_t i = 0; i < keep; ++i) {
    std::optional<ExplanationKey> key = ParseRecordKey(scored[i].record_key);
    if (!key) return absl::InternalError("storage: posting key is corrupt");
    ExplanationMatch& m = out.emplace_back();
    m.key = *std::move(key);
    m.score = scored[i].score;
    for (size_t q = 0; q < query.size(); ++q) {
      if (scored[i].terms >> q & 1) m.matched_terms.push_back(query[q]);
    }
  }
  return out;
}

}  // namespace saedict::storage
