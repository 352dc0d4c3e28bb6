// End-to-end tests of `saedict encode` and `saedict decode` through RunCli
// against the real service core on a real gRPC server, with identity test
// SAEs (core_test_server.h: topk k = 2 of relu(x), x_hat = f); outputs are
// read back with formats/codecs/npy.h and formats/codecs/npz.h.
#include <algorithm>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "client/cli.h"
#include "engine/encoder.h"
#include "formats/codecs/npy.h"
#include "formats/codecs/npz.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli_test_util.h"
#include "tests/client/core_test_server.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::client {
namespace {

using formats::NpyArray;
using formats::NpyDType;
using ::saedict::testing::CliResult;
using ::saedict::testing::CoreTestServer;
using ::saedict::testing::IsOk;
using ::saedict::testing::RunCliCaptured;
using ::saedict::testing::ScratchDir;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// 5 rows of d_in 4; the identity topk SAE keeps the 2 largest when positive
// (2 per row, none in row 4).
const std::vector<float> kX = {1,  -1, 3,  0, 0, 2, -5, 4,  0.5, 0.25,
                               -1, -2, -1, 6, 0, 7, -1, -1, -1,  -1};

template <typename T>
std::vector<T> Values(const NpyArray& a) {
  std::vector<T> v(a.data.size() / sizeof(T));
  std::memcpy(v.data(), a.data.data(), a.data.size());
  return v;
}

class CliEncodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SAEDICT_ASSERT_OK_AND_ASSIGN(server_, CoreTestServer::Start());
    ASSERT_THAT(server_->AddDictionary("d4", 4), IsOk());
    input_ = Path("x.npy");
    ASSERT_TRUE(formats::WriteNpyFile(input_, formats::NpyFromFloat32({5, 4}, kX)).ok());
  }

  CliResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), "--server=" + server_->target());
    return RunCliCaptured(args);
  }
  std::string Path(const std::string& name) const { return (dir_.path() / name).string(); }
  std::map<std::string, NpyArray> ReadNpz(const std::string& path) {
    auto arrays = formats::ReadNpzFile(path);
    EXPECT_TRUE(arrays.ok()) << arrays.status();
    return arrays.ok() ? *arrays : std::map<std::string, NpyArray>{};
  }

  const testing::RequestLog& Sent() const { return server_->requests(); }

  std::unique_ptr<CoreTestServer> server_;
  ScratchDir dir_;
  std::string input_;
};

TEST_F(CliEncodeTest, WritesCsrNpz) {
  const std::string out = Path("codes.npz");
  CliResult r = Run({"encode", "d4", input_, out, "--reconstruction", "--error"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "encoded 5 rows with d4: d_sae 4, nnz 8, mean L0 1.60, mean row error "
            "7.2 -> " +
                out + "\n");
  EXPECT_EQ(Sent().Count("Encode"), 1);
  EXPECT_EQ(Sent().Count("EncodeStream"), 0);
  EXPECT_TRUE(Sent().Last<v1::EncodeRequest>("Encode").options().return_reconstruction());

  std::map<std::string, NpyArray> z = ReadNpz(out);
  ASSERT_EQ(z.size(), 6u);
  EXPECT_EQ(z["row_offsets"].dtype, NpyDType::kU64);
  EXPECT_THAT(z["row_offsets"].shape, ElementsAre(6));
  EXPECT_THAT(Values<uint64_t>(z["row_offsets"]), ElementsAre(0, 2, 4, 6, 8, 8));
  EXPECT_EQ(z["indices"].dtype, NpyDType::kU32);
  EXPECT_THAT(Values<uint32_t>(z["indices"]), ElementsAre(0, 2, 1, 3, 0, 1, 1, 3));
  EXPECT_EQ(z["values"].dtype, NpyDType::kF32);
  EXPECT_THAT(Values<float>(z["values"]), ElementsAre(1, 3, 2, 4, 0.5, 0.25, 6, 7));
  EXPECT_EQ(z["shape"].dtype, NpyDType::kI64);
  EXPECT_THAT(Values<int64_t>(z["shape"]), ElementsAre(5, 4));
  EXPECT_THAT(z["reconstruction"].shape, ElementsAre(5, 4));
  EXPECT_THAT(Values<float>(z["row_error"]), ElementsAre(1, 25, 5, 1, 4));
}

TEST_F(CliEncodeTest, StreamsInChunksWithSameResult) {
  const std::string unary = Path("unary.npz"), streamed = Path("streamed.npz");
  ASSERT_EQ(Run({"encode", "d4", input_, unary, "--reconstruction"}).code, kExitOk);
  CliResult r =
      Run({"encode", "d4", input_, streamed, "--batch_rows=2", "--reconstruction", "--top_k=1"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Sent().Count("EncodeStream"), 3);  // rows 2 + 2 + 1
  EXPECT_EQ(Sent().Last<v1::EncodeRequest>("EncodeStream").options().top_k(), 1);
  std::map<std::string, NpyArray> z = ReadNpz(streamed);
  EXPECT_THAT(Values<uint64_t>(z["row_offsets"]), ElementsAre(0, 1, 2, 3, 4, 4));
  EXPECT_THAT(Values<uint32_t>(z["indices"]), ElementsAre(2, 3, 0, 3));
  EXPECT_EQ(z["reconstruction"].data.size(), 5u * 4 * sizeof(float));

  // --bf16 asks for BF16 compute; identity weights and these inputs are exact
  // in bf16, so the codes are the same. A CPU without BF16 refuses it.
  const std::string bf16 = Path("bf16.npz");
  r = Run({"encode", "d4", input_, bf16, "--batch_rows=2", "--top_k=1", "--bf16"});
  EXPECT_EQ(Sent().Last<v1::EncodeRequest>("EncodeStream").options().compute_mode(),
            v1::COMPUTE_MODE_BF16);
  if (engine::Encoder::Bf16Available()) {
    ASSERT_EQ(r.code, kExitOk) << r.err;
    EXPECT_EQ(ReadNpz(bf16)["indices"].data, z["indices"].data);
    EXPECT_EQ(ReadNpz(bf16)["values"].data, z["values"].data);
  } else {
    EXPECT_EQ(r.code, kExitFailure);
    EXPECT_THAT(r.err, StartsWith("error: UNIMPLEMENTED: "));
    EXPECT_THAT(r.err, HasSubstr("compute_mode BF16 is not available"));
  }

  // Without --compute_mode the request leaves it unset (the dictionary's
  // default); --compute_mode names one; fast_exact gives the f32 codes.
  ASSERT_EQ(Run({"encode", "d4", input_, Path("d.npz")}).code, kExitOk);
  EXPECT_FALSE(Sent().Last<v1::EncodeRequest>("Encode").options().has_compute_mode());
  for (const char* mode : {"f32", "fast_exact"}) {
    const std::string out = Path(std::string(mode) + ".npz");
    r = Run({"encode", "d4", input_, out, std::string("--compute_mode=") + mode});
    ASSERT_EQ(r.code, kExitOk) << r.err;
    EXPECT_EQ(Sent().Last<v1::EncodeRequest>("Encode").options().compute_mode(),
              std::string(mode) == "f32" ? v1::COMPUTE_MODE_F32 : v1::COMPUTE_MODE_FAST_EXACT);
    EXPECT_EQ(ReadNpz(out)["values"].data, ReadNpz(unary)["values"].data) << mode;
  }

  ASSERT_EQ(Run({"encode", "d4", input_, streamed, "--batch_rows=2", "--reconstruction"}).code,
            kExitOk);
  std::map<std::string, NpyArray> a = ReadNpz(unary), b = ReadNpz(streamed);
  for (const char* name : {"row_offsets", "indices", "values", "shape", "reconstruction"}) {
    EXPECT_EQ(a[name].data, b[name].data) << name;
  }
}

TEST_F(CliEncodeTest, AcceptsF16AndF64Inputs) {
  std::vector<uint16_t> halves = {0x3c00, 0, 0, 0, 0, 0xc000, 0x4000, 0};  // [[1,0,0,0],[0,-2,2,0]]
  NpyArray f16{NpyDType::kF16, {2, 4}, std::string(reinterpret_cast<char*>(halves.data()), 16)};
  ASSERT_TRUE(formats::WriteNpyFile(Path("h.npy"), f16).ok());
  CliResult r = Run({"encode", "d4", Path("h.npy"), Path("h.npz"), "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "{\"dictionary_id\":\"d4\",\"rows\":2,\"d_in\":4,\"d_sae\":4,\"nnz\":2,"
            "\"mean_l0\":1,\"output\":\"" +
                Path("h.npz") + "\"}\n");
  EXPECT_THAT(Values<float>(ReadNpz(Path("h.npz"))["values"]), ElementsAre(1, 2));

  std::vector<double> doubles = {0, 0, 0, 1.5};
  NpyArray f64{NpyDType::kF64, {1, 4}, std::string(reinterpret_cast<char*>(doubles.data()), 32)};
  ASSERT_TRUE(formats::WriteNpyFile(Path("d.npy"), f64).ok());
  ASSERT_EQ(Run({"encode", "d4", Path("d.npy"), Path("d.npz")}).code, kExitOk);
  EXPECT_THAT(Values<float>(ReadNpz(Path("d.npz"))["values"]), ElementsAre(1.5));
}

TEST_F(CliEncodeTest, InputErrors) {
  CliResult r = Run({"encode", "d4", Path("nope.npy"), Path("o.npz")});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith("error: NOT_FOUND: "));

  std::vector<int32_t> ints = {1, 2, 3, 4};
  ASSERT_TRUE(formats::WriteNpyFile(Path("i.npy"), formats::NpyFromInt32({1, 4}, ints)).ok());
  r = Run({"encode", "d4", Path("i.npy"), Path("o.npz")});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith("error: INVALID_ARGUMENT: " + Path("i.npy") +
                                ": activations have dtype <i4"));

  ASSERT_TRUE(
      formats::WriteNpyFile(
          Path("3d.npy"), formats::NpyFromFloat32({1, 1, 4}, std::span<const float>(kX.data(), 4)))
          .ok());
  r = Run({"encode", "d4", Path("3d.npy"), Path("o.npz")});
  EXPECT_THAT(r.err, HasSubstr("must have shape [n, d_in], got [1, 1, 4]"));

  ASSERT_TRUE(
      formats::WriteNpyFile(Path("w.npy"),
                            formats::NpyFromFloat32({1, 3}, std::span<const float>(kX.data(), 3)))
          .ok());
  r = Run({"encode", "d4", Path("w.npy"), Path("o.npz")});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_EQ(r.err,
            "error: INVALID_ARGUMENT: activations.shape: [1,3] does not match d_in 4; expected "
            "[n, 4]\n");

  r = Run({"encode", "d4", input_, Path("o.npz"), "--compute_mode=fast"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err,
            "error: INVALID_ARGUMENT: --compute_mode must be f32, fast_exact or bf16, got 'fast'\n");
  r = Run({"encode", "d4", input_, Path("o.npz"), "--compute_mode=f32", "--bf16"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--bf16 contradicts --compute_mode=f32"));
  r = Run({"encode", "d4", input_, Path("o.npz"), "--top_k=-1"});
  EXPECT_THAT(r.err, StartsWith("error: INVALID_ARGUMENT: --top_k must be >= 0"));
  r = Run({"encode", "nope", input_, Path("o.npz")});
  EXPECT_EQ(r.err, "error: NOT_FOUND: dictionary 'nope' not found\n");
  r = Run({"encode", "nope", input_, Path("o.npz"), "--batch_rows=1"});
  EXPECT_EQ(r.err, "error: NOT_FOUND: stream message 0: dictionary 'nope' not found\n");
  EXPECT_FALSE(std::filesystem::exists(Path("o.npz")));
}

TEST_F(CliEncodeTest, DecodeRoundTrip) {
  ASSERT_EQ(Run({"encode", "d4", input_, Path("c.npz")}).code, kExitOk);
  CliResult r = Run({"decode", "d4", Path("c.npz"), Path("x_hat.npy"), "--batch_rows=2"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "decoded 5 rows with d4: [5, 4] float32 -> " + Path("x_hat.npy") + "\n");
  EXPECT_EQ(Sent().Count("Decode"), 3);
  auto x_hat = formats::ReadNpyFile(Path("x_hat.npy"));
  ASSERT_TRUE(x_hat.ok()) << x_hat.status();
  EXPECT_EQ(x_hat->dtype, NpyDType::kF32);
  EXPECT_THAT(x_hat->shape, ElementsAre(5, 4));
  std::vector<float> relu;
  for (float v : kX) relu.push_back(v > 0 ? v : 0);
  EXPECT_THAT(Values<float>(*x_hat), ElementsAreArray(relu));

  r = Run({"decode", "d4", Path("c.npz"), Path("j.npy"), "--json"});
  EXPECT_EQ(r.out, "{\"dictionary_id\":\"d4\",\"rows\":5,\"d_in\":4,\"output\":\"" + Path("j.npy") +
                       "\"}\n");
}

TEST_F(CliEncodeTest, ATranscoderDecodesToItsOutputWidthAndInfoSaysSo) {
  // relu(x) through W_enc = I, then W_dec [4, 3] maps feature i to column i % 3.
  engine::Dictionary tc;
  tc.config.d_in = 4;
  tc.config.d_sae = 4;
  tc.config.d_out = 3;
  tc.config.hook_name = "blocks.1.ln2.hook_normalized";
  tc.config.hook_name_out = "blocks.1.hook_mlp_out";
  tc.config.apply_b_dec_to_input = false;
  tc.w_enc = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
  tc.b_enc.assign(4, 0.0f);
  tc.w_dec = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0};
  tc.b_dec = {0, 0, 0.5f};
  tc.w_skip.assign(12, 0.25f);
  ASSERT_THAT(server_->AddDictionary("tc", tc), IsOk());

  CliResult r = Run({"info", "tc"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("skip (W_skip)"));
  EXPECT_THAT(r.out, HasSubstr("blocks.1.hook_mlp_out"));
  ASSERT_EQ(Run({"encode", "tc", input_, Path("c.npz")}).code, kExitOk);
  r = Run({"decode", "tc", Path("c.npz"), Path("y.npy"), "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "{\"dictionary_id\":\"tc\",\"rows\":5,\"d_out\":3,\"output\":\"" +
                       Path("y.npy") + "\"}\n");
  auto y = formats::ReadNpyFile(Path("y.npy"));
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_THAT(y->shape, ElementsAre(5, 3));
  // Decode has no skip term: y = relu(x) W_dec + b_dec.
  std::vector<float> want;
  for (int r = 0; r < 5; ++r) {
    float row[3] = {0, 0, 0.5f};
    for (int i = 0; i < 4; ++i) row[i % 3] += std::max(kX[r * 4 + i], 0.0f);
    want.insert(want.end(), row, row + 3);
  }
  EXPECT_THAT(Values<float>(*y), ElementsAreArray(want));
}

TEST_F(CliEncodeTest, DecodeAcceptsScipyStyleDtypes) {
  // int32 indptr / indices and float64 data, as scipy and numpy write them.
  std::vector<int32_t> offsets = {0, 1, 3}, indices = {3, 0, 2};
  std::vector<double> values = {2.0, -1.0, 0.5};
  std::map<std::string, NpyArray> z;
  z["row_offsets"] = formats::NpyFromInt32({3}, offsets);
  z["indices"] = formats::NpyFromInt32({3}, indices);
  z["values"] =
      NpyArray{NpyDType::kF64, {3}, std::string(reinterpret_cast<char*>(values.data()), 24)};
  const int64_t shape[2] = {2, 4};
  z["shape"] = formats::NpyFromInt64({2}, shape);
  ASSERT_TRUE(formats::WriteNpzFile(Path("s.npz"), z).ok());
  CliResult r = Run({"decode", "d4", Path("s.npz"), Path("s.npy")});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(Values<float>(*formats::ReadNpyFile(Path("s.npy"))),
              ElementsAre(0, 0, 0, 2, -1, 0, 0.5, 0));
}

TEST_F(CliEncodeTest, DecodeErrors) {
  std::map<std::string, NpyArray> z;
  std::vector<int32_t> offsets = {0, 2}, indices = {2, 1};
  z["row_offsets"] = formats::NpyFromInt32({2}, offsets);
  z["indices"] = formats::NpyFromInt32({2}, indices);
  z["values"] = formats::NpyFromFloat32({2}, std::vector<float>{1, 1});
  const int64_t shape[2] = {1, 4};
  z["shape"] = formats::NpyFromInt64({2}, shape);
  ASSERT_TRUE(formats::WriteNpzFile(Path("bad.npz"), z).ok());
  CliResult r = Run({"decode", "d4", Path("bad.npz"), Path("o.npy")});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_EQ(r.err, "error: INVALID_ARGUMENT: " + Path("bad.npz") +
                       ": codes: row 0 feature 1 does not follow feature 2; indices must strictly "
                       "ascend within a row\n");

  z.erase("shape");
  ASSERT_TRUE(formats::WriteNpzFile(Path("noshape.npz"), z).ok());
  r = Run({"decode", "d4", Path("noshape.npz"), Path("o.npy")});
  EXPECT_THAT(r.err, HasSubstr(": no array 'shape'"));

  ASSERT_EQ(Run({"load", "d8", "models/d8"}).code, kExitOk);
  ASSERT_EQ(Run({"encode", "d4", input_, Path("c.npz")}).code, kExitOk);
  r = Run({"decode", "d8", Path("c.npz"), Path("o.npy")});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("codes have 4 features but dictionary d8 has d_sae 8"));
  EXPECT_FALSE(std::filesystem::exists(Path("o.npy")));
}

}  // namespace
}  // namespace saedict::client
