// LatentExport (contract: latent_export.h).
#include "service/latent_export.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "util/half.h"
#include "util/status_macros.h"

namespace saedict::service {
namespace {

constexpr int32_t kDefaultSplits = 5;
constexpr int32_t kMaxSplits = 1024;
constexpr int32_t kMaxCtxLen = 1 << 20;
constexpr size_t kSequenceBytesPerMessage = 2 << 20;
constexpr size_t kEntriesPerChunk = 1 << 18;

struct DocEntry {
  uint64_t doc_id = 0;
  uint32_t length = 0;
  int64_t first_sequence = 0;
};

void AppendU32Le(std::string* out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian hosts only (x86-64, aarch64)
  out->append(b, 4);
}
void AppendU16Le(std::string* out, uint16_t v) {
  char b[2];
  std::memcpy(b, &v, 2);
  out->append(b, 2);
}

}  // namespace

absl::Status LatentExport::Export(const v1::ExportLatentsRequest& r, const Sink& sink,
                                  const std::function<bool()>& cancelled) const {
  SAEDICT_ASSIGN_OR_RETURN(const v1::DictionaryInfo info, registry_->Get(r.dictionary_id()));
  if (r.corpus().empty()) return absl::InvalidArgumentError("corpus: empty; expected a corpus name");
  const int64_t max_splits = std::min<int64_t>(info.d_sae(), kMaxSplits);
  if (r.n_splits() < 0 || r.n_splits() > max_splits) {
    return absl::InvalidArgumentError(absl::StrCat("n_splits: ", r.n_splits(), "; expected 0 (",
                                                   kDefaultSplits, ") to ", max_splits));
  }
  if (r.ctx_len() < 0 || r.ctx_len() > kMaxCtxLen) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ctx_len: ", r.ctx_len(), "; expected 0 (the longest document) to ", kMaxCtxLen));
  }
  if (r.pad_token_id() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("pad_token_id: ", r.pad_token_id(), "; expected a token id >= 0"));
  }
  auto stopped = [&] { return cancelled && cancelled(); };
  const std::string& dict = r.dictionary_id();

  // Pass 1: the documents and their lengths.
  std::vector<DocEntry> docs;
  int64_t entries = 0;
  SAEDICT_RETURN_IF_ERROR(store_->ScanCodePairs(
      dict, dict, r.corpus(),
      [&](uint64_t doc_id, const storage::StoredCodes& codes, const storage::StoredCodes&) {
        docs.push_back({doc_id, static_cast<uint32_t>(codes.codes.num_rows), 0});
        entries += codes.codes.nnz();
        return absl::OkStatus();
      }));
  if (docs.empty()) {
    return absl::NotFoundError(absl::StrCat("corpus '", r.corpus(),
                                            "' has no documents stored under dictionary '", dict,
                                            "'"));
  }
  uint32_t longest = 0;
  int64_t tokens = 0;
  for (const DocEntry& d : docs) {
    longest = std::max(longest, d.length);
    tokens += d.length;
  }
  const uint32_t ctx = r.ctx_len() > 0 ? static_cast<uint32_t>(r.ctx_len()) : std::max(longest, 1u);
  int64_t n_sequences = 0;
  for (DocEntry& d : docs) {
    d.first_sequence = n_sequences;
    n_sequences += std::max<int64_t>(1, (d.length + ctx - 1) / ctx);
  }
  const int32_t n_splits = r.n_splits() == 0 ? static_cast<int32_t>(std::min<int64_t>(
                                                   kDefaultSplits, info.d_sae()))
                                             : r.n_splits();
  // delphi's boundaries: linspace(0, width, n_splits + 1), end inclusive.
  std::vector<v1::ExportSplit> splits(n_splits);
  for (int32_t s = 0; s < n_splits; ++s) {
    splits[s].set_start(static_cast<uint32_t>(info.d_sae() * s / n_splits));
    splits[s].set_end(static_cast<uint32_t>(info.d_sae() * (s + 1) / n_splits - 1));
  }

  v1::ExportLatentsResponse head;
  v1::ExportLatentsResponse::Header* h = head.mutable_header();
  h->set_dictionary_id(dict);
  h->set_hookpoint(info.hook_name().empty() ? dict : info.hook_name());
  h->set_model_name(info.model_name());
  h->set_d_sae(info.d_sae());
  h->set_weights_sha256(info.weights_sha256());
  h->set_ctx_len(static_cast<int32_t>(ctx));
  h->set_n_sequences(n_sequences);
  h->set_n_tokens(tokens);
  for (const v1::ExportSplit& s : splits) *h->add_splits() = s;
  h->set_n_entries(entries);
  if (!sink(head)) return absl::CancelledError("the client went away");

  // Pass 2: the tokens of every sequence (documents read one by one).
  {
    v1::ExportLatentsResponse m;
    bool gone = false;
    auto flush = [&] {
      if (m.sequences().sequences_size() == 0) return;
      gone = gone || !sink(m);
      m = v1::ExportLatentsResponse();
    };
    int64_t next_sequence = 0;
    for (const DocEntry& d : docs) {
      if (stopped()) return absl::CancelledError("export cancelled");
      SAEDICT_ASSIGN_OR_RETURN(std::optional<storage::StoredDocument> doc,
                               store_->GetDocument(r.corpus(), d.doc_id));
      if (!doc || doc->token_ids.size() != d.length) {
        return absl::AbortedError(absl::StrCat("corpus '", r.corpus(), "' changed during the export (document ",
                                               d.doc_id, "); run it again"));
      }
      for (uint32_t offset = 0; offset < std::max(d.length, 1u); offset += ctx) {
        if (m.sequences().sequences_size() == 0) m.mutable_sequences()->set_first(next_sequence);
        v1::ExportSequence* seq = m.mutable_sequences()->add_sequences();
        seq->set_doc_id(d.doc_id);
        seq->set_offset(offset);
        const uint32_t len = std::min(ctx, d.length - std::min(d.length, offset));
        seq->set_length(len);
        std::string* bytes = m.mutable_sequences()->mutable_token_ids();
        for (uint32_t t = 0; t < ctx; ++t) {
          const int32_t id = t < len ? doc->token_ids[offset + t] : r.pad_token_id();
          AppendU32Le(bytes, static_cast<uint32_t>(id));
        }
        ++next_sequence;
        if (bytes->size() >= kSequenceBytesPerMessage) flush();
      }
      if (gone) return absl::CancelledError("the client went away");
    }
    flush();
    if (gone) return absl::CancelledError("the client went away");
  }

  // Pass 3..: each split's entries, one scan of the corpus per split.
  for (int32_t s = 0; s < n_splits; ++s) {
    const uint32_t start = splits[s].start(), end = splits[s].end();
    v1::ExportLatentsResponse m;
    size_t in_chunk = 0;
    size_t doc_index = 0;
    auto send = [&](bool last) -> absl::Status {
      m.mutable_chunk()->set_split(s);
      m.mutable_chunk()->set_last(last);
      if (!sink(m)) return absl::CancelledError("the client went away");
      m = v1::ExportLatentsResponse();
      in_chunk = 0;
      return absl::OkStatus();
    };
    SAEDICT_RETURN_IF_ERROR(store_->ScanCodePairs(
        dict, dict, r.corpus(),
        [&](uint64_t doc_id, const storage::StoredCodes& stored,
            const storage::StoredCodes&) -> absl::Status {
          if (stopped()) return absl::CancelledError("export cancelled");
          if (doc_index >= docs.size() || docs[doc_index].doc_id != doc_id ||
              docs[doc_index].length != stored.codes.num_rows) {
            return absl::AbortedError(absl::StrCat("corpus '", r.corpus(),
                                                   "' changed during the export (document ",
                                                   doc_id, "); run it again"));
          }
          const DocEntry& d = docs[doc_index++];
          const SparseCodes& c = stored.codes;
          for (int64_t row = 0; row < c.num_rows; ++row) {
            const uint32_t sequence = static_cast<uint32_t>(d.first_sequence + row / ctx);
            const uint32_t position = static_cast<uint32_t>(row % ctx);
            const auto* first = c.indices.data() + c.row_offsets[row];
            const auto* last = c.indices.data() + c.row_offsets[row + 1];
            for (const uint32_t* it = std::lower_bound(first, last, start);
                 it != last && *it <= end; ++it) {
              v1::ExportLatentsResponse::SplitChunk* chunk = m.mutable_chunk();
              AppendU32Le(chunk->mutable_locations(), sequence);
              AppendU32Le(chunk->mutable_locations(), position);
              AppendU32Le(chunk->mutable_locations(), *it - start);
              AppendU16Le(chunk->mutable_activations(),
                          FloatToF16(c.values[static_cast<size_t>(it - c.indices.data())]));
              if (++in_chunk >= kEntriesPerChunk) SAEDICT_RETURN_IF_ERROR(send(false));
            }
          }
          return absl::OkStatus();
        }));
    if (doc_index != docs.size()) {
      return absl::AbortedError(absl::StrCat("corpus '", r.corpus(),
                                             "' changed during the export; run it again"));
    }
    SAEDICT_RETURN_IF_ERROR(send(true));
  }
  return absl::OkStatus();
}

}  // namespace saedict::service
