#include "service/ingest_session.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/proto_convert.h"
#include "service/resource_name.h"
#include "util/status_macros.h"
#include "wire/wire_codec.h"

namespace saedict::service {
namespace {

absl::Status Prefixed(int64_t index, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat("stream message ", index, ": ", s.message()));
}

// Token ids and strings of one wire document, checked against each other.
absl::Status DecodeTokens(const v1::IngestDocument& doc, int index, storage::IngestDocument& out) {
  const std::string where = absl::StrCat("documents[", index, "] (doc_id ", doc.doc_id(), ")");
  const std::string& bytes = doc.token_ids();
  if (bytes.empty() || bytes.size() % sizeof(int32_t) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".token_ids: ", bytes.size(),
                     " bytes; expected a non-empty multiple of 4 (little-endian int32 ids)"));
  }
  out.doc_id = doc.doc_id();
  out.token_ids.resize(bytes.size() / sizeof(int32_t));
  std::memcpy(out.token_ids.data(), bytes.data(), bytes.size());
  for (size_t t = 0; t < out.token_ids.size(); ++t) {
    if (out.token_ids[t] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".token_ids[", t, "]: ", out.token_ids[t], " is negative"));
    }
  }
  const int strings = doc.token_strings_size();
  if (strings != 0 && static_cast<size_t>(strings) != out.token_ids.size()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".token_strings: ", strings,
                                                   " strings for ", out.token_ids.size(),
                                                   " tokens; expected none or one per token"));
  }
  out.token_strings.assign(doc.token_strings().begin(), doc.token_strings().end());
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateCorpusName(const std::string& corpus, const char* field) {
  return ValidateResourceName(corpus, field, "corpus name");
}

IngestSession::IngestSession(DictionaryRegistry* registry, storage::CorpusStore* store,
                             AckSink sink, IngestSessionOptions options)
    : registry_(registry),
      store_(store),
      sink_(std::move(sink)),
      options_(options),
      writer_([this] { WriterLoop(); }) {}

IngestSession::~IngestSession() { Finish().IgnoreError(); }

int64_t IngestSession::batches_acknowledged() const {
  absl::MutexLock lock(&mu_);
  return acknowledged_;
}

absl::Status IngestSession::FirstError() const {
  absl::MutexLock lock(&mu_);
  return error_;
}

absl::StatusOr<std::pair<storage::IngestBatch, engine::ComputeMode>> IngestSession::Prepare(
    const v1::IngestRequest& request) {
  // Stream-level fields: fixed by the first message.
  if (dictionary_id_.empty()) {
    if (request.dictionary_id().empty()) {
      return absl::InvalidArgumentError(
          "dictionary_id: empty; the first message of an ingest stream must name the dictionary");
    }
    SAEDICT_ASSIGN_OR_RETURN(encoder_, registry_->GetEncoder(request.dictionary_id()));
    dictionary_id_ = request.dictionary_id();
  } else if (!request.dictionary_id().empty() && request.dictionary_id() != dictionary_id_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dictionary_id: '", request.dictionary_id(), "' differs from '", dictionary_id_,
        "' of the stream's first message; use one stream per dictionary"));
  } else {
    // A replace (or delete) since the first message ends the stream: its
    // batches must not mix weights. The store checks again at write time.
    SAEDICT_ASSIGN_OR_RETURN(std::shared_ptr<const engine::Encoder> current,
                             registry_->GetEncoder(dictionary_id_));
    if (current->content_sha256() != encoder_->content_sha256()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dictionary '", dictionary_id_, "' was replaced during the ingest (weights sha256 ",
          encoder_->content_sha256(), " -> ", current->content_sha256(),
          "); nothing of this message was stored, start a new stream"));
    }
  }
  if (corpus_.empty()) {
    SAEDICT_RETURN_IF_ERROR(ValidateCorpusName(request.corpus()));
    corpus_ = request.corpus();
  } else if (!request.corpus().empty() && request.corpus() != corpus_) {
    return absl::InvalidArgumentError(
        absl::StrCat("corpus: '", request.corpus(), "' differs from '", corpus_,
                     "' of the stream's first message; use one stream per corpus"));
  }
  if (request.documents_size() == 0) {
    return absl::InvalidArgumentError(
        "documents: empty; expected at least one document per message");
  }
  storage::IngestBatch batch;
  batch.dictionary_id = dictionary_id_;
  batch.weights_sha256 = encoder_->content_sha256();
  batch.corpus = corpus_;
  SAEDICT_ASSIGN_OR_RETURN(batch.precision, ToStorage(request.value_precision()));
  engine::EncodeOptions encode_options;
  if (request.has_compute_mode()) {
    SAEDICT_ASSIGN_OR_RETURN(encode_options.compute_mode,
                             ToEngine(request.compute_mode(), "compute_mode"));
  } else {
    encode_options.compute_mode = encoder_->default_compute_mode();
  }

  const engine::DictionaryConfig& config = encoder_->dictionary().config;
  batch.d_sae = config.d_sae;
  // All documents' activations in one matrix: one encode call per message.
  std::vector<float> x;
  int64_t total_tokens = 0;
  batch.documents.resize(request.documents_size());
  for (int i = 0; i < request.documents_size(); ++i) {
    const v1::IngestDocument& doc = request.documents(i);
    storage::IngestDocument& out = batch.documents[i];
    SAEDICT_RETURN_IF_ERROR(DecodeTokens(doc, i, out));
    const std::string field =
        absl::StrCat("documents[", i, "] (doc_id ", doc.doc_id(), ").activations");
    SAEDICT_ASSIGN_OR_RETURN(wire::DenseRows rows,
                             wire::DecodeMatrix(doc.activations(), config.d_in, field));
    if (rows.rows != static_cast<int64_t>(out.token_ids.size())) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": ", rows.rows, " rows for ",
                                                     out.token_ids.size(),
                                                     " token ids; expected one row per token"));
    }
    total_tokens += rows.rows;
    if (options_.max_request_tokens > 0 && total_tokens > options_.max_request_tokens) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "documents: more than ", options_.max_request_tokens,
          " tokens in one message (the server's --max_request_tokens, reached at documents[", i,
          "]); send fewer documents per message"));
    }
    x.insert(x.end(), rows.values.begin(), rows.values.end());
  }
  SAEDICT_ASSIGN_OR_RETURN(
      engine::EncodeResult encoded,
      options_.batcher != nullptr
          ? options_.batcher->Encode(encoder_, x, total_tokens, encode_options, options_.deadline)
          : encoder_->Encode(x, total_tokens, encode_options));
  // Split the CSR of the whole message into per-document CSRs.
  const engine::SparseCodes& codes = encoded.codes;
  int64_t row = 0;
  for (storage::IngestDocument& doc : batch.documents) {
    const int64_t n = static_cast<int64_t>(doc.token_ids.size());
    doc.codes = SliceRows(codes, row, row + n);
    row += n;
  }
  return std::make_pair(std::move(batch), encoded.compute_mode);
}

void IngestSession::RecordError(int64_t index, const absl::Status& status) {
  if (error_.ok() || index < error_index_) {
    error_ = Prefixed(index, status);
    error_index_ = index;
  }
}

absl::Status IngestSession::Submit(v1::IngestRequest request) {
  if (finished_) return absl::FailedPreconditionError("ingest session already finished");
  SAEDICT_RETURN_IF_ERROR(FirstError());
  const int64_t index = next_index_++;
  absl::StatusOr<std::pair<storage::IngestBatch, engine::ComputeMode>> batch = Prepare(request);
  absl::MutexLock lock(&mu_);
  if (!batch.ok()) {
    // Batches queued before this message are still written and acknowledged.
    RecordError(index, batch.status());
    return error_;
  }
  auto has_room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return write_failed_ || queue_.size() < static_cast<size_t>(options_.max_pending_batches);
  };
  mu_.Await(absl::Condition(&has_room));
  if (write_failed_) return error_;
  queue_.push_back(Pending{index, std::move(batch->first), batch->second});
  return absl::OkStatus();
}

absl::Status IngestSession::Finish() {
  if (!finished_) {
    finished_ = true;
    {
      absl::MutexLock lock(&mu_);
      closing_ = true;
    }
    writer_.join();
  }
  return FirstError();
}

void IngestSession::WriterLoop() {
  while (true) {
    Pending pending;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || closing_; };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // closing and drained
      if (write_failed_) {
        queue_.clear();
        continue;
      }
      pending = std::move(queue_.front());
      queue_.pop_front();
    }
    absl::StatusOr<storage::IngestBatchResult> written = store_->WriteIngestBatch(pending.batch);
    v1::IngestAck ack;
    {
      absl::MutexLock lock(&mu_);
      if (!written.ok()) {
        RecordError(pending.index, written.status());
        write_failed_ = true;
        queue_.clear();
        continue;
      }
      total_documents_ += written->documents;
      total_tokens_ += written->tokens;
      ack.set_batch(pending.index);
      ack.set_documents(written->documents);
      ack.set_tokens(written->tokens);
      ack.set_replaced_documents(written->replaced_documents);
      ack.set_total_documents(total_documents_);
      ack.set_total_tokens(total_tokens_);
      ack.set_weights_sha256(pending.batch.weights_sha256);
      ack.set_compute_mode(ToProto(pending.compute_mode));
    }
    const bool delivered = sink_(ack);
    absl::MutexLock lock(&mu_);
    if (delivered) {
      ++acknowledged_;
    } else {
      RecordError(pending.index,
                  absl::CancelledError("stored, but the acknowledgement could not be sent "
                                       "(client gone)"));
      write_failed_ = true;
      queue_.clear();
    }
  }
}

}  // namespace saedict::service
