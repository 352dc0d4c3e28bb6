// The in-test Saedict service; see fake_saedict_service.h.
#include "tests/client/fake_saedict_service.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/tensor_wire.h"

namespace saedict::testing {
namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

// Dense [n, d] rows of `codes` (identity decoder).
std::vector<float> Densify(const client::CsrCodes& codes) {
  std::vector<float> dense(codes.num_rows * codes.num_features, 0.0f);
  for (int64_t r = 0; r < codes.num_rows; ++r) {
    for (uint64_t i = codes.row_offsets[r]; i < codes.row_offsets[r + 1]; ++i) {
      dense[r * codes.num_features + codes.indices[i]] = codes.values[i];
    }
  }
  return dense;
}

// CSR of the nonzeros of dense [n, d] rows, keeping the top_k largest per row.
client::CsrCodes Sparsify(const std::vector<float>& dense, int64_t n, int64_t d, int top_k) {
  client::CsrCodes codes;
  codes.num_rows = n;
  codes.num_features = d;
  codes.row_offsets.push_back(0);
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
  absl::StatusOr<std::vector<float>> x = client::TensorToFloats(t, "activations");
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
  client::CsrCodes codes = Sparsify(relu, n, d, req.options().top_k());
  absl::StatusOr<v1::SparseCodes> wire = client::CsrToProto(codes);
  if (!wire.ok()) return ToGrpc(wire.status());
  *resp->mutable_codes() = std::move(*wire);
  const std::vector<float> x_hat = Densify(codes);
  if (req.options().return_reconstruction()) {
    const int64_t shape[2] = {n, d};
    *resp->mutable_reconstruction() = *client::FloatsToTensor(x_hat, shape, v1::DTYPE_F32);
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
    *resp->mutable_row_error() = *client::FloatsToTensor(err, shape, v1::DTYPE_F32);
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
  absl::StatusOr<client::CsrCodes> codes = client::CsrFromProto(req->codes());
  if (!codes.ok()) return ToGrpc(codes.status());
  if (codes->num_features != dict.d_sae()) return Invalid("codes: num_features != d_sae");
  const int64_t shape[2] = {codes->num_rows, dict.d_in()};
  *resp->mutable_activations() = *client::FloatsToTensor(Densify(*codes), shape, v1::DTYPE_F32);
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
  *resp->mutable_activations() = *client::FloatsToTensor(out, shape, v1::DTYPE_F32);
  *resp->mutable_codes() = *client::CsrToProto(Sparsify(edited, n, d, 0));
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
