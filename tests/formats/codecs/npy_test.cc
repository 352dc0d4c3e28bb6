// Tests of the .npy reader and writer: round trips for every dtype, header
// versions 1-3, and rejection of malformed or unsupported files.
#include "formats/codecs/npy.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "formats/codecs/float_convert.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::formats {
namespace {

using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

// An .npy file with a hand-written header dict (version 1, 2 or 3).
std::string RawNpy(const std::string& dict, const std::string& data, int version = 1) {
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(version));
  out.push_back('\0');
  const std::string header = dict + "\n";
  const uint32_t len = static_cast<uint32_t>(header.size());
  out.append(reinterpret_cast<const char*>(&len), version == 1 ? 2 : 4);
  return out + header + data;
}

std::string F32Bytes(std::vector<float> v) { return EncodeFloats(v, FloatKind::kF32); }

TEST(NpyTest, RoundTripsEveryDtype) {
  for (NpyDType t : {NpyDType::kBool, NpyDType::kU8, NpyDType::kI8, NpyDType::kU16, NpyDType::kI16,
                     NpyDType::kU32, NpyDType::kI32, NpyDType::kU64, NpyDType::kI64, NpyDType::kF16,
                     NpyDType::kF32, NpyDType::kF64}) {
    NpyArray a;
    a.dtype = t;
    a.shape = {2, 3};
    a.data.assign(6 * NpyDTypeSize(t), '\0');
    for (size_t i = 0; i < a.data.size(); ++i) a.data[i] = static_cast<char>(i % 2);
    SAEDICT_ASSERT_OK_AND_ASSIGN(std::string bytes, SerializeNpy(a));
    uint16_t header_len;
    std::memcpy(&header_len, bytes.data() + 8, 2);
    EXPECT_EQ((10 + header_len) % 64, 0u) << NpyDescr(t);
    SAEDICT_ASSERT_OK_AND_ASSIGN(NpyArray b, ParseNpy(bytes, "mem"));
    EXPECT_EQ(b.dtype, t) << NpyDescr(t);
    EXPECT_THAT(b.shape, ElementsAre(2, 3));
    EXPECT_EQ(b.data, a.data) << NpyDescr(t);
  }
}

TEST(NpyTest, WritesTheHeaderNumpyWrites) {
  const std::vector<float> v = {1, 2, 3};
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::string bytes, SerializeNpy(NpyFromFloat32({3}, v)));
  EXPECT_THAT(bytes, HasSubstr("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"));
  EXPECT_EQ(bytes.size(), 128u + 12u);  // as numpy: a 128-byte preamble
  SAEDICT_ASSERT_OK_AND_ASSIGN(bytes, SerializeNpy(NpyFromFloat32({}, std::vector<float>{5})));
  EXPECT_THAT(bytes, HasSubstr("'shape': (), }"));
  SAEDICT_ASSERT_OK_AND_ASSIGN(NpyArray scalar, ParseNpy(bytes, "mem"));
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.NumElements(), 1u);
  EXPECT_THAT(*NpyToFloat32(scalar, "mem"), ElementsAre(5.0f));
}

TEST(NpyTest, FileRoundTripAndBuilders) {
  testing::ScratchDir dir;
  const std::vector<int32_t> ints = {1, -2, 3, 4};
  ASSERT_THAT(WriteNpyFile(dir.path() / "a.npy", NpyFromInt32({2, 2}, ints)), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(NpyArray a, ReadNpyFile(dir.path() / "a.npy"));
  EXPECT_EQ(a.dtype, NpyDType::kI32);
  EXPECT_THAT(*NpyToInt64(a, "a"), ElementsAre(1, -2, 3, 4));
  const std::vector<int64_t> longs = {5, -6};
  ASSERT_THAT(WriteNpyFile(dir.path() / "b.npy", NpyFromInt64({2}, longs)), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(NpyArray b, ReadNpyFile(dir.path() / "b.npy"));
  EXPECT_THAT(*NpyToInt64(b, "b"), ElementsAre(5, -6));
  EXPECT_THAT(ReadNpyFile(dir.path() / "none.npy"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("none.npy")));
}

TEST(NpyTest, ReadsVersions2And3AndPython2Longs) {
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 1L), }";
  for (int version : {1, 2, 3}) {
    SAEDICT_ASSERT_OK_AND_ASSIGN(NpyArray a,
                                 ParseNpy(RawNpy(dict, F32Bytes({1, 2}), version), "v"));
    EXPECT_THAT(a.shape, ElementsAre(2, 1));
    EXPECT_THAT(*NpyToFloat32(a, "v"), ElementsAre(1.0f, 2.0f));
  }
  // Keys in any order, double quotes, no trailing comma.
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      NpyArray a, ParseNpy(RawNpy("{\"shape\": (1,), \"fortran_order\": False, \"descr\": \"|u1\"}",
                                  std::string(1, '\x07')),
                           "v"));
  EXPECT_EQ(a.dtype, NpyDType::kU8);
}

TEST(NpyTest, ConvertsHalfAndDoubleToFloat) {
  NpyArray h;
  h.dtype = NpyDType::kF16;
  h.shape = {3};
  h.data = EncodeFloats(std::vector<float>{0.5f, -2.0f, 65504.0f}, FloatKind::kF16);
  EXPECT_THAT(*NpyToFloat32(h, "h"), ElementsAre(0.5f, -2.0f, 65504.0f));
  NpyArray d;
  d.dtype = NpyDType::kF64;
  d.shape = {1};
  d.data = EncodeFloats(std::vector<float>{0.1f}, FloatKind::kF64);
  EXPECT_THAT(*NpyToFloat32(d, "d"), ElementsAre(0.1f));
  EXPECT_THAT(NpyToFloat32(NpyFromInt32({1}, std::vector<int32_t>{1}), "ints.npy"),
              StatusIs(kInvalid, AllOf(HasSubstr("ints.npy"), HasSubstr("not a float type"))));
  EXPECT_THAT(NpyToInt64(h, "h.npy"), StatusIs(kInvalid, HasSubstr("not an integer type")));
  NpyArray big;
  big.dtype = NpyDType::kU64;
  big.shape = {1};
  big.data.assign(8, '\xff');
  EXPECT_THAT(NpyToInt64(big, "u.npy"), StatusIs(kInvalid, HasSubstr("exceeds int64")));
}

TEST(NpyTest, RejectsFortranOrderAndUnsupportedDtypes) {
  EXPECT_THAT(
      ParseNpy(RawNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", F32Bytes({1})),
               "f.npy"),
      StatusIs(kInvalid, AllOf(HasSubstr("f.npy"), HasSubstr("fortran_order"))));
  EXPECT_THAT(
      ParseNpy(RawNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", F32Bytes({1})),
               "f.npy"),
      StatusIs(kInvalid, HasSubstr("big-endian")));
  for (const char* descr : {"<c8", "<f3", "|f4", "<U10", "O", "<f16"}) {
    EXPECT_THAT(ParseNpy(RawNpy(absl::StrCat("{'descr': '", descr,
                                             "', 'fortran_order': False, 'shape': (1,), }"),
                                F32Bytes({1})),
                         "f.npy"),
                StatusIs(kInvalid, HasSubstr("unsupported npy dtype")))
        << descr;
  }
  EXPECT_THAT(ParseNpy(RawNpy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
                              F32Bytes({1})),
                       "f.npy"),
              StatusIs(kInvalid, HasSubstr("structured")));
}

TEST(NpyTest, RejectsMalformedFiles) {
  const std::string good_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const std::string good = RawNpy(good_dict, F32Bytes({1, 2}));
  EXPECT_THAT(ParseNpy("\x93NUMP", "f.npy"), StatusIs(kInvalid, HasSubstr("not an npy file")));
  EXPECT_THAT(ParseNpy("PK\x03\x04xxxxxxxxxx", "f.npy"),
              StatusIs(kInvalid, HasSubstr("bad magic")));
  std::string v9 = good;
  v9[6] = 9;
  EXPECT_THAT(ParseNpy(v9, "f.npy"), StatusIs(kInvalid, HasSubstr("version 9")));
  EXPECT_THAT(ParseNpy(good.substr(0, 30), "f.npy"),
              StatusIs(kInvalid, HasSubstr("header length")));
  EXPECT_THAT(ParseNpy(good.substr(0, good.size() - 1), "f.npy"),
              StatusIs(kInvalid, HasSubstr("data is 7 bytes but shape (2) x <f4 needs 8")));
  EXPECT_THAT(ParseNpy(good + "x", "f.npy"), StatusIs(kInvalid, HasSubstr("needs 8")));
  for (const char* dict :
       {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ",
        "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } trailing",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
        "['descr']"}) {
    EXPECT_THAT(ParseNpy(RawNpy(dict, F32Bytes({1, 2})), "f.npy"),
                StatusIs(kInvalid, HasSubstr("f.npy")))
        << dict;
  }
  EXPECT_THAT(ParseNpy(RawNpy("{'descr': '<f4', 'shape': (2,), }", F32Bytes({1, 2})), "f.npy"),
              StatusIs(kInvalid, HasSubstr("lacks")));
  EXPECT_THAT(ParseNpy(RawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), "
                              "'extra': 1, }",
                              F32Bytes({1, 2})),
                       "f.npy"),
              StatusIs(kInvalid, HasSubstr("unexpected npy header key 'extra'")));
  EXPECT_THAT(ParseNpy(RawNpy("{'descr': '<f4', 'fortran_order': False, "
                              "'shape': (4294967296, 4294967296, 4294967296), }",
                              F32Bytes({1, 2})),
                       "f.npy"),
              StatusIs(kInvalid, HasSubstr("overflows")));
}

TEST(NpyTest, SerializeRejectsSizeMismatch) {
  NpyArray a = NpyFromFloat32({2}, std::vector<float>{1, 2});
  a.shape = {3};
  EXPECT_THAT(SerializeNpy(a), StatusIs(kInvalid, HasSubstr("8 bytes but the shape needs 12")));
  a.shape = {-1};
  EXPECT_THAT(SerializeNpy(a), StatusIs(kInvalid, HasSubstr("negative")));
}

}  // namespace
}  // namespace saedict::formats
