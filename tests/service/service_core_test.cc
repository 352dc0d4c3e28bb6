// service::ServiceCore as a unit, without gRPC: a real DictionaryRegistry
// (SAELens folders under a scratch --dictionary_root, canonical weights under
// a scratch data dir), a real EncodeBatcher and the in-memory Store
// (tests/test_util/in_memory_store.h). Every answer is checked against the
// engine's Encoder on the same weights; error paths check code and message.
#include "service/service_core.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engine/batcher.h"
#include "engine/encoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/dictionary_registry.h"
#include "storage/store.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/server/grpc_test_util.h"
#include "tests/test_util/in_memory_store.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"
#include "wire/wire_codec.h"

namespace saedict::service {
namespace {

namespace fs = std::filesystem;
using ::saedict::testing::FastestExactMode;
using ::saedict::testing::InMemoryStore;
using ::saedict::testing::IsOk;
using ::saedict::testing::ScratchDir;
using ::saedict::testing::StatusIs;
using ::saedict::wire::DecodeCodes;
using ::saedict::wire::DecodeMatrix;
using ::saedict::wire::DenseRows;
using ::saedict::wire::EncodeTensor;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int64_t kDIn = 8;
constexpr int64_t kDSae = 32;
constexpr int32_t kK = 4;

v1::IngestDocument IngestDoc(uint64_t id, const std::vector<float>& x, bool strings = true) {
  v1::IngestDocument doc;
  doc.set_doc_id(id);
  const int64_t tokens = static_cast<int64_t>(x.size()) / kDIn;
  std::vector<int32_t> ids;
  for (int64_t t = 0; t < tokens; ++t) {
    ids.push_back(static_cast<int32_t>(100 + t));
    if (strings) doc.add_token_strings(absl::StrCat("w", t));
  }
  doc.set_token_ids(std::string(reinterpret_cast<const char*>(ids.data()), ids.size() * 4));
  *doc.mutable_activations() = wire::EncodeTensor(x, {tokens, kDIn});
  return doc;
}

class ServiceCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = scratch_.path() / "root";
    data_dir_ = scratch_.path() / "data";
    dict_ = testing::RandomDictionary(engine::Architecture::kTopK, kDIn, kDSae, kK, 7);
    other_ = testing::RandomDictionary(engine::Architecture::kTopK, kDIn, kDSae, kK, 8);
    ASSERT_THAT(testing::WriteSaeLensFolder(root_ / "sae", dict_), IsOk());
    ASSERT_THAT(testing::WriteSaeLensFolder(root_ / "sae2", other_), IsOk());
    SAEDICT_ASSERT_OK_AND_ASSIGN(registry_,
                                 DictionaryRegistry::Create({data_dir_, root_}, &store_));
    SAEDICT_ASSERT_OK_AND_ASSIGN(batcher_, engine::EncodeBatcher::Create({}));
    core_ = std::make_unique<ServiceCore>(registry_.get(), batcher_.get(), &store_, data_dir_);
    SAEDICT_ASSERT_OK_AND_ASSIGN(
        reference_, engine::Encoder::Create(std::make_shared<const engine::Dictionary>(dict_)));
  }

  absl::StatusOr<v1::LoadDictionaryResponse> Load(const std::string& id, const std::string& path,
                                                  bool replace = false) {
    v1::LoadDictionaryRequest r;
    r.set_id(id);
    r.set_path(path);
    r.set_replace(replace);
    return core_->LoadDictionary(r);
  }

  v1::EncodeRequest EncodeRequest(const std::string& id, const std::vector<float>& x) {
    v1::EncodeRequest r;
    r.set_dictionary_id(id);
    *r.mutable_activations() = wire::EncodeTensor(x, {static_cast<int64_t>(x.size()) / kDIn, kDIn});
    return r;
  }

  // Runs one Ingest stream of `requests`; returns Finish()'s status.
  absl::Status Ingest(std::vector<v1::IngestRequest> requests, std::vector<v1::IngestAck>* acks) {
    absl::Mutex mu;
    std::unique_ptr<IngestSession> session = core_->StartIngest([&](const v1::IngestAck& ack) {
      absl::MutexLock lock(&mu);
      acks->push_back(ack);
      return true;
    });
    absl::Status status;
    for (v1::IngestRequest& r : requests) {
      status = session->Submit(std::move(r));
      if (!status.ok()) break;
    }
    absl::Status finished = session->Finish();
    return finished.ok() ? status : finished;
  }

  v1::IngestRequest IngestRequest(const std::string& id, std::vector<v1::IngestDocument> docs) {
    v1::IngestRequest r;
    r.set_dictionary_id(id);
    r.set_corpus("web");
    for (v1::IngestDocument& d : docs) *r.add_documents() = std::move(d);
    return r;
  }

  engine::SparseCodes ReferenceCodes(const std::vector<float>& x, int32_t top_k = 0) {
    engine::EncodeOptions options;
    options.top_k = top_k;
    absl::StatusOr<engine::EncodeResult> r =
        reference_->Encode(x, static_cast<int64_t>(x.size()) / kDIn, options);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? r->codes : engine::SparseCodes();
  }

  ScratchDir scratch_;
  fs::path root_, data_dir_;
  engine::Dictionary dict_, other_;
  InMemoryStore store_;
  std::unique_ptr<DictionaryRegistry> registry_;
  std::unique_ptr<engine::EncodeBatcher> batcher_;
  std::unique_ptr<ServiceCore> core_;
  std::unique_ptr<engine::Encoder> reference_;
};

void ExpectSameCodes(const engine::SparseCodes& got, const engine::SparseCodes& want) {
  EXPECT_EQ(got.num_rows, want.num_rows);
  EXPECT_EQ(got.row_offsets, want.row_offsets);
  EXPECT_EQ(got.indices, want.indices);
  EXPECT_EQ(got.values, want.values);  // bit-identical: F32 encode is batch-invariant
}

TEST_F(ServiceCoreTest, LoadPersistsRecordAndCanonicalWeights) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::LoadDictionaryResponse loaded, Load("a", "sae"));
  const v1::DictionaryInfo& info = loaded.dictionary();
  EXPECT_EQ(info.id(), "a");
  EXPECT_EQ(info.d_in(), kDIn);
  EXPECT_EQ(info.d_sae(), kDSae);
  EXPECT_EQ(info.architecture(), v1::ARCHITECTURE_TOPK);
  EXPECT_EQ(info.k(), kK);
  EXPECT_EQ(info.source_format(), v1::SOURCE_FORMAT_SAELENS);
  EXPECT_EQ(info.source_path(), "sae");
  EXPECT_EQ(info.model_name(), "fixture-model");
  EXPECT_EQ(info.weights_sha256(), reference_->content_sha256());
  EXPECT_THAT(info.weights_sha256(), SizeIs(64));
  EXPECT_GT(info.loaded_at().seconds(), 0);

  SAEDICT_ASSERT_OK_AND_ASSIGN(std::optional<records::v1::DictionaryRecord> record,
                               store_.GetDictionary("a"));
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->info().weights_sha256(), info.weights_sha256());
  const fs::path weights = data_dir_ / "dictionaries" / record->weights_file();
  EXPECT_TRUE(fs::is_regular_file(weights)) << weights;

  EXPECT_THAT(Load("a", "sae"), StatusIs(absl::StatusCode::kAlreadyExists,
                                         HasSubstr("dictionary 'a' already exists")));
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::LoadDictionaryResponse replaced, Load("a", "sae2", true));
  EXPECT_NE(replaced.dictionary().weights_sha256(), info.weights_sha256());
  EXPECT_EQ((*store_.GetDictionary("a"))->info().weights_sha256(),
            replaced.dictionary().weights_sha256());
  EXPECT_FALSE(fs::exists(weights));  // the old canonical file is gone
}

TEST_F(ServiceCoreTest, LoadErrors) {
  EXPECT_THAT(Load("a/b", "sae"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("a/b")));
  EXPECT_THAT(Load("a", ""), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("path")));
  EXPECT_THAT(Load("a", "missing"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("path 'missing'")));
  EXPECT_THAT(Load("a", "../data"),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("path '../data'")));
  fs::create_directories(root_ / "empty");
  EXPECT_THAT(Load("a", "empty"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("no SAE found")));
  fs::create_directories(root_ / "bad");
  std::ofstream(root_ / "bad" / "cfg.json") << "{\"d_in\": ";
  std::ofstream(root_ / "bad" / "sae_weights.safetensors") << "not safetensors";
  EXPECT_THAT(Load("a", "bad"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad")));
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<records::v1::DictionaryRecord> records,
                               store_.ListDictionaries());
  EXPECT_THAT(records, IsEmpty());  // nothing half-loaded
}

TEST_F(ServiceCoreTest, ListGetDelete) {
  ASSERT_THAT(Load("b", "sae2"), IsOk());
  ASSERT_THAT(Load("a", "sae"), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::ListDictionariesResponse list, core_->ListDictionaries({}));
  ASSERT_EQ(list.dictionaries_size(), 2);
  EXPECT_EQ(list.dictionaries(0).id(), "a");
  EXPECT_EQ(list.dictionaries(1).id(), "b");

  v1::GetDictionaryRequest get;
  get.set_id("b");
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetDictionaryResponse got, core_->GetDictionary(get));
  EXPECT_EQ(got.dictionary().source_path(), "sae2");
  get.set_id("zz");
  EXPECT_THAT(core_->GetDictionary(get),
              StatusIs(absl::StatusCode::kNotFound, "dictionary 'zz' not found"));

  v1::DeleteDictionaryRequest del;
  del.set_id("b");
  EXPECT_THAT(core_->DeleteDictionary(del), IsOk());
  EXPECT_FALSE(store_.GetDictionary("b")->has_value());
  EXPECT_THAT(core_->DeleteDictionary(del),
              StatusIs(absl::StatusCode::kNotFound, "dictionary 'b' not found"));
}

TEST_F(ServiceCoreTest, EncodeMatchesTheEngineAndNamesWeights) {
  ASSERT_THAT(Load("a", "sae"), IsOk());
  const std::vector<float> x = testing::RandomActivations(5, kDIn, 3);
  v1::EncodeRequest req = EncodeRequest("a", x);
  req.mutable_options()->set_return_reconstruction(true);
  req.mutable_options()->set_return_error(true);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::EncodeResponse resp, core_->Encode(req));
  SAEDICT_ASSERT_OK_AND_ASSIGN(engine::SparseCodes codes, wire::DecodeCodes(resp.codes(), kDSae));
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      engine::EncodeResult want,
      reference_->Encode(x, 5, {.return_reconstruction = true, .return_row_error = true}));
  ExpectSameCodes(codes, want.codes);
  EXPECT_EQ(codes.nnz(), 5 * kK);
  SAEDICT_ASSERT_OK_AND_ASSIGN(wire::DenseRows x_hat,
                               wire::DecodeMatrix(resp.reconstruction(), kDIn, "x"));
  EXPECT_EQ(x_hat.values, want.reconstruction);
  ASSERT_EQ(resp.row_error().shape_size(), 1);
  EXPECT_EQ(resp.row_error().shape(0), 5);
  std::vector<float> row_error(5);
  ASSERT_EQ(resp.row_error().data().size(), sizeof(float) * 5);
  std::memcpy(row_error.data(), resp.row_error().data().data(), sizeof(float) * 5);
  EXPECT_EQ(row_error, want.row_squared_error);
  EXPECT_EQ(resp.weights_sha256(), reference_->content_sha256());
  EXPECT_EQ(resp.compute_mode(), FastestExactMode());

  req.mutable_options()->set_top_k(2);
  SAEDICT_ASSERT_OK_AND_ASSIGN(resp, core_->Encode(req));
  SAEDICT_ASSERT_OK_AND_ASSIGN(codes, wire::DecodeCodes(resp.codes(), kDSae));
  ExpectSameCodes(codes, ReferenceCodes(x, 2));
  EXPECT_EQ(codes.nnz(), 5 * 2);
}

TEST_F(ServiceCoreTest, EncodeErrors) {
  ASSERT_THAT(Load("a", "sae"), IsOk());
  const std::vector<float> x = testing::RandomActivations(2, kDIn, 3);
  EXPECT_THAT(core_->Encode(EncodeRequest("", x)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dictionary_id: empty")));
  EXPECT_THAT(core_->Encode(EncodeRequest("nope", x)),
              StatusIs(absl::StatusCode::kNotFound, "dictionary 'nope' not found"));
  v1::EncodeRequest wrong_width = EncodeRequest("a", x);
  *wrong_width.mutable_activations() = wire::EncodeTensor(x, {4, 4});
  EXPECT_THAT(core_->Encode(wrong_width),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("activations")));
  std::vector<float> nan = x;
  nan[3] = std::nanf("");
  EXPECT_THAT(core_->Encode(EncodeRequest("a", nan)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("activations")));
  v1::EncodeRequest big_k = EncodeRequest("a", x);
  big_k.mutable_options()->set_top_k(kDSae + 1);
  EXPECT_THAT(core_->Encode(big_k),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_k")));
}

TEST_F(ServiceCoreTest, DecodeRoundTripAndErrors) {
  ASSERT_THAT(Load("a", "sae"), IsOk());
  const std::vector<float> x = testing::RandomActivations(3, kDIn, 4);
  v1::EncodeRequest enc = EncodeRequest("a", x);
  enc.mutable_options()->set_return_reconstruction(true);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::EncodeResponse encoded, core_->Encode(enc));
  v1::DecodeRequest dec;
  dec.set_dictionary_id("a");
  *dec.mutable_codes() = encoded.codes();
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::DecodeResponse decoded, core_->Decode(dec));
  SAEDICT_ASSERT_OK_AND_ASSIGN(wire::DenseRows got,
                               wire::DecodeMatrix(decoded.activations(), kDIn, "x"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(wire::DenseRows want,
                               wire::DecodeMatrix(encoded.reconstruction(), kDIn, "x"));
  EXPECT_EQ(got.rows, 3);
  EXPECT_EQ(got.values, want.values);

  dec.mutable_codes()->set_num_features(kDSae / 2);
  EXPECT_THAT(core_->Decode(dec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(absl::StrCat(kDSae / 2))));
  dec.set_dictionary_id("nope");
  EXPECT_THAT(core_->Decode(dec), StatusIs(absl::StatusCode::kNotFound, HasSubstr("'nope'")));
}

TEST_F(ServiceCoreTest, InterveneKeepsTheErrorTermAndNamesWeights) {
  ASSERT_THAT(Load("a", "sae"), IsOk());
  const std::vector<float> x = testing::RandomActivations(2, kDIn, 5);
  const engine::SparseCodes codes = ReferenceCodes(x);
  const uint32_t feature = codes.indices[0];  // active in row 0
  v1::InterveneRequest req;
  req.set_dictionary_id("a");
  *req.mutable_activations() = wire::EncodeTensor(x, {2, kDIn});
  v1::FeatureEdit* edit = req.add_edits();
  edit->set_feature(feature);
  edit->set_op(v1::EDIT_OP_ABLATE);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::InterveneResponse resp, core_->Intervene(req));
  SAEDICT_ASSERT_OK_AND_ASSIGN(wire::DenseRows edited,
                               wire::DecodeMatrix(resp.activations(), kDIn, "x"));
  // x + (f' - f) W_dec: row 0 loses feature's decoder direction times its value.
  const float f = codes.values[0];
  for (int64_t j = 0; j < kDIn; ++j) {
    EXPECT_NEAR(edited.values[j], x[j] - f * dict_.w_dec[feature * kDIn + j], 1e-5f) << j;
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(engine::SparseCodes edited_codes,
                               wire::DecodeCodes(resp.codes(), kDSae));
  for (uint64_t e = edited_codes.row_offsets[0]; e < edited_codes.row_offsets[1]; ++e) {
    EXPECT_NE(edited_codes.indices[e], feature);
  }
  EXPECT_EQ(resp.weights_sha256(), reference_->content_sha256());
  EXPECT_EQ(resp.compute_mode(), FastestExactMode());

  edit->set_feature(kDSae);
  EXPECT_THAT(core_->Intervene(req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(absl::StrCat(kDSae))));
}

TEST_F(ServiceCoreTest, IngestStoresEncodedCodesAndAcksEachBatch) {
  ASSERT_THAT(Load("a", "sae"), IsOk());
  const std::vector<float> x0 = testing::RandomActivations(3, kDIn, 10);
  const std::vector<float> x1 = testing::RandomActivations(2, kDIn, 11);
  const std::vector<float> x2 = testing::RandomActivations(4, kDIn, 12);
  std::vector<v1::IngestAck> acks;
  ASSERT_THAT(Ingest({IngestRequest("a", {IngestDoc(0, x0), IngestDoc(1, x1, false)}),
                      IngestRequest("", {IngestDoc(2, x2)})},
                     &acks),
              IsOk());
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].batch(), 0);
  EXPECT_EQ(acks[0].documents(), 2);
  EXPECT_EQ(acks[0].tokens(), 5);
  EXPECT_EQ(acks[1].batch(), 1);
  EXPECT_EQ(acks[1].total_documents(), 3);
  EXPECT_EQ(acks[1].total_tokens(), 9);
  for (const v1::IngestAck& ack : acks) {
    EXPECT_EQ(ack.weights_sha256(), reference_->content_sha256());
    EXPECT_EQ(ack.compute_mode(), FastestExactMode());
  }
  // The store holds exactly the engine's codes.
  for (auto [doc, x] :
       std::vector<std::pair<uint64_t, std::vector<float>>>{{0, x0}, {1, x1}, {2, x2}}) {
    SCOPED_TRACE(doc);
    SAEDICT_ASSERT_OK_AND_ASSIGN(std::optional<storage::StoredCodes> stored,
                                 store_.corpus()->GetCodes("a", "web", doc));
    ASSERT_TRUE(stored.has_value());
    ExpectSameCodes(stored->codes, ReferenceCodes(x));
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(storage::DictionaryTotals totals,
                               store_.corpus()->GetDictionaryTotals("a"));
  EXPECT_EQ(totals.tokens, 9);
  EXPECT_EQ(totals.documents, 3);

  // Re-ingesting document 1 replaces it.
  acks.clear();
  ASSERT_THAT(Ingest({IngestRequest("a", {IngestDoc(1, x1)})}, &acks), IsOk());
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].replaced_documents(), 1);
  EXPECT_EQ(store_.corpus()->GetDictionaryTotals("a")->documents, 3);
}

TEST_F(ServiceCoreTest, IngestErrorsEndTheStream) {
  ASSERT_THAT(Load("a", "sae"), IsOk());
  const std::vector<float> x = testing::RandomActivations(2, kDIn, 13);
  std::vector<v1::IngestAck> acks;
  EXPECT_THAT(Ingest({IngestRequest("nope", {IngestDoc(0, x)})}, &acks),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("stream message 0: dictionary 'nope' not found")));
  v1::IngestRequest bad_width = IngestRequest("a", {IngestDoc(1, x)});
  *bad_width.mutable_documents(0)->mutable_activations() = wire::EncodeTensor(x, {4, 4});
  EXPECT_THAT(Ingest({IngestRequest("a", {IngestDoc(0, x)}), bad_width}, &acks),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stream message 1: ")));
  // The batch before the bad one was stored and acknowledged.
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(store_.corpus()->GetCodes("a", "web", 0)->has_value());
  EXPECT_FALSE(store_.corpus()->GetCodes("a", "web", 1)->has_value());
}

TEST_F(ServiceCoreTest, ReplaceDuringAnIngestFailsTheStream) {
  ASSERT_THAT(Load("a", "sae"), IsOk());
  const std::vector<float> x = testing::RandomActivations(2, kDIn, 14);
  std::vector<v1::IngestAck> acks;
  absl::Mutex mu;
  std::unique_ptr<IngestSession> session = core_->StartIngest([&](const v1::IngestAck& ack) {
    absl::MutexLock lock(&mu);
    acks.push_back(ack);
    return true;
  });
  ASSERT_THAT(session->Submit(IngestRequest("a", {IngestDoc(0, x)})), IsOk());
  while (session->batches_acknowledged() < 1) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_THAT(Load("a", "sae2", /*replace=*/true), IsOk());
  absl::Status s = session->Submit(IngestRequest("a", {IngestDoc(1, x)}));
  if (s.ok()) s = session->Finish();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("replaced")));
  // The replace dropped the old weights' latents; nothing of the new batch landed.
  EXPECT_FALSE(store_.corpus()->GetCodes("a", "web", 0)->has_value());
  EXPECT_FALSE(store_.corpus()->GetCodes("a", "web", 1)->has_value());
}

TEST_F(ServiceCoreTest, CorpusQueriesReadTheStore) {
  ASSERT_THAT(Load("a", "sae"), IsOk());
  const std::vector<float> x = testing::RandomActivations(6, kDIn, 15);
  std::vector<v1::IngestAck> acks;
  ASSERT_THAT(Ingest({IngestRequest("a", {IngestDoc(7, x)})}, &acks), IsOk());
  const engine::SparseCodes codes = ReferenceCodes(x);

  v1::GetDocumentRequest get_doc;
  get_doc.set_corpus("web");
  get_doc.set_doc_id(7);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetDocumentResponse doc, core_->GetDocument(get_doc));
  EXPECT_THAT(doc.document().token_ids(), ElementsAre(100, 101, 102, 103, 104, 105));
  EXPECT_EQ(doc.document().token_strings(2), "w2");
  get_doc.set_doc_id(8);
  EXPECT_THAT(core_->GetDocument(get_doc),
              StatusIs(absl::StatusCode::kNotFound, "document 8 of corpus 'web' not found"));

  v1::GetActivationsRequest acts;
  acts.set_dictionary_id("a");
  acts.set_corpus("web");
  acts.set_doc_id(7);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetActivationsResponse got, core_->GetActivations(acts));
  SAEDICT_ASSERT_OK_AND_ASSIGN(engine::SparseCodes got_codes,
                               wire::DecodeCodes(got.codes(), kDSae));
  ExpectSameCodes(got_codes, codes);
  EXPECT_EQ(got.stored_precision(), v1::VALUE_PRECISION_F32);

  // Feature statistics and examples for the feature of the largest activation.
  size_t best = 0;
  for (size_t e = 0; e < codes.values.size(); ++e) {
    if (codes.values[e] > codes.values[best]) best = e;
  }
  const uint32_t feature = codes.indices[best];
  int64_t count = 0;
  for (uint32_t idx : codes.indices) count += idx == feature;
  v1::GetFeatureRequest gf;
  gf.set_dictionary_id("a");
  gf.set_feature(feature);
  gf.set_top_n(2);
  gf.set_context_window(1);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::GetFeatureResponse f, core_->GetFeature(gf));
  EXPECT_EQ(f.stats().count(), count);
  EXPECT_EQ(f.stats().total_tokens(), 6);
  EXPECT_EQ(f.stats().max(), codes.values[best]);
  ASSERT_GE(f.top_examples_size(), 1);
  EXPECT_EQ(f.top_examples(0).value(), codes.values[best]);
  EXPECT_EQ(f.top_examples(0).doc_id(), 7u);
  gf.set_feature(kDSae);
  EXPECT_THAT(core_->GetFeature(gf),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("has d_sae 32")));
  gf.set_feature(feature);
  gf.set_top_n(-1);
  EXPECT_THAT(core_->GetFeature(gf),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_n")));

  v1::TopActivationsRequest top;
  top.set_dictionary_id("a");
  top.set_feature(feature);
  top.set_n(1);
  top.set_quantile_bins(2);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::TopActivationsResponse t, core_->TopActivations(top));
  ASSERT_EQ(t.top_size(), 1);
  EXPECT_EQ(t.top(0).value(), codes.values[best]);
  EXPECT_EQ(t.bins_size(), 2);

  v1::DocumentFeaturesRequest df;
  df.set_dictionary_id("a");
  df.set_corpus("web");
  df.set_doc_id(7);
  df.set_n(1);
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::DocumentFeaturesResponse features, core_->DocumentFeatures(df));
  EXPECT_EQ(features.num_tokens(), 6);
  ASSERT_EQ(features.features_size(), 1);
  EXPECT_EQ(features.features(0).feature(), feature);
  EXPECT_EQ(features.features(0).max_value(), codes.values[best]);
  df.set_position(6);
  EXPECT_THAT(core_->DocumentFeatures(df),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("position: 6")));

  // A document the dictionary has no codes for.
  ASSERT_THAT(Load("b", "sae2"), IsOk());
  acts.set_dictionary_id("b");
  EXPECT_THAT(core_->GetActivations(acts),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'b' has no codes for document 7")));
}

TEST_F(ServiceCoreTest, DeleteDropsLatentsAndKeepsDocuments) {
  ASSERT_THAT(Load("a", "sae"), IsOk());
  std::vector<v1::IngestAck> acks;
  ASSERT_THAT(
      Ingest({IngestRequest("a", {IngestDoc(3, testing::RandomActivations(2, kDIn, 16))})}, &acks),
      IsOk());
  v1::DeleteDictionaryRequest del;
  del.set_id("a");
  ASSERT_THAT(core_->DeleteDictionary(del), IsOk());
  EXPECT_FALSE(store_.corpus()->GetCodes("a", "web", 3)->has_value());
  EXPECT_EQ(store_.corpus()->GetDictionaryTotals("a")->documents, 0);
  v1::GetDocumentRequest get_doc;
  get_doc.set_corpus("web");
  get_doc.set_doc_id(3);
  EXPECT_THAT(core_->GetDocument(get_doc), IsOk());
}

TEST_F(ServiceCoreTest, CheckpointOfTheInMemoryStoreRestores) {
  ASSERT_THAT(Load("a", "sae"), IsOk());
  const std::vector<float> x = testing::RandomActivations(3, kDIn, 17);
  std::vector<v1::IngestAck> acks;
  ASSERT_THAT(Ingest({IngestRequest("a", {IngestDoc(5, x)})}, &acks), IsOk());
  v1::CreateCheckpointRequest cp;
  cp.set_name("cp1");
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::CreateCheckpointResponse made, core_->CreateCheckpoint(cp));
  const fs::path backup = data_dir_ / "backups" / "cp1";
  EXPECT_EQ(fs::path(made.path()), fs::absolute(backup).lexically_normal());
  EXPECT_GT(made.bytes(), 0);
  EXPECT_THAT(core_->CreateCheckpoint(cp),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("'cp1' already exists")));
  cp.set_name("../up");
  EXPECT_THAT(core_->CreateCheckpoint(cp),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));

  // The backup is a complete data dir: a RocksDB store plus the weights.
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<storage::Store> restored,
                               storage::Store::Open({backup / "db", false}));
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<DictionaryRegistry> registry,
                               DictionaryRegistry::Create({backup, root_}, restored.get()));
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::DictionaryInfo info, registry->Get("a"));
  EXPECT_EQ(info.weights_sha256(), reference_->content_sha256());
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::optional<storage::StoredCodes> codes,
                               restored->corpus()->GetCodes("a", "web", 5));
  ASSERT_TRUE(codes.has_value());
  ExpectSameCodes(codes->codes, ReferenceCodes(x));
}

}  // namespace
}  // namespace saedict::service
