// Tests of the safetensors reader and writer, including every malformed-file
// case the reader must reject with a message naming the file and tensor.
#include "formats/codecs/safetensors.h"

#include <cstring>
#include <limits>

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

// A file with the given header text (length prefix computed) and data bytes.
std::string RawFile(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

std::string Floats(std::vector<float> v) { return EncodeFloats(v, FloatKind::kF32); }

absl::Status ParseStatus(const std::string& header, const std::string& data) {
  return SafetensorsFile::Parse(RawFile(header, data), "test.safetensors").status();
}

TEST(SafetensorsTest, RoundTripsDtypesShapesAndMetadata) {
  const std::string f32 = Floats({1.0f, -2.5f, 3.25f, 0.0f, 7.0f, -0.125f});
  const std::string f16 = EncodeFloats(std::vector<float>{0.5f, -1.5f, 2048.0f}, FloatKind::kF16);
  const std::string bf16 = EncodeFloats(std::vector<float>{-3.0f, 0.25f}, FloatKind::kBF16);
  const std::string f64 = EncodeFloats(std::vector<float>{1.0f / 3.0f}, FloatKind::kF64);
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      std::string bytes,
      SerializeSafetensors({{"a", StDType::kF32, {2, 3}, f32},
                            {"h", StDType::kF16, {3}, f16},
                            {"b", StDType::kBF16, {1, 2}, bf16},
                            {"d", StDType::kF64, {}, f64},
                            {"empty", StDType::kF32, {0, 4}, ""}},
                           {{"format", "pt"}, {"note", "quote \" and \\ newline\n"}}));
  uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
  SAEDICT_ASSERT_OK_AND_ASSIGN(SafetensorsFile st, SafetensorsFile::Parse(bytes, "mem"));
  EXPECT_EQ(st.metadata().at("note"), "quote \" and \\ newline\n");
  ASSERT_EQ(st.tensors().size(), 5u);
  ASSERT_NE(st.Find("a"), nullptr);
  EXPECT_THAT(st.Find("a")->shape, ElementsAre(2, 3));
  EXPECT_EQ(st.Find("h")->dtype, StDType::kF16);
  EXPECT_EQ(st.Find("nope"), nullptr);
  EXPECT_THAT(*st.ReadF32("a"), ElementsAre(1.0f, -2.5f, 3.25f, 0.0f, 7.0f, -0.125f));
  EXPECT_THAT(*st.ReadF32("h"), ElementsAre(0.5f, -1.5f, 2048.0f));
  EXPECT_THAT(*st.ReadF32("b"), ElementsAre(-3.0f, 0.25f));
  EXPECT_THAT(*st.ReadF32("d"), ElementsAre(1.0f / 3.0f));
  EXPECT_TRUE(st.ReadF32("empty")->empty());
  EXPECT_EQ(st.Data(*st.Find("a")), f32);
}

TEST(SafetensorsTest, WritesAndReadsFiles) {
  testing::ScratchDir dir;
  const std::string data = Floats({1, 2});
  ASSERT_THAT(WriteSafetensorsFile(dir.path() / "x.safetensors", {{"w", StDType::kF32, {2}, data}}),
              IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(SafetensorsFile st,
                               SafetensorsFile::Read(dir.path() / "x.safetensors"));
  EXPECT_THAT(*st.ReadF32("w"), ElementsAre(1.0f, 2.0f));
  EXPECT_THAT(SafetensorsFile::Read(dir.path() / "missing.safetensors"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.safetensors")));
}

TEST(SafetensorsTest, RejectsTruncatedFile) {
  EXPECT_THAT(SafetensorsFile::Parse("abc", "t.st"),
              StatusIs(kInvalid, AllOf(HasSubstr("t.st"), HasSubstr("truncated"))));
  // A valid file cut short inside its data.
  const std::string full =
      RawFile(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", Floats({1, 2, 3, 4}));
  EXPECT_THAT(SafetensorsFile::Parse(full.substr(0, full.size() - 3), "t.st"),
              StatusIs(kInvalid, AllOf(HasSubstr("'w'"), HasSubstr("out of range"))));
  // Cut inside the header.
  EXPECT_THAT(SafetensorsFile::Parse(full.substr(0, 20), "t.st"),
              StatusIs(kInvalid, HasSubstr("header length")));
}

TEST(SafetensorsTest, RejectsHeaderLengthOverflowAndOversize) {
  std::string bytes = RawFile("{}", "");
  const uint64_t huge = std::numeric_limits<uint64_t>::max();
  std::memcpy(bytes.data(), &huge, 8);
  EXPECT_THAT(SafetensorsFile::Parse(bytes, "t.st"),
              StatusIs(kInvalid, HasSubstr("header length 18446744073709551615 exceeds")));
  const uint64_t just_over = 3;
  std::memcpy(bytes.data(), &just_over, 8);
  EXPECT_THAT(SafetensorsFile::Parse(bytes, "t.st"), StatusIs(kInvalid, HasSubstr("exceeds")));
}

TEST(SafetensorsTest, RejectsBadJson) {
  EXPECT_THAT(ParseStatus("{\"w\": {", ""), StatusIs(kInvalid, HasSubstr("bad JSON")));
  EXPECT_THAT(ParseStatus("[1,2]", ""), StatusIs(kInvalid, HasSubstr("bad JSON")));
  EXPECT_THAT(ParseStatus("", ""), StatusIs(kInvalid, HasSubstr("bad JSON")));
  EXPECT_THAT(ParseStatus(R"({"w": 5})", ""),
              StatusIs(kInvalid, HasSubstr("tensor 'w': entry must be an object")));
  EXPECT_THAT(ParseStatus(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", Floats({1})),
              StatusIs(kInvalid, HasSubstr("missing 'dtype'")));
  EXPECT_THAT(ParseStatus(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", Floats({1})),
              StatusIs(kInvalid, HasSubstr("'shape'")));
  EXPECT_THAT(ParseStatus(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", Floats({1})),
              StatusIs(kInvalid, HasSubstr("data_offsets")));
  EXPECT_THAT(ParseStatus(R"({"__metadata__":{"a":1}})", ""),
              StatusIs(kInvalid, HasSubstr("__metadata__ key 'a' must be a string")));
  EXPECT_THAT(ParseStatus(R"({"w":{}, "w":{}})", ""), StatusIs(kInvalid, HasSubstr("bad JSON")));
}

TEST(SafetensorsTest, RejectsUnknownDtype) {
  EXPECT_THAT(ParseStatus(R"({"w":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}})", Floats({1})),
              StatusIs(kInvalid, AllOf(HasSubstr("test.safetensors: tensor 'w'"),
                                       HasSubstr("unknown dtype \"F31\""))));
}

TEST(SafetensorsTest, RejectsOffsetsOutOfRangeOrReversed) {
  EXPECT_THAT(ParseStatus(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", Floats({1})),
              StatusIs(kInvalid, AllOf(HasSubstr("'w'"), HasSubstr("out of range"))));
  EXPECT_THAT(ParseStatus(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", Floats({1})),
              StatusIs(kInvalid, HasSubstr("out of range")));
  EXPECT_THAT(
      ParseStatus(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", Floats({1})),
      StatusIs(kInvalid, HasSubstr("data_offsets[0]")));
  EXPECT_THAT(
      ParseStatus(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,1e300]}})", Floats({1})),
      StatusIs(kInvalid, HasSubstr("data_offsets[1]")));
}

TEST(SafetensorsTest, RejectsShapeByteMismatch) {
  EXPECT_THAT(
      ParseStatus(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", Floats({1, 2})),
      StatusIs(kInvalid, AllOf(HasSubstr("'w'"), HasSubstr("hold 8 bytes"),
                               HasSubstr("[3] x F32 needs 12"))));
  EXPECT_THAT(
      ParseStatus(R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})", Floats({1, 2})),
      StatusIs(kInvalid, HasSubstr("needs 4")));
}

TEST(SafetensorsTest, RejectsNegativeFractionalAndOverflowingShapes) {
  EXPECT_THAT(ParseStatus(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", ""),
              StatusIs(kInvalid, HasSubstr("shape[0]")));
  EXPECT_THAT(ParseStatus(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,0]}})", ""),
              StatusIs(kInvalid, HasSubstr("shape[0]")));
  EXPECT_THAT(ParseStatus(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],)"
                          R"("data_offsets":[0,0]}})",
                          ""),
              StatusIs(kInvalid, HasSubstr("overflows")));
}

TEST(SafetensorsTest, RejectsOverlappingTensors) {
  EXPECT_THAT(ParseStatus(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                          Floats({1, 2, 3})),
              StatusIs(kInvalid, AllOf(HasSubstr("'a'"), HasSubstr("'b'"), HasSubstr("overlap"))));
  // Empty tensors may sit anywhere.
  EXPECT_THAT(ParseStatus(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                          Floats({1, 2})),
              IsOk());
}

TEST(SafetensorsTest, ReadF32RejectsMissingAndNonFloatTensors) {
  const std::string ints(8, '\0');
  SAEDICT_ASSERT_OK_AND_ASSIGN(
      SafetensorsFile st,
      SafetensorsFile::Parse(
          RawFile(R"({"i":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", ints), "f.st"));
  EXPECT_THAT(st.ReadF32("i"),
              StatusIs(kInvalid, AllOf(HasSubstr("f.st"), HasSubstr("tensor 'i' has dtype I32"))));
  EXPECT_THAT(st.ReadF32("x"), StatusIs(kInvalid, HasSubstr("f.st: missing tensor 'x'")));
}

TEST(SafetensorsTest, SerializeRejectsBadInput) {
  const std::string data = Floats({1, 2});
  EXPECT_THAT(SerializeSafetensors({{"w", StDType::kF32, {3}, data}}),
              StatusIs(kInvalid, HasSubstr("does not match")));
  EXPECT_THAT(
      SerializeSafetensors({{"w", StDType::kF32, {2}, data}, {"w", StDType::kF32, {2}, data}}),
      StatusIs(kInvalid, HasSubstr("duplicate")));
  EXPECT_THAT(SerializeSafetensors({{"__metadata__", StDType::kF32, {2}, data}}),
              StatusIs(kInvalid, HasSubstr("reserved")));
  EXPECT_THAT(SerializeSafetensors({{"w", StDType::kF32, {-2}, data}}),
              StatusIs(kInvalid, HasSubstr("does not match")));
}

TEST(SafetensorsTest, DtypeNamesAndSizes) {
  for (const char* name : {"BOOL", "U8", "I8", "F8_E4M3", "F8_E5M2", "U16", "I16", "F16", "BF16",
                           "U32", "I32", "F32", "U64", "I64", "F64"}) {
    SAEDICT_ASSERT_OK_AND_ASSIGN(StDType t, ParseStDType(name));
    EXPECT_STREQ(StDTypeName(t), name);
  }
  EXPECT_EQ(StDTypeSize(StDType::kBF16), 2u);
  EXPECT_EQ(StDTypeSize(StDType::kF64), 8u);
  EXPECT_THAT(ParseStDType("f32"), StatusIs(kInvalid, HasSubstr("unknown dtype")));
}

}  // namespace
}  // namespace saedict::formats
