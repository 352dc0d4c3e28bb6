// Real data: the whole stories260k corpus (300 documents, 75317 tokens)
// ingested through the gRPC server into each SAE; the stored feature
// frequencies must equal reference/<sae>_freq.npy (computed in float64 by
// the data's authors), except for tokens whose float64 pre-activation lies
// within a float32 error bound of the feature's decision boundary (computed
// here per token and feature, see Float64Counts), and documents come back
// with their tokens and vocab strings. Skips visibly without ../shared/data.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "formats/codecs/file_io.h"
#include "formats/codecs/json.h"
#include "formats/codecs/npy.h"
#include "formats/dictionary_loader.h"
#include "google/protobuf/util/json_util.h"
#include "tests/server/corpus_test_util.h"
#include "tests/server/grpc_test_fixture.h"

namespace saedict::testing {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kTokens = 75317;
constexpr int64_t kDModel = 64;
constexpr int64_t kDSae512 = 512;

struct Story {
  uint64_t id;
  int64_t start, length;
};

class Stories260kIngestTest : public GrpcServerTest {
 protected:
  void SetUp() override {
    SAEDICT_REQUIRE_STORIES260K(dir);
    dir_ = dir;
    options_.dictionary_root = dir_;
    GrpcServerTest::SetUp();
    absl::StatusOr<formats::NpyArray> tokens = formats::ReadNpyFile(dir_ / "tokens.npy");
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    ASSERT_EQ(tokens->shape, std::vector<int64_t>{kTokens});
    tokens_.resize(kTokens);
    std::memcpy(tokens_.data(), tokens->data.data(), kTokens * sizeof(int32_t));
    std::ifstream docs(dir_ / "docs.jsonl");
    for (std::string line; std::getline(docs, line);) {
      absl::StatusOr<google::protobuf::Struct> obj = formats::ParseJsonObject(line, "docs.jsonl");
      ASSERT_TRUE(obj.ok()) << obj.status();
      const auto& f = obj->fields();
      stories_.push_back({static_cast<uint64_t>(f.at("doc_id").number_value()),
                          static_cast<int64_t>(f.at("start").number_value()),
                          static_cast<int64_t>(f.at("length").number_value())});
    }
    ASSERT_EQ(stories_.size(), 300u);
    absl::StatusOr<std::string> vocab_json = formats::ReadFileToString(dir_ / "vocab.json");
    ASSERT_TRUE(vocab_json.ok());
    google::protobuf::Value vocab;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*vocab_json, &vocab).ok());
    for (const auto& v : vocab.list_value().values()) vocab_.push_back(v.string_value());
    ASSERT_EQ(vocab_.size(), 512u);
  }

  // Ingests every story into `id` (batches of ~8k tokens, F16 activations as
  // stored on disk); returns the seconds it took.
  double IngestAll(const std::string& id, const std::string& acts_file) {
    absl::StatusOr<formats::NpyArray> acts = formats::ReadNpyFile(dir_ / acts_file);
    EXPECT_TRUE(acts.ok()) << acts.status();
    std::vector<v1::IngestRequest> requests;
    v1::IngestRequest current;
    int64_t batch_tokens = 0;
    for (const Story& s : stories_) {
      v1::IngestDocument* doc = current.add_documents();
      doc->set_doc_id(s.id);
      std::vector<int32_t> ids(tokens_.begin() + s.start, tokens_.begin() + s.start + s.length);
      doc->set_token_ids(Bytes(ids));
      for (int32_t t : ids) doc->add_token_strings(vocab_[t]);
      v1::Tensor* t = doc->mutable_activations();
      t->set_dtype(v1::DTYPE_F16);
      t->add_shape(s.length);
      t->add_shape(kDModel);
      t->set_data(acts->data.substr(s.start * kDModel * 2, s.length * kDModel * 2));
      batch_tokens += s.length;
      if (batch_tokens >= 8192) {
        requests.push_back(std::move(current));
        current = {};
        batch_tokens = 0;
      }
    }
    if (current.documents_size() > 0) requests.push_back(std::move(current));
    requests[0].set_dictionary_id(id);
    requests[0].set_corpus("stories");
    const absl::Time start = absl::Now();
    IngestOutcome out = RunIngest(*stub_, requests);
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    EXPECT_THAT(out.status, GrpcOk());
    EXPECT_EQ(out.acks.size(), requests.size());
    if (!out.acks.empty()) {
      EXPECT_EQ(out.acks.back().total_tokens(), kTokens);
      EXPECT_EQ(out.acks.back().total_documents(), 300);
    }
    return seconds;
  }

  fs::path dir_;
  std::vector<int32_t> tokens_;
  std::vector<Story> stories_;
  std::vector<std::string> vocab_;
};

struct SaeCase {
  const char* name;
  const char* acts;
};

// Per feature: tokens active in float64, and tokens whose activity float32
// arithmetic may legitimately decide otherwise.
struct Float64Counts {
  std::vector<int64_t> active;
  std::vector<int64_t> ambiguous;
};

// Recomputes the SAE in float64 over every token and bounds the float32
// engine's error. The engine computes pre_j = fl(Σ_p fl(x_p - b_dec_p)·W_pj)
// + b_enc_j with one FMA chain; by the standard dot-product bound its error
// is at most γ(d_in + 3)·(Σ_p |x'_p W_pj| + |b_enc_j|), γ(n) = n·u/(1 - n·u),
// u = 2^-24. A token counts as ambiguous for feature j when pre_j lies
// within that bound of j's decision boundary: 0 (ReLU, and TopK's relu),
// the threshold (JumpReLU), or — TopK — the k-th/(k+1)-th largest value,
// within the sum of both sides' bounds (the row's largest bound is used for
// the other side).
Float64Counts CountInFloat64(const engine::Dictionary& d, const std::vector<float>& x, int64_t n) {
  const int64_t d_in = d.config.d_in, d_sae = d.config.d_sae;
  const double u = std::ldexp(1.0, -24);
  const double gamma = (d_in + 3) * u / (1 - (d_in + 3) * u);
  Float64Counts out{std::vector<int64_t>(d_sae), std::vector<int64_t>(d_sae)};
  std::vector<double> pre(d_sae), bound(d_sae), centred(d_in);
  std::vector<int64_t> order(d_sae);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t p = 0; p < d_in; ++p) {
      centred[p] = double{x[t * d_in + p]} - (d.config.apply_b_dec_to_input ? d.b_dec[p] : 0.0);
    }
    double max_bound = 0;
    for (int64_t j = 0; j < d_sae; ++j) {
      double sum = 0, abs_sum = 0;
      for (int64_t p = 0; p < d_in; ++p) {
        const double term = centred[p] * d.w_enc[p * d_sae + j];
        sum += term;
        abs_sum += std::abs(term);
      }
      pre[j] = sum + d.b_enc[j];
      bound[j] = gamma * (abs_sum + std::abs(d.b_enc[j]));
      max_bound = std::max(max_bound, bound[j]);
    }
    if (d.config.architecture == engine::Architecture::kTopK) {
      const int64_t k = d.config.k;
      std::iota(order.begin(), order.end(), 0);
      std::nth_element(order.begin(), order.begin() + k, order.end(),
                       [&](int64_t a, int64_t b) { return pre[a] > pre[b]; });
      double lowest_kept = 1e300, highest_dropped = -1e300;
      for (int64_t i = 0; i < d_sae; ++i) {
        if (i < k) {
          lowest_kept = std::min(lowest_kept, pre[order[i]]);
        } else {
          highest_dropped = std::max(highest_dropped, pre[order[i]]);
        }
      }
      for (int64_t i = 0; i < d_sae; ++i) {
        const int64_t j = order[i];
        const bool kept = i < k;
        const double other = kept ? highest_dropped : lowest_kept;
        const bool near_cut = std::abs(pre[j] - other) <= bound[j] + max_bound;
        const bool near_zero = std::abs(pre[j]) <= bound[j];
        if (kept && pre[j] > 0) ++out.active[j];
        if (near_cut || (kept && near_zero)) ++out.ambiguous[j];
      }
      continue;
    }
    for (int64_t j = 0; j < d_sae; ++j) {
      double boundary_distance = std::abs(pre[j]);
      bool active = pre[j] > 0;
      if (d.config.architecture == engine::Architecture::kJumpReLU) {
        boundary_distance = std::min(boundary_distance, std::abs(pre[j] - d.threshold[j]));
        active = active && pre[j] > d.threshold[j];
      }
      out.active[j] += active;
      out.ambiguous[j] += boundary_distance <= bound[j];
    }
  }
  return out;
}
void PrintTo(const SaeCase& c, std::ostream* os) { *os << c.name; }

class Stories260kFrequencyTest : public Stories260kIngestTest,
                                 public ::testing::WithParamInterface<SaeCase> {};

TEST_P(Stories260kFrequencyTest, StoredFrequenciesEqualTheReference) {
  const SaeCase& c = GetParam();
  ASSERT_THAT(Load(c.name, c.name), GrpcOk());
  const double seconds = IngestAll(c.name, c.acts);
  std::cout << "[ info ] ingested " << kTokens << " tokens into " << c.name << " in " << seconds
            << " s (" << kTokens / seconds << " tokens/s, in-process gRPC, one stream)\n";
  absl::StatusOr<formats::NpyArray> ref =
      formats::ReadNpyFile(dir_ / "reference" / absl::StrCat(c.name, "_freq.npy"));
  ASSERT_TRUE(ref.ok()) << ref.status();
  ASSERT_EQ(ref->shape, std::vector<int64_t>{kDSae512});
  std::vector<float> freq(kDSae512);
  std::memcpy(freq.data(), ref->data.data(), freq.size() * sizeof(float));
  // Our own float64 recount must reproduce the data authors' counts exactly.
  absl::StatusOr<formats::LoadedDictionary> sae = formats::LoadDictionary(dir_ / c.name);
  ASSERT_TRUE(sae.ok()) << sae.status();
  absl::StatusOr<formats::NpyArray> acts = formats::ReadNpyFile(dir_ / c.acts);
  ASSERT_TRUE(acts.ok()) << acts.status();
  absl::StatusOr<std::vector<float>> x = formats::NpyToFloat32(*acts, c.acts);
  ASSERT_TRUE(x.ok()) << x.status();
  const Float64Counts f64 = CountInFloat64(sae->dictionary, *x, kTokens);
  int64_t ambiguous_total = 0;
  for (uint32_t f = 0; f < kDSae512; ++f) {
    ASSERT_EQ(f64.active[f], std::llround(static_cast<double>(freq[f]) * kTokens))
        << "feature " << f << ": float64 recount disagrees with reference/" << c.name
        << "_freq.npy";
    ambiguous_total += f64.ambiguous[f];
  }
  int64_t worst = 0, differing = 0;
  for (uint32_t f = 0; f < kDSae512; ++f) {
    v1::GetFeatureRequest r;
    r.set_dictionary_id(c.name);
    r.set_feature(f);
    r.set_top_n(1);
    v1::GetFeatureResponse out;
    ASSERT_THAT(stub_->GetFeature(Ctx().get(), r, &out), GrpcOk());
    ASSERT_EQ(out.stats().total_tokens(), kTokens);
    const int64_t expected = f64.active[f];
    const int64_t diff = std::llabs(out.stats().count() - expected);
    worst = std::max(worst, diff);
    differing += diff != 0;
    EXPECT_LE(diff, f64.ambiguous[f])
        << "feature " << f << ": stored count " << out.stats().count() << ", reference " << expected
        << "; only " << f64.ambiguous[f]
        << " tokens lie within float32 rounding of its decision boundary";
    EXPECT_NEAR(out.stats().density(), static_cast<double>(out.stats().count()) / kTokens, 1e-12)
        << "feature " << f;
  }
  std::cout << "[ info ] " << c.name << ": " << differing
            << " features differ from the reference count, by at most " << worst << " tokens; "
            << ambiguous_total << " (token, feature) pairs lie within float32 rounding of a "
            << "decision boundary\n";
  // A document comes back with its tokens and vocab strings.
  v1::GetDocumentRequest dr;
  dr.set_corpus("stories");
  dr.set_doc_id(stories_[7].id);
  v1::GetDocumentResponse doc;
  ASSERT_THAT(stub_->GetDocument(Ctx().get(), dr, &doc), GrpcOk());
  ASSERT_EQ(doc.document().token_ids_size(), stories_[7].length);
  for (int64_t t = 0; t < stories_[7].length; ++t) {
    ASSERT_EQ(doc.document().token_ids(t), tokens_[stories_[7].start + t]);
    ASSERT_EQ(doc.document().token_strings(t), vocab_[tokens_[stories_[7].start + t]]);
  }
}

INSTANTIATE_TEST_SUITE_P(Saes, Stories260kFrequencyTest,
                         ::testing::Values(SaeCase{"topk_l2_a", "acts_layer2.npy"},
                                           SaeCase{"topk_l2_b", "acts_layer2.npy"},
                                           SaeCase{"relu_l4", "acts_layer4.npy"},
                                           SaeCase{"jumprelu_l2", "acts_layer2.npy"}));

}  // namespace
}  // namespace saedict::testing
