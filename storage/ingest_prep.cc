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

void AppendInvertedKeys(std::string* out, uint32_t dict, uint32_t corpus, uint64_t doc,
                        const DocumentCodes& codes) {
  // Each active feature's peak in the document: its largest value and the
  // first position holding it.
  struct Peak {
    uint32_t feature;
    float value;
    uint32_t pos;
  };
  std::vector<Peak> peaks;
  peaks.reserve(codes.values.size());
  for (int64_t t = 0; t < codes.num_rows; ++t) {
    for (uint64_t j = codes.row_offsets[t]; j < codes.row_offsets[t + 1]; ++j) {
      peaks.push_back({codes.indices[j], codes.values[j], static_cast<uint32_t>(t)});
    }
  }
  std::sort(peaks.begin(), peaks.end(), [](const Peak& a, const Peak& b) {
    if (a.feature != b.feature) return a.feature < b.feature;
    if (a.value != b.value) return a.value > b.value;
    return a.pos < b.pos;
  });
  out->reserve(out->size() + peaks.size() * keys::kInvertedKeySize);
  for (size_t i = 0; i < peaks.size(); ++i) {
    if (i > 0 && peaks[i].feature == peaks[i - 1].feature) continue;
    keys::AppendInvertedKey(out, dict, peaks[i].feature, peaks[i].value, corpus, doc, peaks[i].pos);
  }
}

void StatsDeltas::AddCodes(const DocumentCodes& codes, int sign) {
  for (size_t j = 0; j < codes.values.size(); ++j) {
    const double v = codes.values[j];
    Feature& f = features_[codes.indices[j]];
    f.count += sign;
    f.sum += sign * v;
    f.sum_sq += sign * v * v;
    f.bins[HistogramBin(codes.values[j])] += sign;
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
  for (const auto& [bin, n] : f.bins) {
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
