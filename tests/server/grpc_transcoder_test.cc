// Transcoders over the wire, against a real in-process server: a SAELens
// skip transcoder loaded by path and a Gemma Scope 2 transcoder uploaded
// from outside the root; DictionaryInfo's d_out / hook_name_out /
// skip_connection (also after a restart, from the canonical copy);
// Encode's reconstruction, Decode and Intervene as [n, d_out] rows equal to
// a float64 recomputation from the written weights; and the error paths
// (row error, Evaluate, a similarity query of the wrong width, the input
// width).
#include <cmath>
#include <filesystem>
#include <memory>
#include <vector>

#include "client/saedict_client.h"
#include "client/upload_files.h"
#include "engine/dictionary.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/server/grpc_test_fixture.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr int64_t kIn = 12, kOut = 20, kSae = 48;

class GrpcTranscoderTest : public GrpcServerTest {
 protected:
  // A SAELens jumprelu skip transcoder under the root at "tc".
  engine::Dictionary WriteTranscoder() {
    engine::Dictionary d =
        RandomTranscoder(engine::Architecture::kJumpReLU, kIn, kOut, kSae, /*skip=*/true, 9);
    EXPECT_THAT(WriteSaeLensFolder(root_ / "tc", d), IsOk());
    return d;
  }

  // b_dec + f W_dec (+ W_skip x), float64, for every row of `codes`.
  static std::vector<double> Expected(const engine::Dictionary& d, const engine::SparseCodes& codes,
                                      const std::vector<float>* x) {
    std::vector<double> out;
    for (int64_t r = 0; r < codes.num_rows; ++r) {
      std::vector<double> y(d.b_dec.begin(), d.b_dec.end());
      for (const auto& [i, v] : Row(codes, r)) {
        for (int64_t o = 0; o < kOut; ++o) y[o] += double{v} * d.w_dec[i * kOut + o];
      }
      if (x != nullptr) {
        for (int64_t o = 0; o < kOut; ++o) {
          for (int64_t j = 0; j < kIn; ++j) {
            y[o] += double{d.w_skip[o * kIn + j]} * (*x)[r * kIn + j];
          }
        }
      }
      out.insert(out.end(), y.begin(), y.end());
    }
    return out;
  }

  static void ExpectRows(const v1::Tensor& got, int64_t n, const std::vector<double>& want,
                         const char* what) {
    ASSERT_EQ(got.shape_size(), 2) << what;
    EXPECT_EQ(got.shape(0), n) << what;
    EXPECT_EQ(got.shape(1), kOut) << what;
    const std::vector<float> values = FloatsOf(got);
    ASSERT_EQ(values.size(), want.size()) << what;
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_NEAR(values[i], want[i], 1e-4 * (1 + std::abs(want[i]))) << what << " value " << i;
    }
  }
};

TEST_F(GrpcTranscoderTest, LoadedByPathItEncodesDecodesAndIntervenesAtTheOutputHook) {
  const engine::Dictionary d = WriteTranscoder();
  v1::DictionaryInfo info;
  ASSERT_THAT(Load("tc", "tc", &info), GrpcOk());
  EXPECT_EQ(info.d_in(), kIn);
  EXPECT_EQ(info.d_out(), kOut);
  EXPECT_EQ(info.hook_name(), "blocks.0.ln2.hook_normalized");
  EXPECT_EQ(info.hook_name_out(), "blocks.0.hook_mlp_out");
  EXPECT_TRUE(info.skip_connection());
  EXPECT_EQ(info.architecture(), v1::ARCHITECTURE_JUMPRELU);
  EXPECT_FALSE(info.apply_b_dec_to_input());

  const int64_t n = 9;
  const std::vector<float> x = RandomActivations(n, kIn, 4);
  v1::EncodeOptions options;
  options.set_return_reconstruction(true);
  v1::EncodeResponse enc;
  ASSERT_THAT(EncodeRows("tc", x, n, kIn, &enc, options), GrpcOk());
  const engine::SparseCodes codes = CodesOf(enc.codes());
  ASSERT_GT(codes.nnz(), n);
  ExpectRows(enc.reconstruction(), n, Expected(d, codes, &x), "reconstruction");
  // The same codes as the local engine on the same weights.
  ExpectSameCodes(codes, ReferenceEncoder("tc")->Encode(x, n).value().codes, 1e-5f, "encode");

  v1::DecodeRequest dec;
  dec.set_dictionary_id("tc");
  *dec.mutable_codes() = enc.codes();
  v1::DecodeResponse decoded;
  ASSERT_THAT(stub_->Decode(Ctx().get(), dec, &decoded), GrpcOk());
  ExpectRows(decoded.activations(), n, Expected(d, codes, nullptr), "decode (no skip term)");

  v1::InterveneRequest iv;
  iv.set_dictionary_id("tc");
  *iv.mutable_activations() = F32Tensor(x, {n, kIn});
  v1::FeatureEdit* edit = iv.add_edits();
  edit->set_feature(codes.indices[0]);
  edit->set_op(v1::EDIT_OP_SET);
  edit->set_value(3.0f);
  v1::InterveneResponse edited;
  ASSERT_THAT(stub_->Intervene(Ctx().get(), iv, &edited), GrpcOk());
  const engine::SparseCodes f2 = CodesOf(edited.codes());
  for (int64_t r = 0; r < n; ++r) {
    bool found = false;
    for (const auto& [i, v] : Row(f2, r)) found |= i == codes.indices[0] && v == 3.0f;
    EXPECT_TRUE(found) << "row " << r;
  }
  ExpectRows(edited.activations(), n, Expected(d, f2, &x), "intervene");

  // After a restart it is served from the canonical copy with the same fields and hash.
  RestartServer();
  v1::GetDictionaryRequest get;
  get.set_id("tc");
  v1::GetDictionaryResponse again;
  ASSERT_THAT(stub_->GetDictionary(Ctx().get(), get, &again), GrpcOk());
  EXPECT_EQ(again.dictionary().d_out(), kOut);
  EXPECT_EQ(again.dictionary().hook_name_out(), "blocks.0.hook_mlp_out");
  EXPECT_TRUE(again.dictionary().skip_connection());
  v1::EncodeResponse enc2;
  ASSERT_THAT(EncodeRows("tc", x, n, kIn, &enc2, options), GrpcOk());
  EXPECT_EQ(enc2.weights_sha256(), enc.weights_sha256());
  EXPECT_EQ(FloatsOf(enc2.reconstruction()), FloatsOf(enc.reconstruction()));
}

TEST_F(GrpcTranscoderTest, ErrorPathsNameTheTranscoder) {
  WriteTranscoder();
  ASSERT_THAT(Load("tc", "tc"), GrpcOk());
  const std::vector<float> x = RandomActivations(2, kIn, 5);
  v1::EncodeOptions with_error;
  with_error.set_return_error(true);
  v1::EncodeResponse enc;
  EXPECT_THAT(EncodeRows("tc", x, 2, kIn, &enc, with_error),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                           HasSubstr("is a transcoder: it decodes to another hook "
                                     "(blocks.0.hook_mlp_out)")));
  // Rows of the output width are not input.
  const std::vector<float> wide = RandomActivations(2, kOut, 5);
  EXPECT_THAT(EncodeRows("tc", wide, 2, kOut, &enc),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("activations")));

  grpc::ClientContext ctx;
  v1::EvaluateResponse eval;
  {
    std::unique_ptr<grpc::ClientWriter<v1::EvaluateRequest>> writer = stub_->Evaluate(&ctx, &eval);
    v1::EvaluateRequest r;
    r.set_dictionary_id("tc");
    *r.mutable_activations() = F32Tensor(x, {2, kIn});
    writer->Write(r);
    writer->WritesDone();
    EXPECT_THAT(writer->Finish(),
                GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                             HasSubstr("'tc' is a transcoder (decodes to blocks.0.hook_mlp_out)")));
  }

  // Decoder directions live at the output hook: a query of the input width is refused.
  v1::SearchSimilarRequest search;
  search.set_dictionary_id("tc");
  search.set_directions(v1::DIRECTION_KIND_DECODER);
  *search.mutable_vector() = F32Tensor(std::vector<float>(kIn, 1.0f), {kIn});
  v1::SearchSimilarResponse similar;
  EXPECT_THAT(stub_->SearchSimilar(Ctx().get(), search, &similar),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("vector")));
  // The indexes build in the background: FAILED_PRECONDITION until READY.
  auto search_when_ready = [&](const v1::SearchSimilarRequest& r) {
    grpc::Status s;
    for (int i = 0; i < 1200; ++i) {
      s = stub_->SearchSimilar(Ctx().get(), r, &similar);
      if (s.error_code() != grpc::StatusCode::FAILED_PRECONDITION) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return s;
  };
  *search.mutable_vector() = F32Tensor(std::vector<float>(kOut, 1.0f), {kOut});
  EXPECT_THAT(search_when_ready(search), GrpcOk());
  EXPECT_GT(similar.results(0).neighbours_size(), 0);
  // Encoder directions keep the input width.
  search.set_directions(v1::DIRECTION_KIND_ENCODER);
  *search.mutable_vector() = F32Tensor(std::vector<float>(kIn, 1.0f), {kIn});
  EXPECT_THAT(search_when_ready(search), GrpcOk());

  // Decoder comparison with an SAE of the input width is refused by width.
  WriteSae("sae", engine::Architecture::kTopK);
  ASSERT_THAT(Load("sae", "sae"), GrpcOk());
  v1::SearchSimilarRequest across;
  across.set_dictionary_id("tc");
  across.set_directions(v1::DIRECTION_KIND_DECODER);
  across.set_feature(0);
  across.add_against("sae");
  EXPECT_THAT(stub_->SearchSimilar(Ctx().get(), across, &similar),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                           HasSubstr("against[0]: dictionary 'sae' has d_in 16, the query has 20")));
}

TEST_F(GrpcTranscoderTest, AGemmaScope2TranscoderUploadedFromOutsideTheRoot) {
  engine::Dictionary d =
      RandomTranscoder(engine::Architecture::kJumpReLU, kIn, kOut, kSae, /*skip=*/true, 11);
  const fs::path folder =
      scratch_.path() / "elsewhere" / "transcoder_all" / "layer_4_width_16k_l0_small_affine";
  ASSERT_THAT(WriteGemmaScope2Folder(folder, d), IsOk());
  auto client = client::Client::FromChannel(channel_);
  absl::StatusOr<client::UploadPlan> plan = client::PlanUpload(folder);
  ASSERT_TRUE(plan.ok()) << plan.status();
  v1::UploadDictionaryRequest::Header header;
  header.set_id("gs2-tc");
  absl::StatusOr<v1::UploadDictionaryResponse> resp =
      client->UploadDictionary(client::UploadStream(*plan, header, nullptr));
  ASSERT_TRUE(resp.ok()) << resp.status();
  const v1::DictionaryInfo& info = resp->dictionary();
  EXPECT_EQ(info.source_format(), v1::SOURCE_FORMAT_GEMMA_SCOPE_2);
  EXPECT_EQ(info.d_out(), kOut);
  EXPECT_TRUE(info.skip_connection());
  // An upload keeps no folder names, so its hooks are unknown.
  EXPECT_EQ(info.hook_name_out(), "");

  const int64_t n = 5;
  const std::vector<float> x = RandomActivations(n, kIn, 6);
  v1::EncodeOptions options;
  options.set_return_reconstruction(true);
  v1::EncodeResponse enc;
  ASSERT_THAT(EncodeRows("gs2-tc", x, n, kIn, &enc, options), GrpcOk());
  ExpectRows(enc.reconstruction(), n, Expected(d, CodesOf(enc.codes()), &x), "reconstruction");
}

}  // namespace
}  // namespace saedict::testing
