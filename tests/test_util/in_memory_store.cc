// InMemoryStore / InMemoryCorpusStore (see in_memory_store.h).
#include "tests/test_util/in_memory_store.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <map>
#include <memory>
#include <system_error>
#include <tuple>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "storage/ingest_prep.h"
#include "storage/keys.h"
#include "storage/token_ranking.h"
#include "util/status_macros.h"

namespace saedict::testing {

using storage::DictionaryTotals;
using storage::DocumentCodes;
using storage::FeatureStatsRecord;
using storage::IngestBatch;
using storage::IngestBatchResult;
using storage::IngestDocument;
using storage::StoredCodes;
using storage::StoredDocument;
using storage::TokenRef;

// Codes of one dictionary by (corpus number, doc).
using CodesByDocument =
    std::map<std::pair<uint32_t, uint64_t>, std::shared_ptr<const storage::StoredCodes>>;

// Everything a store holds; copied whole by Checkpoint. Documents and codes
// are immutable once stored (a write puts new objects), so TokenRefs share
// them and a copy of the maps is a consistent snapshot.
struct InMemoryContents {
  std::map<std::string, records::v1::DictionaryRecord>
      records;  // id order, as ListDictionaries wants
  // Corpus numbers in order of first ingest (RocksDB's "names" numbers):
  // the tie order of TopTokens.
  std::map<std::string, uint32_t> corpus_numbers;
  std::map<uint32_t, std::string> corpus_names;
  uint32_t next_corpus_number = 1;
  // (corpus number, doc) -> document.
  std::map<std::pair<uint32_t, uint64_t>, std::shared_ptr<const storage::StoredDocument>> documents;
  std::map<std::string, CodesByDocument> codes;  // dictionary id -> its codes
  // dictionary id -> feature -> record, and the manifests.
  std::map<std::string, std::map<uint32_t, records::v1::NeighboursRecord>> neighbours;
  std::map<std::string, records::v1::NeighboursManifest> neighbours_manifests;
};

struct InMemoryState {
  absl::Mutex mu;
  InMemoryContents contents ABSL_GUARDED_BY(mu);
};

namespace {

namespace fs = std::filesystem;

std::string DocName(const std::string& corpus, uint64_t doc) {
  return absl::StrCat("corpus '", corpus, "' document ", doc);
}

using storage::RankedToken;

// A document in which the feature is active, with its peak (largest value).
struct ActiveDocument {
  float peak = 0;
  uint32_t corpus = 0;
  uint64_t doc = 0;
  const DocumentCodes* codes = nullptr;  // owned by the store's contents
};

// The documents of `by_doc` where `feature` is active, in inverted-index
// order: peak descending, then corpus number and document ascending.
std::vector<ActiveDocument> ActiveDocuments(const CodesByDocument& by_doc, uint32_t feature) {
  std::vector<ActiveDocument> out;
  for (const auto& [key, stored] : by_doc) {
    std::optional<float> peak;
    const DocumentCodes& c = stored->codes;
    for (size_t j = 0; j < c.indices.size(); ++j) {
      if (c.indices[j] == feature) peak = peak ? std::max(*peak, c.values[j]) : c.values[j];
    }
    if (peak) out.push_back({*peak, key.first, key.second, &c});
  }
  std::sort(out.begin(), out.end(), [](const ActiveDocument& a, const ActiveDocument& b) {
    // The inverted key orders by the float's ordered u32 image (-0 < +0).
    const uint32_t oa = storage::keys::OrderedFromFloat(a.peak);
    const uint32_t ob = storage::keys::OrderedFromFloat(b.peak);
    if (oa != ob) return oa > ob;
    return std::tie(a.corpus, a.doc) < std::tie(b.corpus, b.doc);
  });
  return out;
}

// ActiveDocuments as the peak-ordered source of the shared sampling rule.
class ActiveDocumentScan : public storage::PeakOrderedDocuments {
 public:
  ActiveDocumentScan(std::vector<ActiveDocument> docs, uint32_t feature)
      : docs_(std::move(docs)), feature_(feature) {}

  void Seek(std::optional<float> at_or_below) override {
    next_ = 0;
    if (!at_or_below) return;
    const uint32_t bound = storage::keys::OrderedFromFloat(*at_or_below);
    while (next_ < docs_.size() && storage::keys::OrderedFromFloat(docs_[next_].peak) > bound) {
      ++next_;
    }
  }
  absl::StatusOr<std::optional<Entry>> Next() override {
    if (next_ >= docs_.size()) return std::nullopt;
    const ActiveDocument& d = docs_[next_++];
    return Entry{d.peak, d.corpus, d.doc};
  }
  absl::StatusOr<const std::vector<float>*> FeatureValues(const Entry& e) override {
    for (const ActiveDocument& d : docs_) {
      if (d.corpus != e.corpus || d.doc != e.doc) continue;
      std::vector<float>& out = values_[{e.corpus, e.doc}];
      out.assign(d.codes->num_rows, 0.0f);
      for (int64_t t = 0; t < d.codes->num_rows; ++t) out[t] = d.codes->ValueAt(t, feature_);
      return &out;
    }
    return absl::InternalError("in-memory store: scanned a document it does not hold");
  }

 private:
  const std::vector<ActiveDocument> docs_;
  const uint32_t feature_;
  size_t next_ = 0;
  std::map<std::pair<uint32_t, uint64_t>, std::vector<float>> values_;
};

// Calls fn(position, value) for every token of `codes` where `feature` is active.
template <typename Fn>
void ForEachActivation(const DocumentCodes& codes, uint32_t feature, Fn fn) {
  for (int64_t t = 0; t < codes.num_rows; ++t) {
    const float v = codes.ValueAt(t, feature);
    if (v != 0) fn(static_cast<uint32_t>(t), v);
  }
}

// TokenRefs with their corpus name and, as the RocksDB store attaches them,
// the document they were found in (shared, not copied) and the feature's
// value at each of its rows (one vector per document).
absl::StatusOr<std::vector<TokenRef>> ToTokenRefs(const std::vector<RankedToken>& candidates,
                                                  uint32_t feature, const CodesByDocument& by_doc,
                                                  const InMemoryContents& contents) {
  std::map<std::pair<uint32_t, uint64_t>, std::shared_ptr<const std::vector<float>>> values;
  std::vector<TokenRef> out;
  out.reserve(candidates.size());
  for (const RankedToken& c : candidates) {
    auto name = contents.corpus_names.find(c.corpus);
    if (name == contents.corpus_names.end()) {
      return absl::InternalError(
          absl::StrCat("in-memory store: codes name unknown corpus number ", c.corpus));
    }
    TokenRef ref;
    ref.corpus = name->second;
    ref.doc_id = c.doc;
    ref.position = c.pos;
    ref.value = c.value;
    std::shared_ptr<const std::vector<float>>& doc_values = values[{c.corpus, c.doc}];
    if (doc_values == nullptr) {
      const storage::DocumentCodes& codes = by_doc.at({c.corpus, c.doc})->codes;
      std::vector<float> dense(codes.num_rows);
      for (int64_t t = 0; t < codes.num_rows; ++t) dense[t] = codes.ValueAt(t, feature);
      doc_values = std::make_shared<const std::vector<float>>(std::move(dense));
    }
    ref.feature_values = doc_values;
    if (auto doc = contents.documents.find({c.corpus, c.doc}); doc != contents.documents.end()) {
      ref.document = doc->second;
    }
    out.push_back(std::move(ref));
  }
  return out;
}

// Removes every code of the dictionary (documents stay).
void DropDictionaryData(InMemoryContents& contents, const std::string& id) {
  contents.codes.erase(id);
  contents.neighbours.erase(id);
  contents.neighbours_manifests.erase(id);
}

// The RocksDB store's NOT_FOUND / FAILED_PRECONDITION for a batch's dictionary.
absl::Status CheckDictionaryRecord(const InMemoryContents& contents, const std::string& id,
                                   const std::string& weights_sha256) {
  auto it = contents.records.find(id);
  if (it == contents.records.end()) {
    return absl::NotFoundError(
        absl::StrCat("storage: dictionary '", id, "' has no record (never loaded or deleted)"));
  }
  if (!weights_sha256.empty() && it->second.info().weights_sha256() != weights_sha256) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dictionary '", id,
        "' was replaced during the ingest: this batch was encoded with "
        "weights sha256 ",
        weights_sha256, ", the dictionary now has ", it->second.info().weights_sha256(),
        "; nothing of this batch was stored, start a new stream"));
  }
  return absl::OkStatus();
}

// The ingest batches that rebuild `contents` in a fresh store, in corpus
// number order so the new store numbers corpora in the same order. Documents
// no dictionary holds codes for go through `orphan_dictionary` (deleted by
// the caller afterwards; documents stay).
std::vector<IngestBatch> ReplayBatches(const InMemoryContents& contents,
                                       const std::string& orphan_dictionary) {
  std::vector<IngestBatch> out;
  for (const auto& [number, corpus] : contents.corpus_names) {
    auto document_of = [&](uint64_t doc, const DocumentCodes& codes) {
      IngestDocument d;
      d.doc_id = doc;
      const StoredDocument& stored = *contents.documents.at({number, doc});
      d.token_ids = stored.token_ids;
      d.token_strings = stored.token_strings;
      d.codes = codes;
      return d;
    };
    std::map<std::pair<uint32_t, uint64_t>, bool> has_codes;
    for (const auto& [dict, by_doc] : contents.codes) {
      int64_t d_sae = 1;
      if (auto r = contents.records.find(dict); r != contents.records.end()) {
        d_sae = std::max<int64_t>(d_sae, r->second.info().d_sae());
      }
      for (storage::ValuePrecision precision :
           {storage::ValuePrecision::kF32, storage::ValuePrecision::kF16}) {
        IngestBatch batch;
        batch.dictionary_id = dict;
        batch.corpus = corpus;
        batch.precision = precision;
        for (auto it = by_doc.lower_bound({number, 0});
             it != by_doc.end() && it->first.first == number; ++it) {
          if (it->second->precision != precision) continue;
          has_codes[it->first] = true;
          for (uint32_t idx : it->second->codes.indices) {
            d_sae = std::max<int64_t>(d_sae, int64_t{idx} + 1);
          }
          batch.documents.push_back(document_of(it->first.second, it->second->codes));
        }
        batch.d_sae = d_sae;
        if (!batch.documents.empty()) out.push_back(std::move(batch));
      }
    }
    IngestBatch orphans;
    orphans.dictionary_id = orphan_dictionary;
    orphans.corpus = corpus;
    orphans.d_sae = 1;
    for (auto it = contents.documents.lower_bound({number, 0});
         it != contents.documents.end() && it->first.first == number; ++it) {
      if (has_codes.count(it->first) != 0) continue;
      DocumentCodes empty;
      empty.num_rows = static_cast<int64_t>(it->second->token_ids.size());
      empty.row_offsets.assign(it->second->token_ids.size() + 1, 0);
      orphans.documents.push_back(document_of(it->first.second, empty));
    }
    if (!orphans.documents.empty()) out.push_back(std::move(orphans));
  }
  return out;
}

absl::Status WriteCheckpoint(const InMemoryContents& contents, const fs::path& dir) {
  SAEDICT_ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> db,
                           storage::Store::Open({dir, /*create_if_missing=*/true}));
  for (const auto& [id, record] : contents.records) {
    SAEDICT_RETURN_IF_ERROR(db->PutDictionary(record));
  }
  std::string orphan_dictionary = "checkpoint.orphan-documents";
  while (contents.records.count(orphan_dictionary) != 0) orphan_dictionary += "_";
  const std::vector<IngestBatch> batches = ReplayBatches(contents, orphan_dictionary);
  bool orphans = false;
  for (const IngestBatch& batch : batches) {
    if (batch.dictionary_id == orphan_dictionary && !orphans) {
      records::v1::DictionaryRecord record;
      record.mutable_info()->set_id(orphan_dictionary);
      record.mutable_info()->set_d_sae(1);
      SAEDICT_RETURN_IF_ERROR(db->PutDictionary(record));
      orphans = true;
    }
    SAEDICT_RETURN_IF_ERROR(db->corpus()->WriteIngestBatch(batch).status());
  }
  if (orphans) SAEDICT_RETURN_IF_ERROR(db->DeleteDictionary(orphan_dictionary));
  return absl::OkStatus();
}

// The explanations of `from` into the checkpoint database at `dir`.
absl::Status CopyExplanations(storage::ExplanationStore* from, const fs::path& dir) {
  std::vector<storage::StoredExplanation> all;
  SAEDICT_RETURN_IF_ERROR(from->ForEach("", [&](const storage::StoredExplanation& e) {
    all.push_back(e);
    return absl::OkStatus();
  }));
  if (all.empty()) return absl::OkStatus();
  SAEDICT_ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> db,
                           storage::Store::Open({dir, /*create_if_missing=*/false}));
  return db->explanations()->Write({}, all);
}

}  // namespace

// --- InMemoryCorpusStore -----------------------------------------------------

absl::StatusOr<IngestBatchResult> InMemoryCorpusStore::WriteIngestBatch(const IngestBatch& batch) {
  SAEDICT_RETURN_IF_ERROR(storage::ValidateIngestBatch(batch));
  IngestBatchResult result;
  std::vector<storage::PreparedDocument> docs;
  docs.reserve(batch.documents.size());
  for (const IngestDocument& doc : batch.documents) {
    docs.push_back(storage::PrepareDocument(doc, batch.precision));
    docs.back().stored.codes.num_features = 0;  // what a read of a stored record gives
    result.tokens += docs.back().tokens;
  }
  result.documents = static_cast<int64_t>(docs.size());

  absl::MutexLock lock(&state_->mu);
  InMemoryContents& c = state_->contents;
  SAEDICT_RETURN_IF_ERROR(CheckDictionaryRecord(c, batch.dictionary_id, batch.weights_sha256));
  // Like RocksDB, the corpus number is allocated (and kept) before the
  // document checks below.
  auto [number_it, inserted] = c.corpus_numbers.emplace(batch.corpus, c.next_corpus_number);
  if (inserted) {
    c.corpus_names[c.next_corpus_number] = batch.corpus;
    ++c.next_corpus_number;
  }
  const uint32_t corpus = number_it->second;
  auto mine = c.codes.find(batch.dictionary_id);
  auto holds = [&](const auto& it, const std::pair<uint32_t, uint64_t>& key) {
    return it != c.codes.end() && it->second.count(key) != 0;
  };

  // Checks first: nothing of a refused batch is applied.
  std::vector<bool> put_doc(docs.size(), true);
  for (size_t i = 0; i < docs.size(); ++i) {
    const IngestDocument& doc = batch.documents[i];
    const std::pair<uint32_t, uint64_t> key{corpus, doc.doc_id};
    if (holds(mine, key)) ++result.replaced_documents;
    auto stored = c.documents.find(key);
    if (stored == c.documents.end()) continue;
    if (stored->second->token_ids != doc.token_ids) {
      for (auto other = c.codes.begin(); other != c.codes.end(); ++other) {
        if (other != mine && holds(other, key)) {
          return absl::FailedPreconditionError(absl::StrCat(
              "storage: ", DocName(batch.corpus, doc.doc_id),
              " is stored with different tokens and dictionary '", other->first,
              "' holds codes for it; use a new doc_id or delete that dictionary's data"));
        }
      }
    } else {
      // Same tokens: keep stored strings unless this batch brings some.
      put_doc[i] = !doc.token_strings.empty() || stored->second->token_strings.empty();
    }
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    const IngestDocument& doc = batch.documents[i];
    const std::pair<uint32_t, uint64_t> key{corpus, doc.doc_id};
    if (put_doc[i]) {
      c.documents[key] =
          std::make_shared<const StoredDocument>(StoredDocument{doc.token_ids, doc.token_strings});
    }
    c.codes[batch.dictionary_id][key] =
        std::make_shared<const StoredCodes>(std::move(docs[i].stored));
  }
  return result;
}

absl::StatusOr<std::optional<StoredDocument>> InMemoryCorpusStore::GetDocument(
    const std::string& corpus, uint64_t doc_id) {
  absl::MutexLock lock(&state_->mu);
  const InMemoryContents& c = state_->contents;
  auto number = c.corpus_numbers.find(corpus);
  if (number == c.corpus_numbers.end()) return std::nullopt;
  auto it = c.documents.find({number->second, doc_id});
  if (it == c.documents.end()) return std::nullopt;
  return *it->second;
}

absl::StatusOr<std::optional<StoredCodes>> InMemoryCorpusStore::GetCodes(
    const std::string& dictionary_id, const std::string& corpus, uint64_t doc_id) {
  absl::MutexLock lock(&state_->mu);
  const InMemoryContents& c = state_->contents;
  auto number = c.corpus_numbers.find(corpus);
  auto dict = c.codes.find(dictionary_id);
  if (number == c.corpus_numbers.end() || dict == c.codes.end()) return std::nullopt;
  auto it = dict->second.find({number->second, doc_id});
  if (it == dict->second.end()) return std::nullopt;
  return *it->second;
}

absl::StatusOr<FeatureStatsRecord> InMemoryCorpusStore::GetFeatureStats(
    const std::string& dictionary_id, uint32_t feature) {
  if (feature == storage::keys::kTotalsFeature) {
    return absl::InvalidArgumentError(absl::StrCat("storage: feature ", feature, " is reserved"));
  }
  FeatureStatsRecord out;
  absl::MutexLock lock(&state_->mu);
  const InMemoryContents& c = state_->contents;
  auto dict = c.codes.find(dictionary_id);
  if (dict == c.codes.end()) return out;
  std::map<int32_t, int64_t> bins;
  for (const auto& [key, stored] : dict->second) {
    const DocumentCodes& codes = stored->codes;
    for (size_t j = 0; j < codes.indices.size(); ++j) {
      if (codes.indices[j] != feature) continue;
      const float v = codes.values[j];
      ++out.count;
      out.sum += v;
      out.sum_sq += double{v} * v;
      out.max = out.max ? std::max(*out.max, v) : v;
      ++bins[storage::HistogramBin(v)];
    }
  }
  out.bins.assign(bins.begin(), bins.end());
  return out;
}

absl::StatusOr<DictionaryTotals> InMemoryCorpusStore::GetDictionaryTotals(
    const std::string& dictionary_id) {
  DictionaryTotals out;
  absl::MutexLock lock(&state_->mu);
  const InMemoryContents& c = state_->contents;
  auto dict = c.codes.find(dictionary_id);
  if (dict == c.codes.end()) return out;
  for (const auto& [key, stored] : dict->second) {
    out.tokens += stored->codes.num_rows;
    ++out.documents;
  }
  return out;
}

absl::StatusOr<std::vector<TokenRef>> InMemoryCorpusStore::TopTokens(
    const std::string& dictionary_id, uint32_t feature, int64_t limit,
    std::optional<float> start_at_or_below) {
  SAEDICT_RETURN_IF_ERROR(storage::CheckTopTokensArguments(limit, start_at_or_below));
  absl::MutexLock lock(&state_->mu);
  const InMemoryContents& c = state_->contents;
  auto dict = c.codes.find(dictionary_id);
  if (dict == c.codes.end() || limit == 0) return std::vector<TokenRef>();
  std::vector<RankedToken> candidates;
  for (const ActiveDocument& doc : ActiveDocuments(dict->second, feature)) {
    // With a start value: only the documents whose peak is at or below it.
    if (start_at_or_below && storage::keys::OrderedFromFloat(doc.peak) >
                                 storage::keys::OrderedFromFloat(*start_at_or_below)) {
      continue;
    }
    ForEachActivation(*doc.codes, feature, [&](uint32_t pos, float v) {
      if (start_at_or_below && v > *start_at_or_below) return;
      candidates.push_back({v, doc.corpus, doc.doc, pos});
    });
  }
  std::sort(candidates.begin(), candidates.end(), storage::RanksBefore);
  if (candidates.size() > static_cast<size_t>(limit)) candidates.resize(limit);
  return ToTokenRefs(candidates, feature, dict->second, c);
}

absl::StatusOr<std::vector<std::vector<TokenRef>>> InMemoryCorpusStore::SampleTokensInRanges(
    const std::string& dictionary_id, uint32_t feature, const std::vector<ValueRange>& ranges,
    int64_t per_range, int64_t candidates_per_range) {
  SAEDICT_RETURN_IF_ERROR(storage::CheckSampleArguments(ranges, per_range, candidates_per_range));
  std::vector<std::vector<TokenRef>> out(ranges.size());
  absl::MutexLock lock(&state_->mu);
  const InMemoryContents& c = state_->contents;
  auto dict = c.codes.find(dictionary_id);
  if (dict == c.codes.end() || per_range == 0 || ranges.empty()) return out;

  ActiveDocumentScan scan(ActiveDocuments(dict->second, feature), feature);
  SAEDICT_ASSIGN_OR_RETURN(
      std::vector<std::vector<RankedToken>> found,
      storage::CollectRangeCandidates(scan, ranges, static_cast<size_t>(candidates_per_range)));
  for (size_t i = 0; i < ranges.size(); ++i) {
    SAEDICT_ASSIGN_OR_RETURN(
        out[i],
        ToTokenRefs(storage::EvenlySpacedPicks(std::move(found[i]), static_cast<size_t>(per_range)),
                    feature, dict->second, c));
  }
  return out;
}

absl::Status InMemoryCorpusStore::DeleteDictionaryData(const std::string& dictionary_id) {
  absl::MutexLock lock(&state_->mu);
  DropDictionaryData(state_->contents, dictionary_id);
  return absl::OkStatus();
}

absl::Status InMemoryCorpusStore::ScanCodes(
    const std::string& dictionary_id,
    const std::function<absl::Status(const storage::StoredCodes&)>& fn) {
  CodesByDocument snapshot;
  {
    absl::MutexLock lock(&state_->mu);
    auto it = state_->contents.codes.find(dictionary_id);
    if (it == state_->contents.codes.end()) return absl::OkStatus();
    snapshot = it->second;
  }
  for (const auto& [key, stored] : snapshot) {
    if (absl::Status s = fn(*stored); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status InMemoryCorpusStore::ScanCodePairs(const std::string& dictionary_a,
                                                const std::string& dictionary_b,
                                                const std::string& corpus, const CodePairFn& fn) {
  CodesByDocument a, b;
  std::optional<uint32_t> number;
  {
    absl::MutexLock lock(&state_->mu);
    const InMemoryContents& c = state_->contents;
    for (const auto& [n, name] : c.corpus_names) {
      if (name == corpus) number = n;
    }
    auto ia = c.codes.find(dictionary_a), ib = c.codes.find(dictionary_b);
    if (!number || ia == c.codes.end() || ib == c.codes.end()) return absl::OkStatus();
    a = ia->second;
    b = ib->second;
  }
  for (auto it = a.lower_bound({*number, 0}); it != a.end() && it->first.first == *number; ++it) {
    auto other = b.find(it->first);
    if (other == b.end()) continue;
    if (absl::Status s = fn(it->first.second, *it->second, *other->second); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status InMemoryCorpusStore::PutNeighbours(
    const std::string& dictionary_id, uint32_t first_feature,
    const std::vector<records::v1::NeighboursRecord>& records) {
  absl::MutexLock lock(&state_->mu);
  auto& by_feature = state_->contents.neighbours[dictionary_id];
  for (size_t i = 0; i < records.size(); ++i) {
    by_feature[first_feature + static_cast<uint32_t>(i)] = records[i];
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<records::v1::NeighboursRecord>> InMemoryCorpusStore::GetNeighbours(
    const std::string& dictionary_id, uint32_t feature) {
  absl::MutexLock lock(&state_->mu);
  auto it = state_->contents.neighbours.find(dictionary_id);
  if (it == state_->contents.neighbours.end()) return std::nullopt;
  auto f = it->second.find(feature);
  if (f == it->second.end()) return std::nullopt;
  return f->second;
}

absl::Status InMemoryCorpusStore::PutNeighboursManifest(
    const std::string& dictionary_id, const records::v1::NeighboursManifest& manifest) {
  absl::MutexLock lock(&state_->mu);
  state_->contents.neighbours_manifests[dictionary_id] = manifest;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<records::v1::NeighboursManifest>>
InMemoryCorpusStore::GetNeighboursManifest(const std::string& dictionary_id) {
  absl::MutexLock lock(&state_->mu);
  auto it = state_->contents.neighbours_manifests.find(dictionary_id);
  if (it == state_->contents.neighbours_manifests.end()) return std::nullopt;
  return it->second;
}

absl::Status InMemoryCorpusStore::DeleteNeighbours(const std::string& dictionary_id) {
  absl::MutexLock lock(&state_->mu);
  state_->contents.neighbours.erase(dictionary_id);
  state_->contents.neighbours_manifests.erase(dictionary_id);
  return absl::OkStatus();
}

// --- InMemoryStore -----------------------------------------------------------

// The explanation store on a RocksDB database that lives in memory.
struct MemoryEnvExplanations {
  MemoryEnvExplanations() : env(rocksdb::NewMemEnv(rocksdb::Env::Default())) {
    rocksdb::DBOptions options;
    options.env = env.get();
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"explanations", {}}, {"explanation_terms", {}}};
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, "/in-memory-explanations", families, &handles, &raw);
    if (!s.ok()) {
      std::fprintf(stderr, "InMemoryStore: memory-env RocksDB: %s\n", s.ToString().c_str());
      std::abort();
    }
    db.reset(raw);
    store = std::make_unique<storage::ExplanationStore>(db.get(), handles[1], handles[2]);
  }
  ~MemoryEnvExplanations() {
    store.reset();
    for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
    db->Close();
    db.reset();
  }
  std::unique_ptr<rocksdb::Env> env;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::unique_ptr<rocksdb::DB> db;
  std::unique_ptr<storage::ExplanationStore> store;
};

InMemoryStore::InMemoryStore()
    : state_(std::make_unique<InMemoryState>()),
      corpus_(state_.get()),
      explanations_(std::make_unique<MemoryEnvExplanations>()) {}

InMemoryStore::~InMemoryStore() = default;

storage::ExplanationStore* InMemoryStore::explanations() { return explanations_->store.get(); }

absl::Status InMemoryStore::PutDictionary(const records::v1::DictionaryRecord& record) {
  if (record.info().id().empty()) {
    return absl::InvalidArgumentError("storage: dictionary record has no id");
  }
  absl::MutexLock lock(&state_->mu);
  state_->contents.records[record.info().id()] = record;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<records::v1::DictionaryRecord>> InMemoryStore::GetDictionary(
    const std::string& id) {
  absl::MutexLock lock(&state_->mu);
  auto it = state_->contents.records.find(id);
  if (it == state_->contents.records.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::vector<records::v1::DictionaryRecord>> InMemoryStore::ListDictionaries() {
  absl::MutexLock lock(&state_->mu);
  std::vector<records::v1::DictionaryRecord> out;
  out.reserve(state_->contents.records.size());
  for (const auto& [id, record] : state_->contents.records) out.push_back(record);
  return out;
}

absl::Status InMemoryStore::DeleteDictionary(const std::string& id) {
  SAEDICT_RETURN_IF_ERROR(explanations_->store->DeleteDictionary(id));
  absl::MutexLock lock(&state_->mu);
  DropDictionaryData(state_->contents, id);
  state_->contents.records.erase(id);
  return absl::OkStatus();
}

absl::Status InMemoryStore::ReplaceDictionary(const records::v1::DictionaryRecord& record) {
  if (record.info().id().empty()) {
    return absl::InvalidArgumentError("storage: dictionary record has no id");
  }
  absl::MutexLock lock(&state_->mu);
  DropDictionaryData(state_->contents, record.info().id());
  state_->contents.records[record.info().id()] = record;
  return absl::OkStatus();
}

absl::Status InMemoryStore::Checkpoint(const fs::path& dir) {
  std::error_code ec;
  const fs::path target = fs::absolute(dir, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("storage: checkpoint directory ", dir.string(), ": ", ec.message()));
  }
  if (fs::exists(target, ec)) {
    return absl::AlreadyExistsError(
        absl::StrCat("storage: checkpoint directory ", target.string(), " already exists"));
  }
  InMemoryContents copy;
  {
    absl::MutexLock lock(&state_->mu);
    copy = state_->contents;
  }
  absl::Status s = WriteCheckpoint(copy, target);
  if (s.ok()) s = CopyExplanations(explanations_->store.get(), target);
  if (!s.ok()) fs::remove_all(target, ec);  // a failed checkpoint leaves nothing behind
  return s;
}

}  // namespace saedict::testing
