// Unit tests of client/tensor_wire: dense tensors and CSR codes to and from
// the wire, and every validation error.
#include "wire/tensor_wire.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::wire {
namespace {

using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

class DenseRoundTrip : public ::testing::TestWithParam<v1::DType> {};

TEST_P(DenseRoundTrip, ExactValuesSurvive) {
  // Representable exactly in f32, f16 and bf16.
  const std::vector<float> values = {0.0f, -0.0f, 1.0f, -2.5f, 0.125f, 1024.0f};
  const int64_t shape[2] = {2, 3};
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::Tensor t, FloatsToTensor(values, shape, GetParam()));
  EXPECT_EQ(t.dtype(), GetParam());
  EXPECT_THAT(t.shape(), ElementsAre(2, 3));
  EXPECT_EQ(static_cast<int64_t>(t.data().size()), 6 * DTypeSize(GetParam()));
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<float> back, TensorToFloats(t));
  EXPECT_THAT(back, ElementsAreArray(values));
  EXPECT_TRUE(std::signbit(back[1]));
}

INSTANTIATE_TEST_SUITE_P(AllDTypes, DenseRoundTrip,
                         ::testing::Values(v1::DTYPE_F32, v1::DTYPE_F16, v1::DTYPE_BF16));

TEST(TensorWireTest, HalfPrecisionRounds) {
  const std::vector<float> values = {1.0f + 1.0f / 4096.0f, 1.0e6f};
  const int64_t shape[1] = {2};
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::Tensor f16, FloatsToTensor(values, shape, v1::DTYPE_F16));
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::vector<float> back, TensorToFloats(f16));
  EXPECT_EQ(back[0], 1.0f);          // below half an f16 ulp: rounds down
  EXPECT_TRUE(std::isinf(back[1]));  // beyond the f16 range
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::Tensor bf16, FloatsToTensor(values, shape, v1::DTYPE_BF16));
  SAEDICT_ASSERT_OK_AND_ASSIGN(back, TensorToFloats(bf16));
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_NEAR(back[1], 1.0e6f, 1.0e6f / 128);
}

TEST(TensorWireTest, RawToTensorKeepsBytes) {
  const std::string bytes("\x00\x3c\x00\xc0", 4);  // f16 1.0, -2.0
  const int64_t shape[2] = {1, 2};
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::Tensor t, RawToTensor(bytes, shape, v1::DTYPE_F16));
  EXPECT_EQ(t.data(), bytes);
  EXPECT_THAT(TensorToFloats(t).value(), ElementsAre(1.0f, -2.0f));
}

TEST(TensorWireTest, DenseValidationErrors) {
  const std::vector<float> three = {1, 2, 3};
  const int64_t two_by_two[2] = {2, 2};
  EXPECT_THAT(FloatsToTensor(three, two_by_two, v1::DTYPE_F32),
              StatusIs(kInvalid, HasSubstr("holds 4 elements but 3 values")));
  const int64_t three_shape[1] = {3};
  EXPECT_THAT(FloatsToTensor(three, three_shape, v1::DTYPE_UNSPECIFIED),
              StatusIs(kInvalid, HasSubstr("unsupported dtype 0")));
  EXPECT_THAT(RawToTensor("abc", three_shape, v1::DTYPE_F16),
              StatusIs(kInvalid, HasSubstr("3 bytes of f16 do not match shape [3]")));

  v1::Tensor t;
  t.set_dtype(v1::DTYPE_F32);
  t.add_shape(2);
  t.set_data(std::string(4, '\0'));
  EXPECT_THAT(
      TensorToFloats(t, "reconstruction"),
      StatusIs(kInvalid,
               HasSubstr("reconstruction.data: 4 bytes, but shape [2] of DTYPE_F32 needs 8")));
  t.set_dtype(static_cast<v1::DType>(42));
  EXPECT_THAT(TensorToFloats(t), StatusIs(kInvalid, HasSubstr("tensor.dtype: 42")));
  t.set_dtype(v1::DTYPE_F32);
  t.set_shape(0, -1);
  EXPECT_THAT(TensorToFloats(t), StatusIs(kInvalid, HasSubstr("negative dimension")));
  t.set_shape(0, std::numeric_limits<int64_t>::max());
  t.add_shape(4);
  EXPECT_THAT(TensorToFloats(t), StatusIs(kInvalid, HasSubstr("overflows")));
  t.set_shape(0, std::numeric_limits<int64_t>::max() / 2);  // elements fit, bytes do not
  t.set_shape(1, 1);
  EXPECT_THAT(TensorToFloats(t), StatusIs(kInvalid, HasSubstr("byte size overflows")));
  t.set_shape(0, 3);
  EXPECT_THAT(TensorToFloats(t),
              StatusIs(kInvalid,
                       HasSubstr("tensor.data: 4 bytes, but shape [3, 1] of DTYPE_F32 needs 12")));
}

CsrCodes Example() {
  CsrCodes c;
  c.num_rows = 3;
  c.num_features = 10;
  c.row_offsets = {0, 2, 2, 3};
  c.indices = {1, 7, 9};
  c.values = {0.5f, 2.0f, -1.0f};
  return c;
}

TEST(CsrTest, RoundTrip) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::SparseCodes wire, CsrToProto(Example()));
  EXPECT_EQ(wire.num_rows(), 3);
  EXPECT_EQ(wire.num_features(), 10);
  EXPECT_EQ(wire.row_offsets().size(), 4 * sizeof(uint64_t));
  EXPECT_EQ(wire.indices().size(), 3 * sizeof(uint32_t));
  SAEDICT_ASSERT_OK_AND_ASSIGN(CsrCodes back, CsrFromProto(wire));
  EXPECT_THAT(back.row_offsets, ElementsAre(0, 2, 2, 3));
  EXPECT_THAT(back.indices, ElementsAre(1, 7, 9));
  EXPECT_THAT(back.values, ElementsAre(0.5f, 2.0f, -1.0f));
  EXPECT_EQ(back.nnz(), 3);
}

TEST(CsrTest, EmptyBatchIsValid) {
  CsrCodes c;
  c.num_features = 5;
  c.row_offsets = {0};
  SAEDICT_ASSERT_OK_AND_ASSIGN(v1::SparseCodes wire, CsrToProto(c));
  SAEDICT_ASSERT_OK_AND_ASSIGN(CsrCodes back, CsrFromProto(wire));
  EXPECT_EQ(back.num_rows, 0);
}

struct BadCsrCase {
  std::string name;
  void (*mutate)(CsrCodes&);
  std::string message;
};

class BadCsr : public ::testing::TestWithParam<BadCsrCase> {};

TEST_P(BadCsr, IsRejected) {
  CsrCodes c = Example();
  GetParam().mutate(c);
  EXPECT_THAT(c.Validate(), StatusIs(kInvalid, HasSubstr(GetParam().message)));
  EXPECT_THAT(CsrToProto(c), StatusIs(kInvalid, HasSubstr(GetParam().message)));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadCsr,
    ::testing::Values(BadCsrCase{"TooFewOffsets", [](CsrCodes& c) { c.row_offsets.pop_back(); },
                                 "3 row_offsets for num_rows 3"},
                      BadCsrCase{"FirstOffsetNotZero", [](CsrCodes& c) { c.row_offsets[0] = 1; },
                                 "row_offsets[0] is 1"},
                      BadCsrCase{"LastOffsetNotNnz", [](CsrCodes& c) { c.row_offsets[3] = 2; },
                                 "row_offsets[3] is 2 but nnz is 3"},
                      BadCsrCase{"NotMonotone", [](CsrCodes& c) { c.row_offsets[2] = 1; },
                                 "not monotone at row 1"},
                      BadCsrCase{"IndexOutOfRange", [](CsrCodes& c) { c.indices[2] = 10; },
                                 "row 2 feature 10 >= num_features 10"},
                      BadCsrCase{"NotAscending", [](CsrCodes& c) { c.indices[1] = 1; },
                                 "row 0 feature 1 does not follow feature 1"},
                      BadCsrCase{"NaN", [](CsrCodes& c) { c.values[1] = std::nanf(""); },
                                 "feature 7 has non-finite value"},
                      BadCsrCase{"ValuesShort", [](CsrCodes& c) { c.values.pop_back(); },
                                 "3 indices but 2 values"},
                      BadCsrCase{"NegativeRows", [](CsrCodes& c) { c.num_rows = -1; },
                                 "negative num_rows"}),
    [](const ::testing::TestParamInfo<BadCsrCase>& info) { return info.param.name; });

TEST(CsrTest, FromProtoChecksByteLengths) {
  v1::SparseCodes wire = CsrToProto(Example()).value();
  v1::SparseCodes bad = wire;
  bad.mutable_row_offsets()->pop_back();
  EXPECT_THAT(CsrFromProto(bad),
              StatusIs(kInvalid,
                       HasSubstr("codes.row_offsets: 31 bytes, expected 8 × (num_rows + 1) = 32")));
  bad = wire;
  bad.set_num_rows(2);
  EXPECT_THAT(CsrFromProto(bad),
              StatusIs(kInvalid,
                       HasSubstr("codes.row_offsets: 32 bytes, expected 8 × (num_rows + 1) = 24")));
  bad = wire;
  bad.mutable_values()->append(4, '\0');
  EXPECT_THAT(CsrFromProto(bad),
              StatusIs(kInvalid, HasSubstr("codes.values: 16 bytes, expected nnz × 4 = 12")));
  bad = wire;
  bad.set_num_rows(std::numeric_limits<int64_t>::max());
  EXPECT_THAT(CsrFromProto(bad),
              StatusIs(kInvalid, HasSubstr("codes.num_rows: 9223372036854775807 is out of range")));
  bad = wire;
  bad.set_num_features(5);
  EXPECT_THAT(CsrFromProto(bad), StatusIs(kInvalid, HasSubstr(">= num_features 5")));
}

TEST(CsrTest, AppendRows) {
  CsrCodes all;
  ASSERT_THAT(AppendRows(all, Example()), IsOk());
  ASSERT_THAT(AppendRows(all, Example()), IsOk());
  EXPECT_EQ(all.num_rows, 6);
  EXPECT_EQ(all.num_features, 10);
  EXPECT_THAT(all.row_offsets, ElementsAre(0, 2, 2, 3, 5, 5, 6));
  EXPECT_THAT(all.indices, ElementsAre(1, 7, 9, 1, 7, 9));
  EXPECT_THAT(all.Validate(), IsOk());

  CsrCodes narrow = Example();
  narrow.num_features = 20;
  EXPECT_THAT(AppendRows(all, narrow), StatusIs(kInvalid, HasSubstr("num_features 20")));
}

TEST(TensorWireTest, DTypeNames) {
  EXPECT_EQ(DTypeName(v1::DTYPE_BF16), "bf16");
  EXPECT_EQ(DTypeName(v1::DTYPE_UNSPECIFIED), "unspecified");
  EXPECT_EQ(DTypeSize(v1::DTYPE_F32), 4);
  EXPECT_EQ(DTypeSize(v1::DTYPE_UNSPECIFIED), 0);
}

}  // namespace
}  // namespace saedict::wire
