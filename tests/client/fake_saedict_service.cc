// The in-test Saedict service; see fake_saedict_service.h.
#include "tests/client/fake_saedict_service.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "wire/tensor_wire.h"
#include "util/half.h"

namespace saedict::testing {
namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

// Dense [n, d] rows of `codes` (identity decoder).
std::vector<float> Densify(const wire::CsrCodes& codes) {
  std::vector<float> dense(codes.num_rows * codes.num_features, 0.0f);
  for (int64_t r = 0; r < codes.num_rows; ++r) {
    for (uint64_t i = codes.row_offsets[r]; i < codes.row_offsets[r + 1]; ++i) {
      dense[r * codes.num_features + codes.indices[i]] = codes.values[i];
    }
  }
  return dense;
}

// CSR of the nonzeros of dense [n, d] rows, keeping the top_k largest per row.
wire::CsrCodes Sparsify(const std::vector<float>& dense, int64_t n, int64_t d, int top_k) {
  wire::CsrCodes codes;
  codes.num_rows = n;
  codes.num_features = d;
  codes.row_offsets = {0};
  for (int64_t r = 0; r < n; ++r) {
    std::vector<uint32_t> keep;
    for (int64_t i = 0; i < d; ++i) {
      if (dense[r * d + i] != 0.0f) keep.push_back(static_cast<uint32_t>(i));
    }
    if (top_k > 0 && static_cast<int64_t>(keep.size()) > top_k) {
      std::stable_sort(keep.begin(), keep.end(),
                       [&](uint32_t a, uint32_t b) { return dense[r * d + a] > dense[r * d + b]; });
      keep.resize(top_k);
      std::sort(keep.begin(), keep.end());
    }
    for (uint32_t i : keep) {
      codes.indices.push_back(i);
      codes.values.push_back(dense[r * d + i]);
    }
    codes.row_offsets.push_back(codes.indices.size());
  }
  return codes;
}

// Activations of `req` as [n, d_in] rows, or INVALID_ARGUMENT.
grpc::Status ReadRows(const v1::Tensor& t, int64_t d_in, std::vector<float>* rows, int64_t* n) {
  absl::StatusOr<std::vector<float>> x = wire::TensorToFloats(t, "activations");
  if (!x.ok()) return ToGrpc(x.status());
  if (t.shape_size() != 2 || t.shape(1) != d_in) {
    return Invalid(absl::StrCat("activations: want shape [n, ", d_in, "]"));
  }
  *n = t.shape(0);
  *rows = std::move(*x);
  return grpc::Status::OK;
}

}  // namespace

void FakeSaedictService::AddDictionary(const std::string& id, int64_t d) {
  v1::DictionaryInfo info;
  info.set_id(id);
  info.set_model_name("fake-model");
  info.set_hook_name("blocks.0.hook_resid_post");
  info.set_d_in(d);
  info.set_d_sae(d);
  info.set_architecture(v1::ARCHITECTURE_TOPK);
  info.set_k(2);
  info.set_source_format(v1::SOURCE_FORMAT_SAELENS);
  info.set_source_path(id);
  info.set_source_dtype(v1::DTYPE_F32);
  info.set_weight_bytes(2 * d * d * 4);
  info.mutable_loaded_at()->set_seconds(1700000000);
  std::lock_guard<std::mutex> lock(mu_);
  dictionaries_[id] = std::move(info);
}

v1::EncodeOptions FakeSaedictService::last_encode_options() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_encode_options_;
}

v1::LoadDictionaryRequest FakeSaedictService::last_load() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_load_;
}

grpc::Status FakeSaedictService::Lookup(grpc::ServerContext* ctx, const std::string& id,
                                        v1::DictionaryInfo* out) {
  last_had_deadline_ = ctx->deadline() < std::chrono::system_clock::now() + std::chrono::hours(1);
  if (id == "slow") {
    while (!ctx->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "slow");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = dictionaries_.find(id);
  if (it == dictionaries_.end()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("dictionary '", id, "' not found"));
  }
  *out = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeSaedictService::LoadDictionary(grpc::ServerContext*,
                                                const v1::LoadDictionaryRequest* req,
                                                v1::LoadDictionaryResponse* resp) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_load_ = *req;
    if (dictionaries_.count(req->id()) > 0 && !req->replace()) {
      return grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                          absl::StrCat("dictionary '", req->id(), "' already exists"));
    }
  }
  if (req->path().find("missing") != std::string::npos) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("path '", req->path(), "' not found"));
  }
  if (req->path().find("forbidden") != std::string::npos) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("path '", req->path(), "' is outside --dictionary_root"));
  }
  int64_t d = 4;
  const size_t slash = req->path().rfind("/d");
  if (slash != std::string::npos) (void)absl::SimpleAtoi(req->path().substr(slash + 2), &d);
  AddDictionary(req->id(), d);
  std::lock_guard<std::mutex> lock(mu_);
  v1::DictionaryInfo& info = dictionaries_[req->id()];
  info.set_source_path(req->path());
  if (req->format() != v1::SOURCE_FORMAT_AUTO) info.set_source_format(req->format());
  *resp->mutable_dictionary() = info;
  return grpc::Status::OK;
}

grpc::Status FakeSaedictService::ListDictionaries(grpc::ServerContext*,
                                                  const v1::ListDictionariesRequest*,
                                                  v1::ListDictionariesResponse* resp) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, info] : dictionaries_) *resp->add_dictionaries() = info;
  return grpc::Status::OK;
}

grpc::Status FakeSaedictService::GetDictionary(grpc::ServerContext* ctx,
                                               const v1::GetDictionaryRequest* req,
                                               v1::GetDictionaryResponse* resp) {
  return Lookup(ctx, req->id(), resp->mutable_dictionary());
}

grpc::Status FakeSaedictService::DeleteDictionary(grpc::ServerContext* ctx,
                                                  const v1::DeleteDictionaryRequest* req,
                                                  v1::DeleteDictionaryResponse*) {
  v1::DictionaryInfo info;
  if (grpc::Status s = Lookup(ctx, req->id(), &info); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  dictionaries_.erase(req->id());
  return grpc::Status::OK;
}

grpc::Status FakeSaedictService::EncodeOne(const v1::EncodeRequest& req,
                                           const v1::DictionaryInfo& dict,
                                           v1::EncodeResponse* resp) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_encode_options_ = req.options();
  }
  std::vector<float> x;
  int64_t n = 0;
  if (grpc::Status s = ReadRows(req.activations(), dict.d_in(), &x, &n); !s.ok()) return s;
  const int64_t d = dict.d_in();
  std::vector<float> relu(x.size());
  for (size_t i = 0; i < x.size(); ++i) relu[i] = std::max(0.0f, x[i]);
  wire::CsrCodes codes = Sparsify(relu, n, d, req.options().top_k());
  absl::StatusOr<v1::SparseCodes> wire = wire::CsrToProto(codes);
  if (!wire.ok()) return ToGrpc(wire.status());
  *resp->mutable_codes() = std::move(*wire);
  const std::vector<float> x_hat = Densify(codes);
  if (req.options().return_reconstruction()) {
    const int64_t shape[2] = {n, d};
    *resp->mutable_reconstruction() = *wire::FloatsToTensor(x_hat, shape, v1::DTYPE_F32);
  }
  if (req.options().return_error()) {
    std::vector<float> err(n, 0.0f);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t i = 0; i < d; ++i) {
        const float e = x[r * d + i] - x_hat[r * d + i];
        err[r] += e * e;
      }
    }
    const int64_t shape[1] = {n};
    *resp->mutable_row_error() = *wire::FloatsToTensor(err, shape, v1::DTYPE_F32);
  }
  return grpc::Status::OK;
}

grpc::Status FakeSaedictService::Encode(grpc::ServerContext* ctx, const v1::EncodeRequest* req,
                                        v1::EncodeResponse* resp) {
  ++encode_calls_;
  v1::DictionaryInfo dict;
  if (grpc::Status s = Lookup(ctx, req->dictionary_id(), &dict); !s.ok()) return s;
  return EncodeOne(*req, dict, resp);
}

grpc::Status FakeSaedictService::EncodeStream(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::EncodeResponse, v1::EncodeRequest>* stream) {
  v1::EncodeRequest req;
  std::string id;
  v1::DictionaryInfo dict;
  while (stream->Read(&req)) {
    ++stream_messages_;
    if (id.empty()) {
      id = req.dictionary_id();
      if (grpc::Status s = Lookup(ctx, id, &dict); !s.ok()) return s;
    }
    v1::EncodeResponse resp;
    if (grpc::Status s = EncodeOne(req, dict, &resp); !s.ok()) return s;
    if (!stream->Write(resp)) break;
  }
  return grpc::Status::OK;
}

grpc::Status FakeSaedictService::Decode(grpc::ServerContext* ctx, const v1::DecodeRequest* req,
                                        v1::DecodeResponse* resp) {
  ++decode_calls_;
  v1::DictionaryInfo dict;
  if (grpc::Status s = Lookup(ctx, req->dictionary_id(), &dict); !s.ok()) return s;
  absl::StatusOr<wire::CsrCodes> codes = wire::CsrFromProto(req->codes());
  if (!codes.ok()) return ToGrpc(codes.status());
  if (codes->num_features != dict.d_sae()) return Invalid("codes: num_features != d_sae");
  const int64_t shape[2] = {codes->num_rows, dict.d_in()};
  *resp->mutable_activations() = *wire::FloatsToTensor(Densify(*codes), shape, v1::DTYPE_F32);
  return grpc::Status::OK;
}

grpc::Status FakeSaedictService::Intervene(grpc::ServerContext* ctx,
                                           const v1::InterveneRequest* req,
                                           v1::InterveneResponse* resp) {
  v1::DictionaryInfo dict;
  if (grpc::Status s = Lookup(ctx, req->dictionary_id(), &dict); !s.ok()) return s;
  std::vector<float> x;
  int64_t n = 0;
  if (grpc::Status s = ReadRows(req->activations(), dict.d_in(), &x, &n); !s.ok()) return s;
  const int64_t d = dict.d_in();
  std::vector<float> f(x.size()), edited(x.size());
  for (size_t i = 0; i < x.size(); ++i) f[i] = edited[i] = std::max(0.0f, x[i]);
  for (const v1::FeatureEdit& e : req->edits()) {
    if (e.feature() >= d) return Invalid(absl::StrCat("edit feature ", e.feature(), " >= d_sae"));
    if (e.op() == v1::EDIT_OP_UNSPECIFIED) return Invalid("edit op unspecified");
    for (int64_t r = 0; r < n; ++r) {
      if (e.rows_size() > 0 && std::find(e.rows().begin(), e.rows().end(), r) == e.rows().end()) {
        continue;
      }
      float& v = edited[r * d + e.feature()];
      if (e.op() == v1::EDIT_OP_SET) v = e.value();
      if (e.op() == v1::EDIT_OP_ADD) v += e.value();
      if (e.op() == v1::EDIT_OP_SCALE) v *= e.value();
      if (e.op() == v1::EDIT_OP_ABLATE) v = 0;
    }
  }
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] + (edited[i] - f[i]);
  const int64_t shape[2] = {n, d};
  *resp->mutable_activations() = *wire::FloatsToTensor(out, shape, v1::DTYPE_F32);
  *resp->mutable_codes() = *wire::CsrToProto(Sparsify(edited, n, d, 0));
  return grpc::Status::OK;
}

// --- corpus ----------------------------------------------------------------

namespace {

// Quarter-octave bin of a positive value: [2^(b/4), 2^((b+1)/4)).
int QuarterOctave(float v) { return static_cast<int>(std::floor(4.0 * std::log2(v))); }

grpc::Status NotFound(const std::string& message) {
  return grpc::Status(grpc::StatusCode::NOT_FOUND, message);
}

}  // namespace

std::vector<v1::IngestRequest> FakeSaedictService::ingest_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ingest_requests_;
}

v1::GetFeatureRequest FakeSaedictService::last_get_feature() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_get_feature_;
}

v1::TopActivationsRequest FakeSaedictService::last_top_activations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_top_activations_;
}

v1::DocumentFeaturesRequest FakeSaedictService::last_document_features() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_document_features_;
}

void FakeSaedictService::FailIngestAt(int64_t batch, grpc::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_ingest_at_ = batch;
  fail_ingest_status_ = std::move(status);
}

void FakeSaedictService::SetAckFault(AckFault fault, int64_t batch) {
  std::lock_guard<std::mutex> lock(mu_);
  ack_fault_ = fault;
  ack_fault_batch_ = batch;
}

grpc::Status FakeSaedictService::IngestBatch(const v1::IngestRequest& req,
                                             const std::string& dictionary,
                                             const v1::DictionaryInfo& dict, v1::IngestAck* ack) {
  if (req.corpus().empty()) return Invalid("corpus: empty");
  // Validate the whole batch before storing any of it.
  std::vector<wire::CsrCodes> codes;
  std::set<uint64_t> ids;
  for (const v1::IngestDocument& doc : req.documents()) {
    const std::string what = absl::StrCat("document ", doc.doc_id());
    if (!ids.insert(doc.doc_id()).second) return Invalid(what + ": doc_id repeated in the batch");
    if (doc.token_ids().size() % 4 != 0) return Invalid(what + ": token_ids: not int32s");
    const int64_t n = static_cast<int64_t>(doc.token_ids().size() / 4);
    if (n == 0) return Invalid(what + ": no tokens");
    if (doc.token_strings_size() != 0 && doc.token_strings_size() != n) {
      return Invalid(
          absl::StrCat(what, ": ", doc.token_strings_size(), " token_strings for ", n, " tokens"));
    }
    std::vector<float> x;
    int64_t rows = 0;
    if (grpc::Status s = ReadRows(doc.activations(), dict.d_in(), &x, &rows); !s.ok()) {
      return Invalid(absl::StrCat(what, ": ", s.error_message()));
    }
    if (rows != n)
      return Invalid(absl::StrCat(what, ": ", rows, " activation rows for ", n, " tokens"));
    for (float& v : x) {
      v = std::max(0.0f, v);
      if (req.value_precision() == v1::VALUE_PRECISION_F16) v = F16ToFloat(FloatToF16(v));
    }
    codes.push_back(Sparsify(x, n, dict.d_in(), 0));
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = 0; i < req.documents_size(); ++i) {
    const v1::IngestDocument& doc = req.documents(i);
    v1::Document stored;
    stored.set_corpus(req.corpus());
    stored.set_doc_id(doc.doc_id());
    const int64_t n = static_cast<int64_t>(doc.token_ids().size() / 4);
    stored.mutable_token_ids()->Resize(static_cast<int>(n), 0);
    std::memcpy(stored.mutable_token_ids()->mutable_data(), doc.token_ids().data(), n * 4);
    *stored.mutable_token_strings() = doc.token_strings();
    documents_[{req.corpus(), doc.doc_id()}] = std::move(stored);
    const CodesKey key{dictionary, req.corpus(), doc.doc_id()};
    if (codes_.count(key) > 0) ack->set_replaced_documents(ack->replaced_documents() + 1);
    codes_[key] = std::move(codes[i]);
    precision_[key] = req.value_precision();
    ack->set_documents(ack->documents() + 1);
    ack->set_tokens(ack->tokens() + n);
  }
  return grpc::Status::OK;
}

grpc::Status FakeSaedictService::Ingest(
    grpc::ServerContext* ctx, grpc::ServerReaderWriter<v1::IngestAck, v1::IngestRequest>* stream) {
  v1::IngestRequest req;
  std::string dictionary;
  v1::DictionaryInfo dict;
  int64_t batch = 0, total_documents = 0, total_tokens = 0;
  while (stream->Read(&req)) {
    int64_t fail_at;
    grpc::Status fail_status;
    AckFault fault;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ingest_requests_.push_back(req);
      fail_at = fail_ingest_at_;
      fail_status = fail_ingest_status_;
      fault = batch >= ack_fault_batch_ ? ack_fault_ : AckFault::kNone;
    }
    if (batch == 0) {
      if (req.dictionary_id().empty()) return Invalid("dictionary_id: empty in the first message");
      dictionary = req.dictionary_id();
      if (grpc::Status s = Lookup(ctx, dictionary, &dict); !s.ok()) return s;
    } else if (!req.dictionary_id().empty() && req.dictionary_id() != dictionary) {
      return Invalid(
          absl::StrCat("dictionary_id: '", req.dictionary_id(), "' after '", dictionary, "'"));
    }
    if (batch == fail_at) return fail_status;
    v1::IngestAck ack;
    if (grpc::Status s = IngestBatch(req, dictionary, dict, &ack); !s.ok()) {
      return grpc::Status(s.error_code(), absl::StrCat("batch ", batch, ": ", s.error_message()));
    }
    total_documents += ack.documents();
    total_tokens += ack.tokens();
    ack.set_batch(batch);
    ack.set_total_documents(total_documents);
    ack.set_total_tokens(total_tokens);
    ++batch;
    switch (fault) {
      case AckFault::kNone:
        break;
      case AckFault::kWrongBatch:
        ack.set_batch(ack.batch() + 1);
        break;
      case AckFault::kWrongCounts:
        ack.set_documents(ack.documents() + 1);
        break;
      case AckFault::kSkipAck:
        continue;
      case AckFault::kExtraAck:
        if (!stream->Write(ack)) return grpc::Status::OK;
        break;
    }
    if (!stream->Write(ack)) break;
  }
  return grpc::Status::OK;
}

grpc::Status FakeSaedictService::GetDocument(grpc::ServerContext*,
                                             const v1::GetDocumentRequest* req,
                                             v1::GetDocumentResponse* resp) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = documents_.find({req->corpus(), req->doc_id()});
  if (it == documents_.end()) {
    return NotFound(
        absl::StrCat("document ", req->doc_id(), " of corpus '", req->corpus(), "' not found"));
  }
  *resp->mutable_document() = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeSaedictService::GetActivations(grpc::ServerContext* ctx,
                                                const v1::GetActivationsRequest* req,
                                                v1::GetActivationsResponse* resp) {
  v1::DictionaryInfo dict;
  if (grpc::Status s = Lookup(ctx, req->dictionary_id(), &dict); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  const CodesKey key{req->dictionary_id(), req->corpus(), req->doc_id()};
  auto it = codes_.find(key);
  if (it == codes_.end()) {
    return NotFound(absl::StrCat("document ", req->doc_id(), " of corpus '", req->corpus(),
                                 "' has no codes under '", req->dictionary_id(), "'"));
  }
  *resp->mutable_codes() = *wire::CsrToProto(it->second);
  resp->set_stored_precision(precision_.at(key));
  return grpc::Status::OK;
}

int64_t FakeSaedictService::TotalTokensLocked(const std::string& dictionary) const {
  int64_t total = 0;
  for (const auto& [key, codes] : codes_) {
    if (std::get<0>(key) == dictionary) total += codes.num_rows;
  }
  return total;
}

std::vector<FakeSaedictService::Hit> FakeSaedictService::HitsLocked(const std::string& dictionary,
                                                                    uint32_t feature) const {
  std::vector<Hit> hits;
  for (const auto& [key, codes] : codes_) {
    if (std::get<0>(key) != dictionary) continue;
    for (int64_t r = 0; r < codes.num_rows; ++r) {
      for (uint64_t i = codes.row_offsets[r]; i < codes.row_offsets[r + 1]; ++i) {
        if (codes.indices[i] == feature) {
          hits.push_back(Hit{std::get<1>(key), std::get<2>(key), r, codes.values[i]});
        }
      }
    }
  }
  std::stable_sort(hits.begin(), hits.end(),
                   [](const Hit& a, const Hit& b) { return a.value > b.value; });
  return hits;
}

v1::Example FakeSaedictService::ExampleLocked(const std::string& dictionary, uint32_t feature,
                                              const Hit& hit, int64_t window) const {
  v1::Example e;
  e.set_corpus(hit.corpus);
  e.set_doc_id(hit.doc_id);
  e.set_position(hit.position);
  e.set_value(hit.value);
  const v1::Document& doc = documents_.at({hit.corpus, hit.doc_id});
  const wire::CsrCodes& codes = codes_.at({dictionary, hit.corpus, hit.doc_id});
  const int64_t begin = std::max<int64_t>(0, hit.position - window);
  const int64_t end = std::min<int64_t>(doc.token_ids_size(), hit.position + window + 1);
  for (int64_t p = begin; p < end; ++p) {
    v1::ContextToken* t = e.add_context();
    t->set_token_id(doc.token_ids(p));
    if (p < doc.token_strings_size()) t->set_token(doc.token_strings(p));
    for (uint64_t i = codes.row_offsets[p]; i < codes.row_offsets[p + 1]; ++i) {
      if (codes.indices[i] == feature) t->set_value(codes.values[i]);
    }
  }
  e.set_peak_index(static_cast<int32_t>(hit.position - begin));
  return e;
}

grpc::Status FakeSaedictService::GetFeature(grpc::ServerContext* ctx,
                                            const v1::GetFeatureRequest* req,
                                            v1::GetFeatureResponse* resp) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_get_feature_ = *req;
  }
  v1::DictionaryInfo dict;
  if (grpc::Status s = Lookup(ctx, req->dictionary_id(), &dict); !s.ok()) return s;
  if (req->feature() >= dict.d_sae()) {
    return NotFound(absl::StrCat("feature ", req->feature(), " not in dictionary '",
                                 req->dictionary_id(), "' (d_sae ", dict.d_sae(), ")"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  resp->set_dictionary_id(req->dictionary_id());
  resp->set_feature(req->feature());
  const std::vector<Hit> hits = HitsLocked(req->dictionary_id(), req->feature());
  v1::FeatureStats& stats = *resp->mutable_stats();
  stats.set_count(static_cast<int64_t>(hits.size()));
  stats.set_total_tokens(TotalTokensLocked(req->dictionary_id()));
  if (stats.total_tokens() > 0) {
    stats.set_density(static_cast<double>(stats.count()) /
                      static_cast<double>(stats.total_tokens()));
  }
  if (!hits.empty()) {
    double sum = 0, sum_sq = 0;
    std::map<int, int64_t> bins;
    for (const Hit& h : hits) {
      sum += h.value;
      sum_sq += static_cast<double>(h.value) * h.value;
      ++bins[QuarterOctave(h.value)];
    }
    const double n = static_cast<double>(hits.size());
    stats.set_mean(sum / n);
    stats.set_std(std::sqrt(std::max(0.0, sum_sq / n - stats.mean() * stats.mean())));
    stats.set_max(hits.front().value);
    for (const auto& [b, count] : bins) {
      v1::HistogramBin* bin = stats.add_histogram();
      bin->set_lower(std::exp2(b / 4.0f));
      bin->set_upper(std::exp2((b + 1) / 4.0f));
      bin->set_count(count);
    }
  }
  const int64_t top_n = req->top_n() == 0 ? 10 : req->top_n();
  const int64_t window = req->has_context_window() ? req->context_window() : 8;
  for (size_t i = 0; i < hits.size() && static_cast<int64_t>(i) < top_n; ++i) {
    *resp->add_top_examples() =
        ExampleLocked(req->dictionary_id(), req->feature(), hits[i], window);
  }
  return grpc::Status::OK;
}

grpc::Status FakeSaedictService::TopActivations(grpc::ServerContext* ctx,
                                                const v1::TopActivationsRequest* req,
                                                v1::TopActivationsResponse* resp) {
  ++top_activations_calls_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_top_activations_ = *req;
  }
  v1::DictionaryInfo dict;
  if (grpc::Status s = Lookup(ctx, req->dictionary_id(), &dict); !s.ok()) return s;
  if (req->feature() >= dict.d_sae()) return NotFound(absl::StrCat("feature ", req->feature()));
  std::lock_guard<std::mutex> lock(mu_);
  const std::vector<Hit> hits = HitsLocked(req->dictionary_id(), req->feature());
  const int64_t n = req->n() == 0 ? 10 : req->n();
  const int64_t window = req->has_context_window() ? req->context_window() : 8;
  for (size_t i = 0; i < hits.size() && static_cast<int64_t>(i) < n; ++i) {
    *resp->add_top() = ExampleLocked(req->dictionary_id(), req->feature(), hits[i], window);
  }
  const int64_t q = req->quantile_bins();
  const int64_t per_bin = req->per_bin() == 0 ? 5 : req->per_bin();
  const int64_t count = static_cast<int64_t>(hits.size());
  for (int64_t b = 0; b < q && count > 0; ++b) {
    // Ascending ranks [lo, hi) are hits[count - hi, count - lo), highest value first.
    const int64_t lo = b * count / q, hi = std::max(lo + 1, (b + 1) * count / q);
    v1::QuantileBin* bin = resp->add_bins();
    bin->set_quantile_lower(static_cast<double>(b) / q);
    bin->set_quantile_upper(static_cast<double>(b + 1) / q);
    bin->set_value_lower(hits[count - 1 - lo].value);
    bin->set_value_upper(hits[count - hi].value);
    for (int64_t i = count - hi; i < count - lo && i < count - hi + per_bin; ++i) {
      *bin->add_examples() = ExampleLocked(req->dictionary_id(), req->feature(), hits[i], window);
    }
  }
  return grpc::Status::OK;
}

grpc::Status FakeSaedictService::DocumentFeatures(grpc::ServerContext* ctx,
                                                  const v1::DocumentFeaturesRequest* req,
                                                  v1::DocumentFeaturesResponse* resp) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_document_features_ = *req;
  }
  v1::DictionaryInfo dict;
  if (grpc::Status s = Lookup(ctx, req->dictionary_id(), &dict); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = codes_.find({req->dictionary_id(), req->corpus(), req->doc_id()});
  if (it == codes_.end()) return NotFound(absl::StrCat("document ", req->doc_id(), " not found"));
  const wire::CsrCodes& codes = it->second;
  int64_t begin = 0, end = codes.num_rows;
  if (req->has_position()) {
    if (req->position() < 0 || req->position() >= codes.num_rows) {
      return Invalid(absl::StrCat("position ", req->position(), " out of range"));
    }
    begin = req->position();
    end = begin + 1;
  }
  std::map<uint32_t, v1::FeatureActivity> by_feature;
  for (int64_t r = begin; r < end; ++r) {
    for (uint64_t i = codes.row_offsets[r]; i < codes.row_offsets[r + 1]; ++i) {
      v1::FeatureActivity& f = by_feature[codes.indices[i]];
      f.set_feature(codes.indices[i]);
      if (f.active_tokens() == 0 || codes.values[i] > f.max_value()) {
        f.set_max_value(codes.values[i]);
        f.set_max_position(r);
      }
      f.set_active_tokens(f.active_tokens() + 1);
      f.set_sum(f.sum() + codes.values[i]);
    }
  }
  std::vector<v1::FeatureActivity> sorted;
  for (auto& [feature, f] : by_feature) sorted.push_back(f);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.max_value() > b.max_value(); });
  const size_t n = req->n() == 0 ? 20 : static_cast<size_t>(req->n());
  resp->set_num_tokens(codes.num_rows);  // the document's, as saedictd does
  for (size_t i = 0; i < sorted.size() && i < n; ++i) *resp->add_features() = sorted[i];
  return grpc::Status::OK;
}

grpc::Status FakeSaedictService::CreateCheckpoint(grpc::ServerContext*,
                                                  const v1::CreateCheckpointRequest* req,
                                                  v1::CreateCheckpointResponse* resp) {
  if (req->name().empty()) return Invalid("name: empty");
  std::lock_guard<std::mutex> lock(mu_);
  if (checkpoints_.count(req->name()) > 0) {
    return grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                        absl::StrCat("checkpoint '", req->name(), "' already exists"));
  }
  const int64_t bytes = 3 << 20;
  checkpoints_[req->name()] = bytes;
  resp->set_path(absl::StrCat("/srv/saedict/backups/", req->name()));
  resp->set_bytes(bytes);
  return grpc::Status::OK;
}

FakeServer::FakeServer() {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  target_ = absl::StrCat("127.0.0.1:", port);
}

FakeServer::~FakeServer() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace saedict::testing
