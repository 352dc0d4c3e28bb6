// Tests of LoadDictionary with LoadOptions::root: every file a loader opens
// (SAELens cfg.json, sae_weights.safetensors, activation_scaler.json;
// sparsify cfg.json, sae.safetensors; Gemma Scope params.npz) must resolve
// inside the root, at every level: the folder named, a folder on the way to
// it, a file inside it, a link target passing through a folder link. Links
// that stay inside the root load.
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "formats/codecs/file_io.h"
#include "formats/dictionary_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::formats {
namespace {

namespace fs = std::filesystem;
using engine::Architecture;
using engine::Dictionary;
using ::saedict::testing::CompareDictionaries;
using ::saedict::testing::IsOk;
using ::saedict::testing::RandomDictionary;
using ::saedict::testing::ScratchDir;
using ::saedict::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

enum class Layout { kSaeLens, kSparsify, kGemmaScope };

struct LayoutCase {
  const char* name;
  Layout layout;
  std::vector<std::string> files;  // what the loader reads from the folder
};

void PrintTo(const LayoutCase& c, std::ostream* os) { *os << c.name; }

// <s>/root/ holds SAEs, <s>/outside/ holds the SAE (or its files) the links
// lead to.
class ConfinedLoadTest : public ::testing::TestWithParam<LayoutCase> {
 protected:
  void SetUp() override {
    root_ = scratch_.path() / "root";
    outside_ = scratch_.path() / "outside";
    fs::create_directories(root_);
    fs::create_directories(outside_);
    canonical_root_ = fs::canonical(root_);
    const Layout layout = GetParam().layout;
    dict_ = RandomDictionary(
        layout == Layout::kGemmaScope ? Architecture::kJumpReLU : Architecture::kTopK, 8, 32, 4, 3);
    if (layout == Layout::kGemmaScope) dict_.config.apply_b_dec_to_input = false;
    if (layout != Layout::kSaeLens) {  // these formats carry no names
      dict_.config.model_name.clear();
      dict_.config.hook_name.clear();
    }
  }

  // An SAE folder of this test's layout at `dir`.
  void WriteSae(const fs::path& dir) {
    switch (GetParam().layout) {
      case Layout::kSaeLens:
        ASSERT_THAT(testing::WriteSaeLensFolder(dir, dict_), IsOk());
        break;
      case Layout::kSparsify:
        ASSERT_THAT(testing::WriteSparsifyFolder(dir, dict_), IsOk());
        break;
      case Layout::kGemmaScope:
        fs::create_directories(dir);
        ASSERT_THAT(testing::WriteGemmaScopeNpz(dir / "params.npz", dict_), IsOk());
        break;
    }
  }

  SourceFormat Format() const {
    switch (GetParam().layout) {
      case Layout::kSaeLens:
        return SourceFormat::kSaeLens;
      case Layout::kSparsify:
        return SourceFormat::kSparsify;
      case Layout::kGemmaScope:
        return SourceFormat::kGemmaScope;
    }
    return SourceFormat::kAuto;
  }

  // kAuto probes the files while detecting the format; the explicit format
  // goes straight to the loader, so its own opens are checked too.
  absl::StatusOr<LoadedDictionary> Load(const fs::path& path, bool detect) {
    return LoadDictionary(
        path, LoadOptions{.format = detect ? SourceFormat::kAuto : Format(), .root = root_});
  }

  void ExpectLoads(const fs::path& path) {
    for (bool detect : {true, false}) {
      absl::StatusOr<LoadedDictionary> loaded = Load(path, detect);
      ASSERT_THAT(loaded.status(), IsOk()) << path << " detect=" << detect;
      EXPECT_THAT(CompareDictionaries(loaded->dictionary, dict_, 1e-6f), IsOk());
    }
  }

  // PERMISSION_DENIED naming `file` (the path as the loader builds it) and
  // the root.
  void ExpectDenied(const fs::path& path, const fs::path& file) {
    for (bool detect : {true, false}) {
      EXPECT_THAT(Load(path, detect),
                  StatusIs(absl::StatusCode::kPermissionDenied,
                           AllOf(HasSubstr(file.string()), HasSubstr(canonical_root_.string()),
                                 HasSubstr("outside the root"))))
          << "loading " << path << " detect=" << detect;
    }
  }

  ScratchDir scratch_;
  fs::path root_, outside_, canonical_root_;
  Dictionary dict_;
};

TEST_P(ConfinedLoadTest, PlainFolderInsideLoads) {
  WriteSae(root_ / "sae");
  ExpectLoads(root_ / "sae");
}

TEST_P(ConfinedLoadTest, FolderThatIsASymlinkOutIsDenied) {
  WriteSae(outside_ / "sae");
  fs::create_directory_symlink(outside_ / "sae", root_ / "sae");
  ExpectDenied(root_ / "sae", root_ / "sae");
}

TEST_P(ConfinedLoadTest, NestedFolderComponentThatIsASymlinkOutIsDenied) {
  WriteSae(outside_ / "models" / "sae");
  fs::create_directories(root_ / "org");
  fs::create_directory_symlink(outside_ / "models", root_ / "org" / "models");
  ExpectDenied(root_ / "org" / "models" / "sae", root_ / "org" / "models" / "sae");
}

TEST_P(ConfinedLoadTest, EachFileThatIsASymlinkOutIsDenied) {
  for (const std::string& name : GetParam().files) {
    SCOPED_TRACE(name);
    const fs::path sae = root_ / absl::StrCat("sae_", name);
    WriteSae(sae);
    const fs::path away = outside_ / absl::StrCat("moved_", name);
    fs::rename(sae / name, away);
    fs::create_symlink(away, sae / name);
    ExpectDenied(sae, sae / name);
  }
}

TEST_P(ConfinedLoadTest, FileLinkThroughAFolderLinkOutIsDenied) {
  // The file's link stays "inside" lexically (../shared/...), but shared/ is
  // itself a link out.
  const std::string& name = GetParam().files.front();
  const fs::path sae = root_ / "sae";
  WriteSae(sae);
  fs::create_directories(outside_ / "store");
  fs::rename(sae / name, outside_ / "store" / name);
  fs::create_directory_symlink(outside_ / "store", root_ / "shared");
  fs::create_symlink(fs::path("..") / "shared" / name, sae / name);
  ExpectDenied(sae, sae / name);
}

TEST_P(ConfinedLoadTest, DanglingFileLinkOutIsDeniedNotNotFound) {
  const std::string& name = GetParam().files.front();
  const fs::path sae = root_ / "sae";
  WriteSae(sae);
  fs::remove(sae / name);
  fs::create_symlink(outside_ / "does_not_exist", sae / name);
  ExpectDenied(sae, sae / name);
}

TEST_P(ConfinedLoadTest, FileNamedDirectlyThatIsASymlinkOutIsDenied) {
  // LoadDictionary also accepts a file of the folder (cfg.json, params.npz).
  const std::string& name = GetParam().files.front();
  WriteSae(outside_ / "sae");
  fs::create_directories(root_ / "sae");
  fs::create_symlink(outside_ / "sae" / name, root_ / "sae" / name);
  ExpectDenied(root_ / "sae" / name, root_ / "sae" / name);
}

TEST_P(ConfinedLoadTest, SymlinksThatStayInsideLoad) {
  WriteSae(root_ / "store" / "real_sae");
  // The folder itself a link (absolute and relative) to a folder inside.
  fs::create_directory_symlink(root_ / "store" / "real_sae", root_ / "abs_alias");
  fs::create_directory_symlink(fs::path("store") / "real_sae", root_ / "rel_alias");
  ExpectLoads(root_ / "abs_alias");
  ExpectLoads(root_ / "rel_alias");
  // A nested component a link inside.
  fs::create_directories(root_ / "org");
  fs::create_directory_symlink(root_ / "store", root_ / "org" / "models");
  ExpectLoads(root_ / "org" / "models" / "real_sae");
  // Every file a link to a file elsewhere inside, through a folder link.
  fs::create_directory_symlink(fs::path("store") / "real_sae", root_ / "blobs");
  const fs::path linked = root_ / "linked_sae";
  fs::create_directories(linked);
  for (const std::string& name : GetParam().files) {
    fs::create_symlink(fs::path("..") / "blobs" / name, linked / name);
  }
  ExpectLoads(linked);
}

TEST_P(ConfinedLoadTest, WithoutARootLinksOutAreFollowed) {
  WriteSae(outside_ / "sae");
  fs::create_directory_symlink(outside_ / "sae", root_ / "sae");
  absl::StatusOr<LoadedDictionary> loaded = LoadDictionary(root_ / "sae");
  ASSERT_THAT(loaded.status(), IsOk());
  EXPECT_THAT(CompareDictionaries(loaded->dictionary, dict_, 1e-6f), IsOk());
}

INSTANTIATE_TEST_SUITE_P(
    Formats, ConfinedLoadTest,
    ::testing::Values(
        LayoutCase{"SaeLens", Layout::kSaeLens, {"cfg.json", "sae_weights.safetensors"}},
        LayoutCase{"Sparsify", Layout::kSparsify, {"cfg.json", "sae.safetensors"}},
        LayoutCase{"GemmaScope", Layout::kGemmaScope, {"params.npz"}}),
    [](const auto& info) { return std::string(info.param.name); });

// SAELens's optional activation_scaler.json is opened too.
TEST(ConfinedLoadScalerTest, ActivationScalerLinkOutIsDenied) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "root", outside = scratch.path() / "outside";
  fs::create_directories(outside);
  Dictionary d = RandomDictionary(Architecture::kStandard, 8, 32, 0, 5);
  ASSERT_THAT(testing::WriteSaeLensFolder(root / "sae", d), IsOk());
  // expected_average_only_in makes the loader look for the scaler file.
  {
    SAEDICT_ASSERT_OK_AND_ASSIGN(std::string cfg, ReadFileToString(root / "sae" / "cfg.json"));
    const std::string from = "\"normalize_activations\": \"none\"";
    const size_t at = cfg.find(from);
    ASSERT_NE(at, std::string::npos) << cfg;
    cfg.replace(at, from.size(), "\"normalize_activations\": \"expected_average_only_in\"");
    ASSERT_THAT(WriteFileAtomically(root / "sae" / "cfg.json", cfg), IsOk());
  }
  std::ofstream(outside / "scaler.json") << "{\"scaling_factor\": 2.0}";
  fs::create_symlink(outside / "scaler.json", root / "sae" / "activation_scaler.json");
  EXPECT_THAT(LoadDictionary(root / "sae", LoadOptions{.root = root}),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr((root / "sae" / "activation_scaler.json").string()),
                             HasSubstr(fs::canonical(root).string()))));
  // The same file inside the root is read (and folded in).
  fs::remove(root / "sae" / "activation_scaler.json");
  fs::copy_file(outside / "scaler.json", root / "sae" / "activation_scaler.json");
  SAEDICT_ASSERT_OK_AND_ASSIGN(LoadedDictionary loaded,
                               LoadDictionary(root / "sae", LoadOptions{.root = root}));
  EXPECT_NEAR(loaded.dictionary.w_enc[0], 2.0f * d.w_enc[0], 1e-5f);
}

TEST(ConfinedLoadRootTest, MissingRootIsNotFound) {
  ScratchDir scratch;
  EXPECT_THAT(LoadDictionary(scratch.path() / "sae", LoadOptions{.root = scratch.path() / "nope"}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
}

}  // namespace
}  // namespace saedict::formats
