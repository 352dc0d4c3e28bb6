// LoadDictionary / ListDictionaries / GetDictionary / DeleteDictionary through
// a real gRPC server: every format and architecture, and every error path
// with its exact code and the value named in the message.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "google/protobuf/util/message_differencer.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/server/grpc_test_fixture.h"
#include "tests/test_util/dictionary_info_compare.h"

namespace saedict::testing {
namespace {

namespace fs = std::filesystem;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using Arch = engine::Architecture;

struct FormatCase {
  const char* name;
  Arch arch;
  v1::SourceFormat write_format;
  std::string rel;             // where the files go
  std::string load_path;       // what the client asks for
  v1::SourceFormat requested;  // format in the request
  v1::Architecture expect_arch;
  int32_t expect_k;
};

void PrintTo(const FormatCase& c, std::ostream* os) { *os << c.name; }

class LoadFormatTest : public GrpcServerTest, public ::testing::WithParamInterface<FormatCase> {};

TEST_P(LoadFormatTest, LoadsAndDescribes) {
  const FormatCase& c = GetParam();
  WriteSae(c.rel, c.arch, c.write_format);
  v1::DictionaryInfo info;
  ASSERT_THAT(Load("sae-1", c.load_path, &info, false, c.requested), GrpcOk());
  EXPECT_EQ(info.id(), "sae-1");
  if (c.write_format == v1::SOURCE_FORMAT_SAELENS) {  // the others carry no metadata
    EXPECT_EQ(info.model_name(), "fixture-model");
    EXPECT_EQ(info.hook_name(), "blocks.0.hook_resid_pre");
  }
  EXPECT_EQ(info.d_in(), kDIn);
  EXPECT_EQ(info.d_sae(), kDSae);
  EXPECT_EQ(info.architecture(), c.expect_arch);
  EXPECT_EQ(info.k(), c.expect_k);
  EXPECT_EQ(info.normalization(), v1::NORMALIZATION_NONE);
  EXPECT_EQ(info.source_format(), c.write_format);
  EXPECT_EQ(info.source_path(), c.load_path);
  EXPECT_EQ(info.source_dtype(), v1::DTYPE_F32);
  EXPECT_GE(info.weight_bytes(), 2 * kDIn * kDSae * 4);
  EXPECT_GT(info.loaded_at().seconds(), 0);
  // Gemma Scope never subtracts b_dec; the others do.
  EXPECT_EQ(info.apply_b_dec_to_input(), c.write_format != v1::SOURCE_FORMAT_GEMMA_SCOPE);

  v1::GetDictionaryRequest get;
  get.set_id("sae-1");
  v1::GetDictionaryResponse got;
  ASSERT_THAT(stub_->GetDictionary(Ctx().get(), get, &got), GrpcOk());
  EXPECT_TRUE(::saedict::testing::SameStoredInfo(got.dictionary(), info)) << got.DebugString();

  v1::ListDictionariesResponse list;
  ASSERT_THAT(stub_->ListDictionaries(Ctx().get(), {}, &list), GrpcOk());
  ASSERT_EQ(list.dictionaries_size(), 1);
  EXPECT_TRUE(::saedict::testing::SameStoredInfo(list.dictionaries(0), info));
}

INSTANTIATE_TEST_SUITE_P(
    AllFormats, LoadFormatTest,
    ::testing::Values(
        FormatCase{"SaeLensStandard", Arch::kStandard, v1::SOURCE_FORMAT_SAELENS, "std", "std",
                   v1::SOURCE_FORMAT_AUTO, v1::ARCHITECTURE_STANDARD, 0},
        FormatCase{"SaeLensTopK", Arch::kTopK, v1::SOURCE_FORMAT_SAELENS, "a/topk", "a/topk",
                   v1::SOURCE_FORMAT_AUTO, v1::ARCHITECTURE_TOPK, GrpcServerTest::kK},
        FormatCase{"SaeLensJumpReLU", Arch::kJumpReLU, v1::SOURCE_FORMAT_SAELENS, "jr", "jr",
                   v1::SOURCE_FORMAT_SAELENS, v1::ARCHITECTURE_JUMPRELU, 0},
        FormatCase{"SaeLensGated", Arch::kGated, v1::SOURCE_FORMAT_SAELENS, "gated", "gated",
                   v1::SOURCE_FORMAT_AUTO, v1::ARCHITECTURE_GATED, 0},
        FormatCase{"SparsifyTopK", Arch::kTopK, v1::SOURCE_FORMAT_SPARSIFY, "sp", "sp",
                   v1::SOURCE_FORMAT_AUTO, v1::ARCHITECTURE_TOPK, GrpcServerTest::kK},
        FormatCase{"SparsifyExplicit", Arch::kTopK, v1::SOURCE_FORMAT_SPARSIFY, "sp", "sp",
                   v1::SOURCE_FORMAT_SPARSIFY, v1::ARCHITECTURE_TOPK, GrpcServerTest::kK},
        FormatCase{"GemmaScopeNpz", Arch::kJumpReLU, v1::SOURCE_FORMAT_GEMMA_SCOPE, "gs.npz",
                   "gs.npz", v1::SOURCE_FORMAT_AUTO, v1::ARCHITECTURE_JUMPRELU, 0},
        FormatCase{"GemmaScopeFolder", Arch::kJumpReLU, v1::SOURCE_FORMAT_GEMMA_SCOPE,
                   "gs/params.npz", "gs", v1::SOURCE_FORMAT_GEMMA_SCOPE, v1::ARCHITECTURE_JUMPRELU,
                   0}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(GrpcServerTest, LoadByAbsolutePathInsideRoot) {
  WriteSae("abs", Arch::kTopK);
  v1::DictionaryInfo info;
  const std::string path = (root_ / "abs").string();
  ASSERT_THAT(Load("abs", path, &info), GrpcOk());
  EXPECT_EQ(info.source_path(), path);
}

TEST_F(GrpcServerTest, F16WeightsReportTheirDType) {
  engine::Dictionary d = RandomDictionary(Arch::kTopK, kDIn, kDSae, kK, 3);
  ASSERT_TRUE(WriteSaeLensFolder(root_ / "half", d, formats::DType::kF16).ok());
  ASSERT_TRUE(WriteSaeLensFolder(root_ / "bhalf", d, formats::DType::kBF16).ok());
  v1::DictionaryInfo info;
  ASSERT_THAT(Load("half", "half", &info), GrpcOk());
  EXPECT_EQ(info.source_dtype(), v1::DTYPE_F16);
  ASSERT_THAT(Load("bhalf", "bhalf", &info), GrpcOk());
  EXPECT_EQ(info.source_dtype(), v1::DTYPE_BF16);
}

TEST_F(GrpcServerTest, SecondLoadOfSameIdIsAlreadyExists) {
  WriteSae("one", Arch::kTopK);
  WriteSae("two", Arch::kStandard);
  v1::DictionaryInfo first;
  ASSERT_THAT(Load("dup", "one", &first), GrpcOk());
  EXPECT_THAT(Load("dup", "two"), GrpcStatusIs(grpc::StatusCode::ALREADY_EXISTS,
                                               AllOf(HasSubstr("'dup'"), HasSubstr("replace"))));
  v1::GetDictionaryRequest get;
  get.set_id("dup");
  v1::GetDictionaryResponse got;
  ASSERT_THAT(stub_->GetDictionary(Ctx().get(), get, &got), GrpcOk());
  EXPECT_TRUE(::saedict::testing::SameStoredInfo(got.dictionary(), first))
      << "the first load survives";
}

TEST_F(GrpcServerTest, ReplaceSwapsTheDictionary) {
  WriteSae("one", Arch::kTopK, v1::SOURCE_FORMAT_SAELENS, 1);
  WriteSae("two", Arch::kStandard, v1::SOURCE_FORMAT_SAELENS, 2);
  ASSERT_THAT(Load("swap", "one"), GrpcOk());
  v1::DictionaryInfo info;
  ASSERT_THAT(Load("swap", "two", &info, /*replace=*/true), GrpcOk());
  EXPECT_EQ(info.architecture(), v1::ARCHITECTURE_STANDARD);
  EXPECT_EQ(info.source_path(), "two");
  EXPECT_THAT(ListIds(), ElementsAre("swap"));
  // Encoding now uses the new weights.
  const std::vector<float> x = RandomActivations(9, kDIn, 5);
  v1::EncodeResponse response;
  ASSERT_THAT(EncodeRows("swap", x, 9, kDIn, &response), GrpcOk());
  auto expected = ReferenceEncoder("two")->Encode(x, 9);
  ASSERT_TRUE(expected.ok()) << expected.status();
  ExpectSameCodes(CodesOf(response.codes()), expected->codes, 0.0f, "replaced dictionary");
  // Replacing an id that does not exist yet is a plain load.
  ASSERT_THAT(Load("fresh", "one", nullptr, /*replace=*/true), GrpcOk());
  EXPECT_THAT(ListIds(), UnorderedElementsAre("swap", "fresh"));
}

class BadIdTest : public GrpcServerTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(BadIdTest, InvalidArgumentNamingTheId) {
  WriteSae("sae", Arch::kTopK);
  EXPECT_THAT(Load(GetParam(), "sae"),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                           AllOf(HasSubstr("id"), HasSubstr("'" + GetParam() + "'"))));
  EXPECT_THAT(ListIds(), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(Ids, BadIdTest,
                         ::testing::Values("", ".", "..", "a/b", "../x", "has space", "tab\tid",
                                           "semi;colon", "caf\xc3\xa9", std::string(129, 'a')));

TEST_F(GrpcServerTest, LongestValidIdIsAccepted) {
  WriteSae("sae", Arch::kTopK);
  EXPECT_THAT(Load(std::string(128, 'Z'), "sae"), GrpcOk());
  EXPECT_THAT(Load("a.b_c-D9", "sae"), GrpcOk());
}

TEST_F(GrpcServerTest, PathsOutsideTheRootArePermissionDenied) {
  // A perfectly good SAE that lies next to, not under, the root.
  ASSERT_TRUE(WriteSaeLensFolder(scratch_.path() / "outside",
                                 RandomDictionary(Arch::kTopK, kDIn, kDSae, kK, 1))
                  .ok());
  fs::create_directory_symlink(scratch_.path() / "outside", root_ / "link");
  const std::string absolute = (scratch_.path() / "outside").string();
  for (const std::string& path :
       {std::string("../outside"), absolute, std::string("link"), std::string("x/../../outside")}) {
    EXPECT_THAT(Load("escape", path),
                GrpcStatusIs(grpc::StatusCode::PERMISSION_DENIED,
                             AllOf(HasSubstr(path), HasSubstr("outside the root"))))
        << path;
  }
  EXPECT_THAT(ListIds(), IsEmpty());
}

TEST_F(GrpcServerTest, UnloadableFormatIsInvalidArgument) {
  ASSERT_TRUE(
      WriteSaeLensFolder(root_ / "sae", RandomDictionary(Arch::kTopK, kDIn, kDSae, kK, 1)).ok());
  EXPECT_THAT(Load("f", "sae", nullptr, false, v1::SOURCE_FORMAT_BUILTIN),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                           AllOf(HasSubstr("format"), HasSubstr("SOURCE_FORMAT_BUILTIN"))));
  EXPECT_THAT(Load("f", "sae", nullptr, false, static_cast<v1::SourceFormat>(99)),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("99")));
  EXPECT_THAT(ListIds(), IsEmpty());
}

TEST_F(GrpcServerTest, MissingPathIsNotFound) {
  EXPECT_THAT(Load("m", "no/such/sae"),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("no/such/sae")));
  fs::create_directories(root_ / "empty_dir");
  EXPECT_THAT(Load("m", "empty_dir"),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("empty_dir")));
  EXPECT_THAT(Load("m", ""), GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("path")));
  EXPECT_THAT(ListIds(), IsEmpty());
}

// Damages a freshly written SAELens folder; the load must fail with
// INVALID_ARGUMENT naming the file and leave nothing behind.
struct MalformedCase {
  const char* name;
  void (*damage)(const fs::path& dir);
  const char* message_part;
};

void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.name; }

void Truncate(const fs::path& file, uintmax_t keep) { fs::resize_file(file, keep); }

class MalformedTest : public GrpcServerTest, public ::testing::WithParamInterface<MalformedCase> {};

TEST_P(MalformedTest, InvalidArgumentAndNothingStored) {
  WriteSae("good", Arch::kTopK);
  ASSERT_THAT(Load("good", "good"), GrpcOk());
  WriteSae("bad", Arch::kTopK);
  GetParam().damage(root_ / "bad");
  const auto files_before =
      std::distance(fs::directory_iterator(data_dir_ / "dictionaries"), fs::directory_iterator());
  EXPECT_THAT(Load("bad", "bad"),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr(GetParam().message_part)));
  EXPECT_THAT(ListIds(), ElementsAre("good"));
  v1::GetDictionaryRequest get;
  get.set_id("bad");
  v1::GetDictionaryResponse got;
  EXPECT_THAT(stub_->GetDictionary(Ctx().get(), get, &got),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("bad")));
  EXPECT_EQ(
      std::distance(fs::directory_iterator(data_dir_ / "dictionaries"), fs::directory_iterator()),
      files_before)
      << "a failed load left a canonical weights file behind";
  // The id is free again once the files are fixed.
  WriteSae("bad", Arch::kTopK);
  EXPECT_THAT(Load("bad", "bad"), GrpcOk());
}

INSTANTIATE_TEST_SUITE_P(
    Damage, MalformedTest,
    ::testing::Values(
        MalformedCase{"TruncatedSafetensors",
                      [](const fs::path& d) {
                        Truncate(d / "sae_weights.safetensors",
                                 fs::file_size(d / "sae_weights.safetensors") - 100);
                      },
                      "sae_weights.safetensors"},
        MalformedCase{"SafetensorsHeaderOnly",
                      [](const fs::path& d) { Truncate(d / "sae_weights.safetensors", 4); },
                      "sae_weights.safetensors"},
        MalformedCase{"CfgNotJson",
                      [](const fs::path& d) { std::ofstream(d / "cfg.json") << "{not json"; },
                      "cfg.json"},
        MalformedCase{"CfgWrongDIn",
                      [](const fs::path& d) {
                        std::ofstream(d / "cfg.json")
                            << R"({"architecture":"topk","d_in":17,"d_sae":64,"k":4,)"
                               R"("dtype":"float32","apply_b_dec_to_input":true,)"
                               R"("normalize_activations":"none"})";
                      },
                      "17"},
        MalformedCase{"CfgUnknownArchitecture",
                      [](const fs::path& d) {
                        std::ofstream(d / "cfg.json")
                            << R"({"architecture":"quantum","d_in":16,"d_sae":64,)"
                               R"("dtype":"float32","apply_b_dec_to_input":true,)"
                               R"("normalize_activations":"none"})";
                      },
                      "quantum"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(GrpcServerTest, ListStartsEmptyAndGrows) {
  EXPECT_THAT(ListIds(), IsEmpty());
  WriteSae("t", Arch::kTopK);
  WriteSae("s", Arch::kStandard);
  ASSERT_THAT(Load("b", "t"), GrpcOk());
  ASSERT_THAT(Load("a", "s"), GrpcOk());
  ASSERT_THAT(Load("c", "t"), GrpcOk());
  EXPECT_THAT(ListIds(), UnorderedElementsAre("a", "b", "c"));
}

TEST_F(GrpcServerTest, GetUnknownIsNotFound) {
  v1::GetDictionaryRequest get;
  get.set_id("nope");
  v1::GetDictionaryResponse got;
  EXPECT_THAT(stub_->GetDictionary(Ctx().get(), get, &got),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("'nope'")));
}

TEST_F(GrpcServerTest, DeleteRemovesEverything) {
  WriteSae("t", Arch::kTopK);
  ASSERT_THAT(Load("del", "t"), GrpcOk());
  ASSERT_THAT(Load("other", "t"), GrpcOk());
  v1::DeleteDictionaryRequest del;
  del.set_id("del");
  v1::DeleteDictionaryResponse deleted;
  ASSERT_THAT(stub_->DeleteDictionary(Ctx().get(), del, &deleted), GrpcOk());
  EXPECT_THAT(ListIds(), ElementsAre("other"));

  v1::GetDictionaryRequest get;
  get.set_id("del");
  v1::GetDictionaryResponse got;
  EXPECT_THAT(stub_->GetDictionary(Ctx().get(), get, &got),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("'del'")));
  EXPECT_THAT(stub_->DeleteDictionary(Ctx().get(), del, &deleted),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("'del'")));
  // The encoder is gone for new requests.
  const std::vector<float> x = RandomActivations(2, kDIn, 1);
  v1::EncodeResponse response;
  EXPECT_THAT(EncodeRows("del", x, 2, kDIn, &response),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("'del'")));
  v1::DecodeRequest decode;
  decode.set_dictionary_id("del");
  v1::DecodeResponse decoded;
  EXPECT_THAT(stub_->Decode(Ctx().get(), decode, &decoded),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("'del'")));
  EXPECT_THAT(EncodeRows("other", x, 2, kDIn, &response), GrpcOk());
  // One canonical file is left: the other dictionary's.
  EXPECT_EQ(
      std::distance(fs::directory_iterator(data_dir_ / "dictionaries"), fs::directory_iterator()),
      1);
  // The id can be used again.
  EXPECT_THAT(Load("del", "t"), GrpcOk());
}

TEST_F(GrpcServerTest, DeleteUnknownIsNotFound) {
  v1::DeleteDictionaryRequest del;
  del.set_id("ghost");
  v1::DeleteDictionaryResponse deleted;
  EXPECT_THAT(stub_->DeleteDictionary(Ctx().get(), del, &deleted),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("'ghost'")));
}

}  // namespace
}  // namespace saedict::testing
