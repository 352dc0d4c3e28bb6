// Encode and Decode through a real gRPC server: results equal the engine's
// on the same dictionary, every dtype, options, and every error path.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tests/formats/sae_fixtures.h"
#include "tests/server/grpc_test_fixture.h"
#include "wire/wire_codec.h"

namespace saedict::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using Arch = engine::Architecture;

struct ArchCase {
  const char* name;
  Arch arch;
  v1::SourceFormat format;
  const char* rel;
};

void PrintTo(const ArchCase& c, std::ostream* os) { *os << c.name; }

class EncodeArchTest : public GrpcServerTest, public ::testing::WithParamInterface<ArchCase> {
 protected:
  void SetUp() override {
    GrpcServerTest::SetUp();
    sae_ = WriteSae(GetParam().rel, GetParam().arch, GetParam().format, 11);
    ASSERT_THAT(Load("d", GetParam().rel), GrpcOk());
    reference_ = ReferenceEncoder(GetParam().rel);
    ASSERT_NE(reference_, nullptr);
  }
  WrittenSae sae_;
  std::shared_ptr<const engine::Encoder> reference_;
};

TEST_P(EncodeArchTest, CodesEqualTheEngine) {
  constexpr int64_t n = 37;
  const std::vector<float> x = RandomActivations(n, kDIn, 21);
  v1::EncodeResponse response;
  ASSERT_THAT(EncodeRows("d", x, n, kDIn, &response), GrpcOk());
  EXPECT_FALSE(response.has_reconstruction());
  EXPECT_FALSE(response.has_row_error());
  const engine::SparseCodes codes = CodesOf(response.codes());
  EXPECT_EQ(codes.num_rows, n);
  EXPECT_EQ(codes.num_features, kDSae);
  EXPECT_GT(codes.nnz(), n) << "the fixture should leave features active";
  auto expected = reference_->Encode(x, n);
  ASSERT_TRUE(expected.ok()) << expected.status();
  ExpectSameCodes(codes, expected->codes, 0.0f, "gRPC vs engine");
  if (GetParam().arch == Arch::kTopK) {
    for (int64_t r = 0; r < n; ++r) EXPECT_LE(Row(codes, r).size(), size_t{kK});
  }
}

TEST_P(EncodeArchTest, ReconstructionAndRowErrorAreConsistent) {
  constexpr int64_t n = 20;
  const std::vector<float> x = RandomActivations(n, kDIn, 22);
  v1::EncodeOptions options;
  options.set_return_reconstruction(true);
  options.set_return_error(true);
  v1::EncodeResponse response;
  ASSERT_THAT(EncodeRows("d", x, n, kDIn, &response, options), GrpcOk());
  ASSERT_TRUE(response.has_reconstruction());
  ASSERT_TRUE(response.has_row_error());
  EXPECT_THAT(response.reconstruction().shape(), ::testing::ElementsAre(n, kDIn));
  EXPECT_THAT(response.row_error().shape(), ::testing::ElementsAre(n));
  const std::vector<float> x_hat = FloatsOf(response.reconstruction());
  const std::vector<float> err = FloatsOf(response.row_error());
  ASSERT_EQ(x_hat.size(), size_t(n * kDIn));
  ASSERT_EQ(err.size(), size_t(n));

  engine::EncodeOptions engine_options;
  engine_options.return_reconstruction = true;
  engine_options.return_row_error = true;
  auto expected = reference_->Encode(x, n, engine_options);
  ASSERT_TRUE(expected.ok()) << expected.status();
  for (int64_t r = 0; r < n; ++r) {
    double sq = 0;
    for (int64_t j = 0; j < kDIn; ++j) {
      const size_t i = r * kDIn + j;
      EXPECT_NEAR(x_hat[i], expected->reconstruction[i], 1e-5f) << r << "," << j;
      sq += double(x[i] - x_hat[i]) * (x[i] - x_hat[i]);
    }
    EXPECT_NEAR(err[r], sq, 1e-4 * std::max(1.0, sq)) << "row " << r;
  }
  // Decode(codes) is the same reconstruction (no normalization here).
  v1::DecodeRequest decode;
  decode.set_dictionary_id("d");
  *decode.mutable_codes() = response.codes();
  v1::DecodeResponse decoded;
  ASSERT_THAT(stub_->Decode(Ctx().get(), decode, &decoded), GrpcOk());
  EXPECT_THAT(decoded.activations().shape(), ::testing::ElementsAre(n, kDIn));
  const std::vector<float> round_trip = FloatsOf(decoded.activations());
  ASSERT_EQ(round_trip.size(), x_hat.size());
  for (size_t i = 0; i < x_hat.size(); ++i) EXPECT_NEAR(round_trip[i], x_hat[i], 1e-5f) << i;
}

TEST_P(EncodeArchTest, HalfPrecisionInputsEqualF32OfTheRoundedValues) {
  constexpr int64_t n = 13;
  const std::vector<float> x = RandomActivations(n, kDIn, 23);
  struct {
    v1::Tensor tensor;
    std::vector<float> rounded;
  } inputs[] = {{F16Tensor(x, {n, kDIn}), RoundF16(x)}, {Bf16Tensor(x, {n, kDIn}), RoundBf16(x)}};
  for (const auto& in : inputs) {
    v1::EncodeRequest request;
    request.set_dictionary_id("d");
    *request.mutable_activations() = in.tensor;
    v1::EncodeResponse half, f32;
    ASSERT_THAT(Encode(request, &half), GrpcOk());
    ASSERT_THAT(EncodeRows("d", in.rounded, n, kDIn, &f32), GrpcOk());
    ExpectSameCodes(CodesOf(half.codes()), CodesOf(f32.codes()), 0.0f,
                    v1::DType_Name(in.tensor.dtype()));
  }
}

TEST_P(EncodeArchTest, TopKOptionKeepsTheLargest) {
  constexpr int64_t n = 10;
  const std::vector<float> x = RandomActivations(n, kDIn, 24);
  v1::EncodeResponse all, capped;
  ASSERT_THAT(EncodeRows("d", x, n, kDIn, &all), GrpcOk());
  v1::EncodeOptions options;
  options.set_top_k(2);
  ASSERT_THAT(EncodeRows("d", x, n, kDIn, &capped, options), GrpcOk());
  const engine::SparseCodes a = CodesOf(all.codes()), c = CodesOf(capped.codes());
  for (int64_t r = 0; r < n; ++r) {
    auto full = Row(a, r), top = Row(c, r);
    EXPECT_LE(top.size(), 2u) << "row " << r;
    if (GetParam().arch == Arch::kTopK) continue;  // topk re-selects with k=2
    std::vector<float> sorted;
    for (auto& [i, v] : full) sorted.push_back(v);
    std::sort(sorted.rbegin(), sorted.rend());
    for (auto& [i, v] : top) {
      EXPECT_GE(v, sorted[std::min<size_t>(1, sorted.size() - 1)]) << "row " << r;
    }
  }
  options.set_top_k(kDSae);  // the largest allowed value
  ASSERT_THAT(EncodeRows("d", x, n, kDIn, &capped, options), GrpcOk());
}

INSTANTIATE_TEST_SUITE_P(
    AllArchitectures, EncodeArchTest,
    ::testing::Values(ArchCase{"Standard", Arch::kStandard, v1::SOURCE_FORMAT_SAELENS, "std"},
                      ArchCase{"TopK", Arch::kTopK, v1::SOURCE_FORMAT_SAELENS, "topk"},
                      ArchCase{"JumpReLU", Arch::kJumpReLU, v1::SOURCE_FORMAT_SAELENS, "jr"},
                      ArchCase{"Gated", Arch::kGated, v1::SOURCE_FORMAT_SAELENS, "gated"},
                      ArchCase{"SparsifyTopK", Arch::kTopK, v1::SOURCE_FORMAT_SPARSIFY, "sp"},
                      ArchCase{"GemmaScopeJumpReLU", Arch::kJumpReLU, v1::SOURCE_FORMAT_GEMMA_SCOPE,
                               "gs.npz"}),
    [](const auto& info) { return std::string(info.param.name); });

// --- error paths -------------------------------------------------------------

class EncodeErrorTest : public GrpcServerTest {
 protected:
  void SetUp() override {
    GrpcServerTest::SetUp();
    WriteSae("topk", Arch::kTopK);
    ASSERT_THAT(Load("d", "topk"), GrpcOk());
  }
  v1::EncodeRequest Good(int64_t n = 3) {
    v1::EncodeRequest r;
    r.set_dictionary_id("d");
    *r.mutable_activations() = F32Tensor(RandomActivations(n, kDIn, 5), {n, kDIn});
    return r;
  }
};

TEST_F(EncodeErrorTest, EveryBadRequestIsRejectedWithItsValue) {
  struct Case {
    const char* name;
    std::function<void(v1::EncodeRequest&)> edit;
    grpc::StatusCode code;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"wrong d_in",
       [](v1::EncodeRequest& r) {
         *r.mutable_activations() = F32Tensor(std::vector<float>(3 * 15, 0.1f), {3, 15});
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"activations.shape", "[3,15]", "d_in 16"}},
      {"byte length",
       [](v1::EncodeRequest& r) { r.mutable_activations()->mutable_data()->resize(100); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"activations.data", "100 bytes", "192"}},
      {"finite but huge",
       [](v1::EncodeRequest& r) {
         const float huge = 3e38f;
         std::memcpy(r.mutable_activations()->mutable_data()->data() + 4 * (2 * 16 + 3), &huge, 4);
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"row 2", "too large"}},
      {"NaN",
       [](v1::EncodeRequest& r) {
         float nan = std::nanf("");
         std::memcpy(r.mutable_activations()->mutable_data()->data() + 4 * (16 + 5), &nan, 4);
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"activations[1,5]", "nan"}},
      {"Inf in F16",
       [](v1::EncodeRequest& r) {
         std::vector<float> x(2 * 16, 0.5f);
         x[20] = INFINITY;
         *r.mutable_activations() = F16Tensor(x, {2, 16});
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"activations[1,4]", "inf"}},
      {"bad dtype",
       [](v1::EncodeRequest& r) { r.mutable_activations()->set_dtype(v1::DTYPE_UNSPECIFIED); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"activations.dtype", "DTYPE_UNSPECIFIED"}},
      {"rank 1",
       [](v1::EncodeRequest& r) {
         *r.mutable_activations() = F32Tensor(std::vector<float>(16, 0.1f), {16});
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"activations.shape", "rank 1"}},
      {"negative rows",
       [](v1::EncodeRequest& r) { r.mutable_activations()->set_shape(0, -3); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"activations.shape", "-3"}},
      {"no activations",
       [](v1::EncodeRequest& r) { r.clear_activations(); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"activations"}},
      {"top_k < 0",
       [](v1::EncodeRequest& r) { r.mutable_options()->set_top_k(-1); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"options.top_k", "-1", "64"}},
      {"top_k > d_sae",
       [](v1::EncodeRequest& r) { r.mutable_options()->set_top_k(65); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"options.top_k", "65", "64"}},
      {"bad compute mode",
       [](v1::EncodeRequest& r) {
         r.mutable_options()->set_compute_mode(static_cast<v1::ComputeMode>(9));
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"options.compute_mode", "9"}},
      {"empty id",
       [](v1::EncodeRequest& r) { r.clear_dictionary_id(); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"dictionary_id"}},
      {"unknown id",
       [](v1::EncodeRequest& r) { r.set_dictionary_id("missing-7"); },
       grpc::StatusCode::NOT_FOUND,
       {"'missing-7'"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::EncodeRequest request = Good();
    c.edit(request);
    v1::EncodeResponse response;
    grpc::Status s = Encode(request, &response);
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    for (const std::string& part : c.parts) EXPECT_THAT(s.error_message(), HasSubstr(part));
  }
}

// Every answer names the weights that produced it and the compute mode; a
// reload of the same weights keeps the hash, changed weights change it.
TEST_F(EncodeErrorTest, AnswersNameTheWeightsHashAndComputeMode) {
  v1::EncodeResponse response;
  ASSERT_THAT(Encode(Good(), &response), GrpcOk());
  v1::GetDictionaryRequest get;
  get.set_id("d");
  v1::GetDictionaryResponse info;
  ASSERT_THAT(stub_->GetDictionary(Ctx().get(), get, &info), GrpcOk());
  const std::string hash = info.dictionary().weights_sha256();
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_EQ(response.weights_sha256(), hash);
  EXPECT_EQ(response.compute_mode(), FastestExactMode());

  v1::InterveneRequest iv;
  iv.set_dictionary_id("d");
  *iv.mutable_activations() = Good().activations();
  v1::InterveneResponse iv_out;
  ASSERT_THAT(stub_->Intervene(Ctx().get(), iv, &iv_out), GrpcOk());
  EXPECT_EQ(iv_out.weights_sha256(), hash);
  EXPECT_EQ(iv_out.compute_mode(), FastestExactMode());

  ASSERT_THAT(Load("d", "topk", nullptr, /*replace=*/true), GrpcOk());
  ASSERT_THAT(stub_->GetDictionary(Ctx().get(), get, &info), GrpcOk());
  EXPECT_EQ(info.dictionary().weights_sha256(), hash) << "same files, same hash";
  WriteSae("other", Arch::kTopK, v1::SOURCE_FORMAT_SAELENS, 99);
  ASSERT_THAT(Load("d", "other", nullptr, /*replace=*/true), GrpcOk());
  ASSERT_THAT(Encode(Good(), &response), GrpcOk());
  EXPECT_NE(response.weights_sha256(), hash);
  ASSERT_THAT(stub_->GetDictionary(Ctx().get(), get, &info), GrpcOk());
  EXPECT_EQ(response.weights_sha256(), info.dictionary().weights_sha256());
}

TEST_F(EncodeErrorTest, ZeroRowsIsAnEmptyResult) {
  v1::EncodeRequest request = Good(0);
  request.mutable_options()->set_return_reconstruction(true);
  request.mutable_options()->set_return_error(true);
  v1::EncodeResponse response;
  ASSERT_THAT(Encode(request, &response), GrpcOk());
  EXPECT_EQ(response.codes().num_rows(), 0);
  EXPECT_EQ(CodesOf(response.codes()).nnz(), 0);
  EXPECT_THAT(response.reconstruction().shape(), ::testing::ElementsAre(0, kDIn));
}

TEST_F(EncodeErrorTest, Bf16ComputeModeIsCloseOrUnimplemented) {
  v1::EncodeRequest request = Good(8);
  v1::EncodeResponse f32, bf16;
  ASSERT_THAT(Encode(request, &f32), GrpcOk());
  request.mutable_options()->set_compute_mode(v1::COMPUTE_MODE_BF16);
  grpc::Status s = Encode(request, &bf16);
  if (!engine::Encoder::Bf16Available()) {
    EXPECT_THAT(s, GrpcStatusIs(grpc::StatusCode::UNIMPLEMENTED, HasSubstr("BF16")));
    return;
  }
  ASSERT_THAT(s, GrpcOk());
  EXPECT_EQ(bf16.codes().num_rows(), 8);
}

TEST_F(EncodeErrorTest, DecodeOfHandWrittenCodes) {
  const engine::Dictionary d = RandomDictionary(Arch::kTopK, kDIn, kDSae, kK, 1);
  engine::SparseCodes codes;
  codes.num_rows = 2;
  codes.num_features = kDSae;
  codes.row_offsets = {0, 2, 2};
  codes.indices = {3, 40};
  codes.values = {1.5f, -0.25f};
  v1::DecodeRequest request;
  request.set_dictionary_id("d");
  *request.mutable_codes() = wire::EncodeCodes(codes);
  v1::DecodeResponse response;
  ASSERT_THAT(stub_->Decode(Ctx().get(), request, &response), GrpcOk());
  const std::vector<float> out = FloatsOf(response.activations());
  ASSERT_EQ(out.size(), size_t(2 * kDIn));
  for (int64_t j = 0; j < kDIn; ++j) {
    const float row0 = d.b_dec[j] + 1.5f * d.w_dec[3 * kDIn + j] - 0.25f * d.w_dec[40 * kDIn + j];
    EXPECT_NEAR(out[j], row0, 1e-5f) << j;
    EXPECT_NEAR(out[kDIn + j], d.b_dec[j], 1e-6f) << "empty row decodes to b_dec";
  }
}

TEST_F(EncodeErrorTest, DecodeErrors) {
  engine::SparseCodes good;
  good.num_rows = 1;
  good.num_features = kDSae;
  good.row_offsets = {0, 1};
  good.indices = {5};
  good.values = {1.0f};
  struct Case {
    const char* name;
    std::function<void(v1::DecodeRequest&)> edit;
    grpc::StatusCode code;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"unknown id",
       [](v1::DecodeRequest& r) { r.set_dictionary_id("nope"); },
       grpc::StatusCode::NOT_FOUND,
       {"'nope'"}},
      {"empty id",
       [](v1::DecodeRequest& r) { r.clear_dictionary_id(); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"dictionary_id"}},
      {"num_features",
       [](v1::DecodeRequest& r) { r.mutable_codes()->set_num_features(65); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"codes.num_features", "65", "64"}},
      {"offsets bytes",
       [](v1::DecodeRequest& r) { r.mutable_codes()->mutable_row_offsets()->resize(12); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"codes.row_offsets", "12 bytes"}},
      {"values length",
       [](v1::DecodeRequest& r) { r.mutable_codes()->mutable_values()->append("\0\0\0\0", 4); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"codes.values", "8 bytes"}},
      {"index >= d_sae",
       [](v1::DecodeRequest& r) {
         uint32_t bad = 64;
         r.mutable_codes()->set_indices(std::string(reinterpret_cast<char*>(&bad), 4));
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"feature 64"}},
      {"non-monotone",
       [](v1::DecodeRequest& r) {
         std::vector<uint64_t> offsets = {0, 1, 0, 1};
         r.mutable_codes()->set_num_rows(3);
         r.mutable_codes()->set_row_offsets(
             std::string(reinterpret_cast<char*>(offsets.data()), 32));
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"row 1", "monotone"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::DecodeRequest request;
    request.set_dictionary_id("d");
    *request.mutable_codes() = wire::EncodeCodes(good);
    c.edit(request);
    v1::DecodeResponse response;
    grpc::Status s = stub_->Decode(Ctx().get(), request, &response);
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    for (const std::string& part : c.parts) EXPECT_THAT(s.error_message(), HasSubstr(part));
  }
}

}  // namespace
}  // namespace saedict::testing
