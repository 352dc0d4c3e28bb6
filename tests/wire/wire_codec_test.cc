// Tests for server/wire_codec: wire Tensor / SparseCodes <-> engine types and
// the validation promised by the API (INVALID_ARGUMENT naming field and value).
#include "wire/wire_codec.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/grpc_test_util.h"
#include "tests/test_util/status_matchers.h"
#include "util/half.h"

namespace saedict::wire {
namespace {

using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

using ::saedict::testing::Bytes;
using ::saedict::testing::MakeTensor;

// Values exactly representable in F16 and BF16, so all three dtypes decode
// to the same floats.
const std::vector<float> kValues = {0.0f, 1.0f, -2.5f, 0.125f, 3.0f, -0.75f, 1024.0f, -0.5f};

std::string F16Bytes(const std::vector<float>& v) {
  std::vector<uint16_t> h;
  for (float f : v) h.push_back(FloatToF16(f));
  return Bytes(h);
}
std::string Bf16Bytes(const std::vector<float>& v) {
  std::vector<uint16_t> h;
  for (float f : v) h.push_back(FloatToBf16(f));
  return Bytes(h);
}

struct DTypeCase {
  const char* name;
  v1::DType dtype;
  std::string (*bytes)(const std::vector<float>&);
};

void PrintTo(const DTypeCase& c, std::ostream* os) { *os << c.name; }

class DecodeMatrixDTypeTest : public ::testing::TestWithParam<DTypeCase> {};

TEST_P(DecodeMatrixDTypeTest, DecodesToF32Rows) {
  const DTypeCase& c = GetParam();
  SAEDICT_ASSERT_OK_AND_ASSIGN(DenseRows rows,
                               DecodeMatrix(MakeTensor(c.dtype, {2, 4}, c.bytes(kValues)), 4, "x"));
  EXPECT_EQ(rows.rows, 2);
  EXPECT_EQ(rows.cols, 4);
  EXPECT_THAT(rows.values, ElementsAreArray(kValues));
}

TEST_P(DecodeMatrixDTypeTest, ZeroRowsIsValid) {
  const DTypeCase& c = GetParam();
  SAEDICT_ASSERT_OK_AND_ASSIGN(DenseRows rows,
                               DecodeMatrix(MakeTensor(c.dtype, {0, 4}, ""), 4, "x"));
  EXPECT_EQ(rows.rows, 0);
  EXPECT_TRUE(rows.values.empty());
}

std::string F32Bytes(const std::vector<float>& v) { return Bytes(v); }

INSTANTIATE_TEST_SUITE_P(AllDTypes, DecodeMatrixDTypeTest,
                         ::testing::Values(DTypeCase{"F32", v1::DTYPE_F32, &F32Bytes},
                                           DTypeCase{"F16", v1::DTYPE_F16, &F16Bytes},
                                           DTypeCase{"BF16", v1::DTYPE_BF16, &Bf16Bytes}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(DecodeMatrixTest, F16SubnormalAndBf16RoundTrip) {
  // Smallest positive F16 subnormal is 2^-24.
  std::vector<uint16_t> h = {0x0001, 0x8000, 0x3c00, 0x7bff};
  SAEDICT_ASSERT_OK_AND_ASSIGN(DenseRows rows,
                               DecodeMatrix(MakeTensor(v1::DTYPE_F16, {1, 4}, Bytes(h)), 4, "x"));
  EXPECT_EQ(rows.values[0], std::ldexp(1.0f, -24));
  EXPECT_EQ(rows.values[1], 0.0f);
  EXPECT_TRUE(std::signbit(rows.values[1]));
  EXPECT_EQ(rows.values[2], 1.0f);
  EXPECT_EQ(rows.values[3], 65504.0f);
  // BF16 is the top half of an F32: 0x3fc0 == 1.5f.
  std::vector<uint16_t> b = {0x3fc0};
  SAEDICT_ASSERT_OK_AND_ASSIGN(DenseRows brow,
                               DecodeMatrix(MakeTensor(v1::DTYPE_BF16, {1, 1}, Bytes(b)), 1, "x"));
  EXPECT_EQ(brow.values[0], 1.5f);
}

struct MatrixErrorCase {
  const char* name;
  v1::Tensor tensor;
  std::vector<const char*> substrings;  // all must appear in the message
};

std::vector<float> WithAt(size_t i, float v) {
  std::vector<float> x(8, 0.5f);
  x[i] = v;
  return x;
}

std::vector<MatrixErrorCase> MatrixErrorCases() {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::string ok8 = Bytes(std::vector<float>(8, 0.5f));
  return {
      {"Unspecified",
       MakeTensor(v1::DTYPE_UNSPECIFIED, {2, 4}, ok8),
       {"activations.dtype", "DTYPE_UNSPECIFIED"}},
      // An enum value unknown to this build must still be named by number.
      {"UnknownEnumValue",
       MakeTensor(static_cast<v1::DType>(7), {2, 4}, ok8),
       {"activations.dtype", "7"}},
      {"Rank1", MakeTensor(v1::DTYPE_F32, {8}, ok8), {"activations.shape", "[8]", "rank 1"}},
      {"Rank3",
       MakeTensor(v1::DTYPE_F32, {2, 2, 2}, ok8),
       {"activations.shape", "[2,2,2]", "rank 3"}},
      {"Rank0", MakeTensor(v1::DTYPE_F32, {}, ok8), {"activations.shape", "rank 0"}},
      {"WrongDIn",
       MakeTensor(v1::DTYPE_F32, {4, 2}, ok8),
       {"activations.shape", "[4,2]", "d_in 4"}},
      {"NegativeRows", MakeTensor(v1::DTYPE_F32, {-2, 4}, ok8), {"activations.shape", "-2"}},
      {"TooFewBytes",
       MakeTensor(v1::DTYPE_F32, {2, 4}, ok8.substr(0, 30)),
       {"activations.data", "30 bytes", "32"}},
      {"TooManyBytes",
       MakeTensor(v1::DTYPE_F32, {1, 4}, ok8),
       {"activations.data", "32 bytes", "16"}},
      {"F16ByteCount",
       MakeTensor(v1::DTYPE_F16, {2, 4}, ok8),
       {"activations.data", "32 bytes", "DTYPE_F16", "16"}},
      // rows * cols * 4 wraps to 0 in 64 bits: must not be accepted as empty.
      {"OverflowingShape", MakeTensor(v1::DTYPE_F32, {int64_t{1} << 62, 4}, ""), {"activations"}},
      {"NaN",
       MakeTensor(v1::DTYPE_F32, {2, 4}, Bytes(WithAt(6, nan))),
       {"activations[1,2]", "nan"}},
      {"PosInf",
       MakeTensor(v1::DTYPE_F32, {2, 4}, Bytes(WithAt(1, inf))),
       {"activations[0,1]", "inf"}},
      {"NegInf",
       MakeTensor(v1::DTYPE_F32, {2, 4}, Bytes(WithAt(7, -inf))),
       {"activations[1,3]", "-inf"}},
      {"F16Inf",
       MakeTensor(v1::DTYPE_F16, {2, 4}, F16Bytes(WithAt(4, inf))),
       {"activations[1,0]", "inf"}},
      {"F16NaN",
       MakeTensor(v1::DTYPE_F16, {2, 4}, F16Bytes(WithAt(3, nan))),
       {"activations[0,3]", "nan"}},
      {"BF16NaN",
       MakeTensor(v1::DTYPE_BF16, {2, 4}, Bf16Bytes(WithAt(5, nan))),
       {"activations[1,1]", "nan"}},
  };
}

void PrintTo(const MatrixErrorCase& c, std::ostream* os) { *os << c.name; }

class DecodeMatrixErrorTest : public ::testing::TestWithParam<MatrixErrorCase> {};

TEST_P(DecodeMatrixErrorTest, InvalidArgumentNamingFieldAndValue) {
  const MatrixErrorCase& c = GetParam();
  absl::StatusOr<DenseRows> result = DecodeMatrix(c.tensor, 4, "activations");
  ASSERT_FALSE(result.ok()) << "accepted a tensor of " << result->rows << " rows";
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  for (const char* s : c.substrings) {
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(s));
  }
}

INSTANTIATE_TEST_SUITE_P(AllErrors, DecodeMatrixErrorTest, ::testing::ValuesIn(MatrixErrorCases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(EncodeTensorTest, F32WithShape) {
  v1::Tensor t = EncodeTensor({1.0f, 2.0f, 3.0f}, {3});
  EXPECT_EQ(t.dtype(), v1::DTYPE_F32);
  EXPECT_THAT(t.shape(), ElementsAreArray({3}));
  EXPECT_EQ(t.data(), Bytes(std::vector<float>{1.0f, 2.0f, 3.0f}));
}

engine::SparseCodes SampleCodes() {
  engine::SparseCodes c;
  c.num_rows = 3;
  c.num_features = 8;
  c.row_offsets = {0, 2, 2, 5};
  c.indices = {1, 7, 0, 3, 6};
  c.values = {0.5f, 2.0f, 1.0f, -1.5f, 3.25f};
  return c;
}

TEST(CodesTest, EncodeDecodeRoundTrip) {
  const engine::SparseCodes c = SampleCodes();
  v1::SparseCodes wire = EncodeCodes(c);
  EXPECT_EQ(wire.num_rows(), 3);
  EXPECT_EQ(wire.num_features(), 8);
  EXPECT_EQ(wire.row_offsets().size(), 4 * sizeof(uint64_t));
  EXPECT_EQ(wire.indices().size(), 5 * sizeof(uint32_t));
  EXPECT_EQ(wire.values().size(), 5 * sizeof(float));
  SAEDICT_ASSERT_OK_AND_ASSIGN(engine::SparseCodes back, DecodeCodes(wire, 8));
  EXPECT_EQ(back.num_rows, c.num_rows);
  EXPECT_EQ(back.num_features, c.num_features);
  EXPECT_EQ(back.row_offsets, c.row_offsets);
  EXPECT_EQ(back.indices, c.indices);
  EXPECT_EQ(back.values, c.values);
}

TEST(CodesTest, EmptyBatchRoundTrip) {
  engine::SparseCodes c;
  c.num_features = 8;
  c.row_offsets = {0};
  SAEDICT_ASSERT_OK_AND_ASSIGN(engine::SparseCodes back, DecodeCodes(EncodeCodes(c), 8));
  EXPECT_EQ(back.num_rows, 0);
  EXPECT_EQ(back.nnz(), 0);
}

struct CodesErrorCase {
  const char* name;
  v1::SparseCodes codes;
  std::vector<const char*> substrings;
};

std::vector<CodesErrorCase> CodesErrorCases() {
  const v1::SparseCodes good = EncodeCodes(SampleCodes());
  auto edit = [&](auto fn) {
    v1::SparseCodes c = good;
    fn(c);
    return c;
  };
  return {
      {"NumFeaturesMismatch",
       edit([](v1::SparseCodes& c) { c.set_num_features(9); }),
       {"codes.num_features", "9", "d_sae 8"}},
      {"NegativeRows",
       edit([](v1::SparseCodes& c) { c.set_num_rows(-1); }),
       {"codes.num_rows", "-1"}},
      {"OffsetsTooShort",
       edit([](v1::SparseCodes& c) {
         c.set_row_offsets(Bytes(std::vector<uint64_t>{0, 2, 5}));
       }),
       {"codes.row_offsets", "24 bytes", "32"}},
      {"OffsetsOddBytes",
       edit([](v1::SparseCodes& c) { c.mutable_row_offsets()->push_back(0); }),
       {"codes.row_offsets", "33 bytes"}},
      {"IndicesNotWholeElements",
       edit([](v1::SparseCodes& c) { c.mutable_indices()->push_back(0); }),
       {"codes.indices", "21 bytes"}},
      {"ValuesShorterThanIndices",
       edit([](v1::SparseCodes& c) { c.set_values(c.values().substr(0, 16)); }),
       {"codes.values", "16 bytes", "20"}},
      {"IndicesShorterThanValues",
       edit([](v1::SparseCodes& c) { c.set_indices(c.indices().substr(0, 16)); }),
       {"values"}},
      {"NonMonotoneOffsets",
       edit([](v1::SparseCodes& c) {
         c.set_row_offsets(Bytes(std::vector<uint64_t>{0, 2, 1, 5}));
       }),
       {"row 1", "monotone"}},
      {"FirstOffsetNotZero",
       edit([](v1::SparseCodes& c) {
         c.set_row_offsets(Bytes(std::vector<uint64_t>{1, 2, 2, 5}));
       }),
       {"row_offsets[0]", "1"}},
      {"LastOffsetNotNnz",
       edit([](v1::SparseCodes& c) {
         c.set_row_offsets(Bytes(std::vector<uint64_t>{0, 2, 2, 4}));
       }),
       {"row_offsets", "4"}},
      {"IndexEqualsDSae",
       edit([](v1::SparseCodes& c) {
         c.set_indices(Bytes(std::vector<uint32_t>{1, 8, 0, 3, 6}));
       }),
       {"feature 8", "8"}},
      {"IndexNotAscending",
       edit([](v1::SparseCodes& c) {
         c.set_indices(Bytes(std::vector<uint32_t>{1, 7, 3, 3, 6}));
       }),
       {"row 2", "feature 3"}},
      {"NaNValue",
       edit([](v1::SparseCodes& c) {
         c.set_values(Bytes(std::vector<float>{0.5f, std::nanf(""), 1.0f, 1.0f, 1.0f}));
       }),
       {"row 0", "nan"}},
      // (num_rows + 1) * 8 wraps to 0: must be rejected, not allocate 2^63 offsets.
      {"HugeNumRows",
       edit([](v1::SparseCodes& c) {
         c.set_num_rows(std::numeric_limits<int64_t>::max());
         c.clear_row_offsets();
       }),
       {"codes"}},
  };
}

void PrintTo(const CodesErrorCase& c, std::ostream* os) { *os << c.name; }

class DecodeCodesErrorTest : public ::testing::TestWithParam<CodesErrorCase> {};

TEST_P(DecodeCodesErrorTest, InvalidArgumentNamingFieldAndValue) {
  const CodesErrorCase& c = GetParam();
  absl::StatusOr<engine::SparseCodes> result;
  try {
    result = DecodeCodes(c.codes, 8);
  } catch (const std::exception& e) {
    FAIL() << "DecodeCodes threw " << e.what() << " instead of returning INVALID_ARGUMENT";
  }
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  for (const char* s : c.substrings) {
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(s));
  }
}

INSTANTIATE_TEST_SUITE_P(AllErrors, DecodeCodesErrorTest, ::testing::ValuesIn(CodesErrorCases()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace saedict::wire
