// Ingest batch validation and preparation (see ingest_prep.h).
#include "storage/ingest_prep.h"

#include <algorithm>

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "storage/codes_codec.h"
#include "storage/keys.h"
#include "util/half.h"

namespace saedict::storage {
namespace {

absl::Status DocError(size_t i, const IngestDocument& doc, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("storage: documents[", i, "] (doc_id ", doc.doc_id, "): ", what));
}

absl::Status ValidateDocument(size_t i, const IngestDocument& doc, int64_t d_sae) {
  const DocumentCodes& c = doc.codes;
  const size_t tokens = doc.token_ids.size();
  if (c.row_offsets.empty()) {
    return DocError(i, doc, absl::StrCat("codes have no row_offsets (need ", tokens + 1, ")"));
  }
  if (c.num_rows != static_cast<int64_t>(tokens)) {
    return DocError(i, doc,
                    absl::StrCat("codes.num_rows is ", c.num_rows, " but there are ", tokens,
                                 " tokens"));
  }
  if (c.row_offsets.size() - 1 != tokens) {
    return DocError(
        i, doc,
        absl::StrCat("codes have ", c.row_offsets.size() - 1, " rows but ", tokens, " tokens"));
  }
  if (!doc.token_strings.empty() && doc.token_strings.size() != tokens) {
    return DocError(i, doc,
                    absl::StrCat("token_strings has ", doc.token_strings.size(),
                                 " entries but there are ", tokens, " tokens"));
  }
  if (c.row_offsets[0] != 0) {
    return DocError(i, doc, absl::StrCat("codes.row_offsets[0] is ", c.row_offsets[0], ", not 0"));
  }
  for (size_t t = 0; t < tokens; ++t) {
    if (c.row_offsets[t + 1] < c.row_offsets[t]) {
      return DocError(i, doc,
                      absl::StrCat("codes.row_offsets[", t + 1, "] = ", c.row_offsets[t + 1],
                                   " is below row_offsets[", t, "] = ", c.row_offsets[t]));
    }
  }
  if (c.row_offsets.back() != c.indices.size()) {
    return DocError(i, doc,
                    absl::StrCat("codes.row_offsets ends at ", c.row_offsets.back(),
                                 " but there are ", c.indices.size(), " indices"));
  }
  if (c.indices.size() != c.values.size()) {
    return DocError(
        i, doc,
        absl::StrCat("codes have ", c.indices.size(), " indices but ", c.values.size(), " values"));
  }
  for (size_t t = 0; t < tokens; ++t) {
    for (uint64_t j = c.row_offsets[t]; j < c.row_offsets[t + 1]; ++j) {
      if (c.indices[j] >= d_sae) {
        return DocError(i, doc,
                        absl::StrCat("codes.indices[", j, "] = ", c.indices[j], " (token ", t,
                                     ") is not below d_sae ", d_sae));
      }
      if (j > c.row_offsets[t] && c.indices[j] <= c.indices[j - 1]) {
        return DocError(i, doc,
                        absl::StrCat("codes.indices[", j, "] = ", c.indices[j], " (token ", t,
                                     ") does not ascend after ", c.indices[j - 1]));
      }
      if (!std::isfinite(c.values[j])) {
        return DocError(
            i, doc,
            absl::StrCat("codes.values[", j, "] (token ", t, ") is ", c.values[j], ", not finite"));
      }
    }
  }
  return absl::OkStatus();
}

bool FiniteInHalf(float v) { return (FloatToF16(v) & 0x7C00u) != 0x7C00u; }

// Copies the non-zero values of `in`, transformed by `round`.
template <typename Round>
DocumentCodes KeepNonZero(const DocumentCodes& in, Round round) {
  DocumentCodes out;
  out.num_rows = in.num_rows;
  out.num_features = in.num_features;
  out.row_offsets.reserve(in.row_offsets.size());
  out.indices.reserve(in.indices.size());
  out.values.reserve(in.values.size());
  for (int64_t t = 0; t < in.num_rows; ++t) {
    for (uint64_t j = in.row_offsets[t]; j < in.row_offsets[t + 1]; ++j) {
      const float v = round(in.values[j]);
      if (v == 0) continue;
      out.indices.push_back(in.indices[j]);
      out.values.push_back(v);
    }
    out.row_offsets.push_back(out.indices.size());
  }
  return out;
}

}  // namespace

absl::Status ValidateIngestBatch(const IngestBatch& batch) {
  if (batch.dictionary_id.empty()) {
    return absl::InvalidArgumentError("storage: ingest batch has an empty dictionary id");
  }
  if (batch.corpus.empty()) {
    return absl::InvalidArgumentError("storage: ingest batch has an empty corpus");
  }
  if (batch.d_sae <= 0 || batch.d_sae > int64_t{0xFFFFFFFF}) {
    return absl::InvalidArgumentError(
        absl::StrCat("storage: ingest batch d_sae ", batch.d_sae, " is not in 1..4294967295"));
  }
  absl::flat_hash_map<uint64_t, size_t> seen;
  seen.reserve(batch.documents.size());
  for (size_t i = 0; i < batch.documents.size(); ++i) {
    const IngestDocument& doc = batch.documents[i];
    auto [it, inserted] = seen.emplace(doc.doc_id, i);
    if (!inserted) {
      return DocError(i, doc, absl::StrCat("duplicate doc_id (also documents[", it->second, "])"));
    }
    if (absl::Status s = ValidateDocument(i, doc, batch.d_sae); !s.ok()) return s;
  }
  return absl::OkStatus();
}

PreparedDocument PrepareDocument(const IngestDocument& doc, ValuePrecision precision) {
  PreparedDocument out;
  out.doc_id = doc.doc_id;
  out.tokens = doc.codes.num_rows;
  bool half = precision == ValuePrecision::kF16;
  if (half) {
    for (float v : doc.codes.values) {
      if (!FiniteInHalf(v)) {
        half = false;
        break;
      }
    }
  }
  if (half) {
    out.stored.codes = KeepNonZero(doc.codes, [](float v) { return F16ToFloat(FloatToF16(v)); });
    out.stored.precision = ValuePrecision::kF16;
  } else {
    out.stored.codes = KeepNonZero(doc.codes, [](float v) { return v; });
    out.stored.precision = ValuePrecision::kF32;
  }
  out.forward_value = EncodeCodes(out.stored.codes, out.stored.precision);
  out.token_ids.resize(doc.token_ids.size() * 4);
  char* p = out.token_ids.data();
  for (int32_t id : doc.token_ids) {
    const auto u = static_cast<uint32_t>(id);
    *p++ = static_cast<char>(u);
    *p++ = static_cast<char>(u >> 8);
    *p++ = static_cast<char>(u >> 16);
    *p++ = static_cast<char>(u >> 24);
  }
  out.has_strings = !doc.token_strings.empty();
  records::v1::DocumentRecord record;
  record.set_token_ids(out.token_ids);
  for (const std::string& s : doc.token_strings) record.add_token_strings(s);
  out.doc_record = record.SerializeAsString();
  return out;
}

void InvertedKeyBuilder::Offer(Peak& peak, uint32_t f, float value, uint32_t pos) {
  if (peak.pos == kUntouched) {
    touched_.push_back(f);
  } else if (!(value > peak.value)) {
    return;  // an earlier position holds a value as large
  }
  peak = {value, pos};
}

void InvertedKeyBuilder::Add(uint32_t dict, uint32_t corpus, uint64_t doc,
                             const DocumentCodes& codes) {
  touched_.clear();
  sparse_.clear();
  for (int64_t t = 0; t < codes.num_rows; ++t) {
    const auto pos = static_cast<uint32_t>(t);
    for (uint64_t j = codes.row_offsets[t]; j < codes.row_offsets[t + 1]; ++j) {
      const uint32_t f = codes.indices[j];
      if (f < kDenseFeatures) {
        if (f >= dense_.size()) {
          dense_.resize(std::max<size_t>(f + 1, 2 * dense_.size()), Peak{0, kUntouched});
        }
        Offer(dense_[f], f, codes.values[j], pos);
      } else {
        Offer(sparse_.try_emplace(f, Peak{0, kUntouched}).first->second, f, codes.values[j], pos);
      }
    }
  }
  std::sort(touched_.begin(), touched_.end());
  keys_.reserve(keys_.size() + touched_.size() * keys::kInvertedKeySize);
  for (uint32_t f : touched_) {
    Peak& peak = f < kDenseFeatures ? dense_[f] : sparse_[f];
    keys::AppendInvertedKey(&keys_, dict, f, peak.value, corpus, doc, peak.pos);
    peak.pos = kUntouched;
  }
}

uint32_t StatsDeltas::SlotOf(uint32_t feature) {
  const auto next = static_cast<uint32_t>(features_.size());
  uint32_t* slot = nullptr;
  if (feature < kDenseFeatures) {
    if (feature >= dense_slot_.size()) {
      dense_slot_.resize(std::max<size_t>(feature + 1, 2 * dense_slot_.size()), kNoSlot);
    }
    slot = &dense_slot_[feature];
  } else {
    slot = &sparse_slot_.try_emplace(feature, kNoSlot).first->second;
  }
  if (*slot == kNoSlot) {
    *slot = next;
    features_.push_back(Slot{feature, {}});
  }
  return *slot;
}

void StatsDeltas::AddCodes(const DocumentCodes& codes, int sign) {
  for (size_t j = 0; j < codes.values.size(); ++j) {
    const float value = codes.values[j];
    const double v = value;
    const uint32_t slot = SlotOf(codes.indices[j]);
    Feature& f = features_[slot].delta;
    f.count += sign;
    f.sum += sign * v;
    f.sum_sq += sign * v * v;
    const int32_t bin = HistogramBin(value);
    const uint64_t key = (uint64_t{slot} << 32) | static_cast<uint32_t>(bin);
    auto [it, inserted] = bin_index_.try_emplace(key, static_cast<uint32_t>(f.bins.size()));
    if (inserted) f.bins.emplace_back(bin, 0);
    f.bins[it->second].second += sign;
  }
}

bool StatsDeltas::IsZero(const Feature& f) {
  if (f.count != 0 || f.sum != 0 || f.sum_sq != 0) return false;
  for (const auto& [bin, n] : f.bins) {
    if (n != 0) return false;
  }
  return true;
}

records::v1::StatsRecord StatsDeltas::ToRecord(const Feature& f) {
  records::v1::StatsRecord r;
  r.set_count(f.count);
  r.set_sum(f.sum);
  r.set_sum_sq(f.sum_sq);
  std::vector<std::pair<int32_t, int64_t>> bins = f.bins;
  std::sort(bins.begin(), bins.end());
  for (const auto& [bin, n] : bins) {
    if (n != 0) (*r.mutable_bins())[bin] = n;
  }
  return r;
}

records::v1::StatsRecord StatsDeltas::TotalsRecord() const {
  records::v1::StatsRecord r;
  r.set_count(total_tokens_);
  r.set_documents(total_documents_);
  return r;
}

}  // namespace saedict::storage
