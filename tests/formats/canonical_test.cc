// Tests of the canonical dictionary file: exact round trips for every
// architecture and config field, atomic replacement, and rejection of
// files that are not canonical or are damaged.
#include <cmath>

#include "formats/codecs/float_convert.h"
#include "formats/codecs/safetensors.h"
#include "formats/dictionary_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::formats {
namespace {

using engine::Architecture;
using engine::Dictionary;
using ::saedict::testing::CompareDictionaries;
using ::saedict::testing::IsOk;
using ::saedict::testing::RandomDictionary;
using ::saedict::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

TEST(CanonicalTest, RoundTripsEveryArchitectureExactly) {
  testing::ScratchDir dir;
  for (Architecture a : {Architecture::kStandard, Architecture::kTopK, Architecture::kJumpReLU,
                         Architecture::kGated, Architecture::kMatchingPursuit}) {
    Dictionary d = RandomDictionary(a, 7, 13, 3, 21);
    d.config.model_name = "gemma-2-2b \"quoted\" ünïcode";
    d.config.hook_name = "blocks.12.hook_resid_post";
    d.config.normalization = engine::Normalization::kLayerNorm;
    d.config.apply_b_dec_to_input = false;
    if (a == Architecture::kTopK) d.config.rescale_acts_by_decoder_norm = true;
    if (a == Architecture::kMatchingPursuit) d.config.mp_residual_threshold = 0.1f + 1e-8f;
    const fs::path file = dir.path() / "dict.safetensors";
    ASSERT_THAT(WriteCanonical(d, file), IsOk());
    SAEDICT_ASSERT_OK_AND_ASSIGN(Dictionary back, ReadCanonical(file));
    EXPECT_THAT(CompareDictionaries(back, d), IsOk()) << engine::ArchitectureName(a);
  }
  // Only the final file remains: no temporary files left behind.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename(), "dict.safetensors");
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST(CanonicalTest, RoundTripsTranscodersAndRejectsTheirDamage) {
  testing::ScratchDir dir;
  const fs::path file = dir.path() / "tc.safetensors";
  for (bool skip : {true, false}) {
    const Dictionary d =
        ::saedict::testing::RandomTranscoder(Architecture::kJumpReLU, 5, 7, 11, skip, 8);
    ASSERT_THAT(WriteCanonical(d, file), IsOk());
    SAEDICT_ASSERT_OK_AND_ASSIGN(Dictionary back, ReadCanonical(file));
    EXPECT_THAT(CompareDictionaries(back, d), IsOk()) << skip;
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(SafetensorsFile st, SafetensorsFile::Read(file));
  EXPECT_EQ(st.metadata().at("d_out"), "7");
  EXPECT_EQ(st.metadata().at("hook_name_out"), "blocks.0.hook_mlp_out");
  // d_out dropped: the [11, 7] decoder no longer fits d_in 5.
  std::map<std::string, std::string> meta = st.metadata();
  meta.erase("d_out");
  std::vector<SafetensorToWrite> tensors;
  for (const SafetensorInfo& t : st.tensors()) tensors.push_back({t.name, t.dtype, t.shape, st.Data(t)});
  ASSERT_THAT(WriteSafetensorsFile(file, tensors, meta), IsOk());
  EXPECT_THAT(ReadCanonical(file), StatusIs(kInvalid, HasSubstr("'W_dec' has shape [11,7], expected [11,5]")));
  meta["d_out"] = "0";
  ASSERT_THAT(WriteSafetensorsFile(file, tensors, meta), IsOk());
  EXPECT_THAT(ReadCanonical(file), StatusIs(kInvalid, HasSubstr("'d_out' = \"0\"")));
}

TEST(CanonicalTest, StoresF32TensorsAndConfigMetadata) {
  testing::ScratchDir dir;
  const Dictionary d = RandomDictionary(Architecture::kJumpReLU, 4, 8);
  ASSERT_THAT(WriteCanonical(d, dir.path() / "c.safetensors"), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(SafetensorsFile st,
                               SafetensorsFile::Read(dir.path() / "c.safetensors"));
  for (const SafetensorInfo& t : st.tensors()) EXPECT_EQ(t.dtype, StDType::kF32) << t.name;
  EXPECT_NE(st.Find("threshold"), nullptr);
  EXPECT_EQ(st.Find("b_gate"), nullptr);
  EXPECT_EQ(st.metadata().at("architecture"), "jumprelu");
  EXPECT_EQ(st.metadata().at("d_sae"), "8");
  EXPECT_EQ(st.metadata().at("saedict_format"), "canonical-v1");
}

TEST(CanonicalTest, RefusesToWriteAnInvalidDictionary) {
  testing::ScratchDir dir;
  Dictionary d = RandomDictionary(Architecture::kTopK, 4, 8, 2);
  d.b_enc.pop_back();
  EXPECT_THAT(WriteCanonical(d, dir.path() / "x.safetensors"),
              StatusIs(kInvalid, HasSubstr("b_enc")));
  EXPECT_FALSE(fs::exists(dir.path() / "x.safetensors"));
}

TEST(CanonicalTest, RejectsNonCanonicalAndDamagedFiles) {
  testing::ScratchDir dir;
  const fs::path file = dir.path() / "c.safetensors";
  EXPECT_THAT(ReadCanonical(file),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("c.safetensors")));
  const std::string w = EncodeFloats(std::vector<float>{1, 2}, FloatKind::kF32);
  ASSERT_THAT(WriteSafetensorsFile(file, {{"W_dec", StDType::kF32, {2}, w}}, {{"format", "pt"}}),
              IsOk());
  EXPECT_THAT(ReadCanonical(file), StatusIs(kInvalid, HasSubstr("lacks key 'saedict_format'")));

  const Dictionary d = RandomDictionary(Architecture::kStandard, 2, 3);
  ASSERT_THAT(WriteCanonical(d, file), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(SafetensorsFile st, SafetensorsFile::Read(file));
  // Rewrites the file with one metadata value or tensor changed.
  auto rewrite = [&](const std::string& key, const std::string& value, bool nan_in_b_dec) {
    std::map<std::string, std::string> meta = st.metadata();
    if (!key.empty()) meta[key] = value;
    std::vector<std::string> bytes;
    std::vector<SafetensorToWrite> tensors;
    for (const SafetensorInfo& t : st.tensors()) bytes.emplace_back(st.Data(t));
    for (size_t i = 0; i < st.tensors().size(); ++i) {
      const SafetensorInfo& t = st.tensors()[i];
      if (nan_in_b_dec && t.name == "b_dec") {
        const float nan = std::nanf("");
        std::memcpy(bytes[i].data() + 4, &nan, 4);
      }
      tensors.push_back({t.name, t.dtype, t.shape, bytes[i]});
    }
    ASSERT_THAT(WriteSafetensorsFile(file, tensors, meta), IsOk());
  };
  rewrite("architecture", "relu6", false);
  EXPECT_THAT(ReadCanonical(file),
              StatusIs(kInvalid, AllOf(HasSubstr("'architecture'"), HasSubstr("relu6"))));
  rewrite("d_in", "two", false);
  EXPECT_THAT(ReadCanonical(file), StatusIs(kInvalid, HasSubstr("'d_in' = \"two\"")));
  rewrite("d_in", "3", false);
  EXPECT_THAT(ReadCanonical(file), StatusIs(kInvalid, HasSubstr("expected [3,3]")));
  rewrite("apply_b_dec_to_input", "yes", false);
  EXPECT_THAT(ReadCanonical(file), StatusIs(kInvalid, HasSubstr("true or false")));
  rewrite("", "", true);
  EXPECT_THAT(ReadCanonical(file),
              StatusIs(kInvalid, AllOf(HasSubstr("'b_dec'"), HasSubstr("[1]"))));
  rewrite("k", "5", false);
  EXPECT_THAT(ReadCanonical(file), StatusIs(kInvalid, HasSubstr("k must be in")));
}

}  // namespace
}  // namespace saedict::formats
