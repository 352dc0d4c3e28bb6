// Robustness: thousands of randomly damaged safetensors, .npy and .npz/zip
// files (bytes flipped, overwritten with extreme values, truncated, grown)
// and damaged SAE folders. Each damaged input is either rejected with a
// non-OK status whose message names the file (and, where one is involved,
// the tensor or entry), or accepted with contents that hold together (the
// right byte counts; a loaded dictionary that passes Validate()). The test
// counts both outcomes and requires the rejection branch to be exercised.
// Never crashing or reading out of bounds is checked best under
// -fsanitize=address,undefined. Deterministic seeds.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "formats/codecs/file_io.h"
#include "formats/codecs/npy.h"
#include "formats/codecs/npz.h"
#include "formats/codecs/safetensors.h"
#include "formats/codecs/zip.h"
#include "formats/dictionary_loader.h"
#include "gtest/gtest.h"
#include "tests/formats/codecs/zip_builder.h"
#include "tests/formats/sae_fixtures.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::formats {
namespace {

namespace fs = std::filesystem;
using ::saedict::testing::IsOk;

// SAEDICT_MUTATION_ROUNDS overrides the number of damaged copies per seed.
int Rounds(int default_rounds) {
  const char* env = std::getenv("SAEDICT_MUTATION_ROUNDS");
  return env != nullptr ? std::atoi(env) : default_rounds;
}

std::string Mutate(const std::string& in, std::mt19937_64& rng) {
  std::string s = in;
  auto pos = [&] { return std::uniform_int_distribution<size_t>(0, s.size() - 1)(rng); };
  const int kind = static_cast<int>(rng() % 5);
  const int count = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < count && !s.empty(); ++i) {
    switch (kind) {
      case 0:
        s[pos()] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1:
        s[pos()] = static_cast<char>(rng());
        break;
      case 2: {  // an extreme little-endian integer somewhere
        const size_t p = pos();
        const uint64_t v = (rng() % 2) ? ~uint64_t{0} : (uint64_t{1} << (rng() % 64));
        for (size_t b = 0; b < 8 && p + b < s.size(); ++b)
          s[p + b] = static_cast<char>(v >> (8 * b));
        break;
      }
      case 3:
        s.resize(pos());
        break;
      default:
        s.append(rng() % 64, static_cast<char>(rng()));
        break;
    }
  }
  return s;
}

// How often each outcome happened, per reader.
struct Outcomes {
  int rejected = 0;
  int accepted = 0;
};

// The label names the "file" in every message; distinctive so that a hit
// cannot be a coincidence.
constexpr absl::string_view kLabel = "damaged-input.bin";

// A rejection must name the file and, when given, `what` (tensor / entry).
void ExpectNames(const absl::Status& s, absl::string_view what, absl::string_view reader) {
  EXPECT_TRUE(absl::StrContains(s.message(), kLabel))
      << reader << ": message does not name the file: " << s;
  if (!what.empty()) {
    EXPECT_TRUE(absl::StrContains(s.message(), what))
        << reader << ": message does not name '" << what << "': " << s;
  }
}

void ExerciseCodecs(const std::string& bytes, std::map<std::string, Outcomes>* out) {
  const std::string label(kLabel);
  if (auto st = SafetensorsFile::Parse(bytes, label); !st.ok()) {
    ++(*out)["safetensors"].rejected;
    ExpectNames(st.status(), "", "safetensors");
  } else {
    ++(*out)["safetensors"].accepted;
    for (const SafetensorInfo& t : st->tensors()) {
      EXPECT_EQ(st->Data(t).size(), t.NumElements() * StDTypeSize(t.dtype)) << t.name;
      absl::StatusOr<std::vector<float>> f = st->ReadF32(t.name);
      if (f.ok()) {
        EXPECT_EQ(f->size(), t.NumElements()) << t.name;
      } else {
        ExpectNames(f.status(), absl::StrCat("'", t.name, "'"), "safetensors ReadF32");
      }
    }
  }
  if (auto npy = ParseNpy(bytes, label); !npy.ok()) {
    ++(*out)["npy"].rejected;
    ExpectNames(npy.status(), "", "npy");
  } else {
    ++(*out)["npy"].accepted;
    EXPECT_EQ(npy->data.size(), npy->NumElements() * NpyDTypeSize(npy->dtype));
    for (const absl::Status& s :
         {NpyToFloat32(*npy, label).status(), NpyToInt64(*npy, label).status()}) {
      if (!s.ok()) ExpectNames(s, "", "npy conversion");
    }
  }
  if (auto zip = ZipReader::Parse(bytes, label); !zip.ok()) {
    ++(*out)["zip"].rejected;
    ExpectNames(zip.status(), "", "zip");
  } else {
    bool all_entries = true;
    for (const ZipEntry& e : zip->entries()) {
      absl::StatusOr<std::string> data = zip->Extract(e);
      if (data.ok()) {
        EXPECT_EQ(data->size(), e.uncompressed_size) << e.name;
      } else {
        all_entries = false;
        ExpectNames(data.status(), absl::StrCat("entry '", e.name, "'"), "zip Extract");
      }
    }
    ++(all_entries ? (*out)["zip"].accepted : (*out)["zip"].rejected);
  }
}

TEST(FormatsMutationTest, DamagedFilesAreRejectedNamingTheFileOrReadConsistently) {
  const std::vector<float> w = testing::RandomActivations(6, 5, 1);
  const std::string f32(reinterpret_cast<const char*>(w.data()), w.size() * 4);
  std::vector<std::string> seeds;
  seeds.push_back(*SerializeSafetensors(
      {{"a", StDType::kF32, {6, 5}, f32}, {"b", StDType::kF16, {3}, f32.substr(0, 6)}},
      {{"k", "v"}}));
  seeds.push_back(*SerializeNpy(NpyFromFloat32({6, 5}, w)));
  std::map<std::string, NpyArray> arrays;
  arrays["x"] = NpyFromFloat32({30}, w);
  arrays["y"] = NpyFromInt32({2}, std::vector<int32_t>{1, 2});
  seeds.push_back(*SerializeNpz(arrays));
  seeds.push_back(test::BuildZip({{"d.npy", seeds[1], true}, {"s", "stored"}}));
  seeds.push_back(test::BuildZip({{"z.npy", seeds[1], true, true}}, true));
  std::mt19937_64 rng(12345);
  std::map<std::string, Outcomes> outcomes;
  const int rounds = Rounds(3000);
  for (const std::string& seed : seeds) {
    ExerciseCodecs(seed, &outcomes);
    for (int i = 0; i < rounds; ++i) ExerciseCodecs(Mutate(seed, rng), &outcomes);
  }
  for (const char* reader : {"safetensors", "npy", "zip"}) {
    const Outcomes& o = outcomes[reader];
    RecordProperty(absl::StrCat(reader, "_rejected"), o.rejected);
    RecordProperty(absl::StrCat(reader, "_accepted"), o.accepted);
    std::cout << reader << ": " << o.rejected << " rejected, " << o.accepted << " accepted\n";
    // Each reader sees its own format's seed intact plus damaged copies of it,
    // and every other seed: both branches must occur.
    EXPECT_GT(o.rejected, rounds) << reader;
    EXPECT_GT(o.accepted, 0) << reader;
  }
}

// Damaged SAE folders through LoadDictionary, each file of each format in
// turn. A rejection names a file of the SAE; an accepted load passes
// Validate().
TEST(FormatsMutationTest, DamagedSaeFoldersAreRejectedNamingAFileOrLoadValid) {
  testing::ScratchDir dir;
  engine::Dictionary topk = testing::RandomDictionary(engine::Architecture::kTopK, 6, 12, 3, 4);
  engine::Dictionary jump = testing::RandomDictionary(engine::Architecture::kJumpReLU, 6, 12, 0, 5);
  const fs::path saelens = dir.path() / "saelens", sparsify = dir.path() / "sparsify",
                 gemma = dir.path() / "gemma";
  ASSERT_THAT(testing::WriteSaeLensFolder(saelens, jump, DType::kF16), IsOk());
  ASSERT_THAT(testing::WriteSparsifyFolder(sparsify, topk), IsOk());
  fs::create_directories(gemma);
  ASSERT_THAT(testing::WriteGemmaScopeNpz(gemma / "params.npz", jump), IsOk());
  // Transcoders: a SAELens skip transcoder and a Gemma Scope 2 affine one.
  const engine::Dictionary transcoder =
      testing::RandomTranscoder(engine::Architecture::kJumpReLU, 6, 5, 12, true, 6);
  const fs::path saelens_tc = dir.path() / "saelens_tc",
                 gemma2_tc = dir.path() / "transcoder_all" / "layer_1_width_16k_affine";
  ASSERT_THAT(testing::WriteSaeLensFolder(saelens_tc, transcoder), IsOk());
  ASSERT_THAT(testing::WriteGemmaScope2Folder(gemma2_tc, transcoder), IsOk());
  const std::vector<std::pair<fs::path, std::vector<std::string>>> saes = {
      {saelens, {"cfg.json", "sae_weights.safetensors"}},
      {sparsify, {"cfg.json", "sae.safetensors"}},
      {gemma, {"params.npz"}},
      {saelens_tc, {"cfg.json", "sae_weights.safetensors"}},
      {gemma2_tc, {"params.safetensors"}}};
  std::mt19937_64 rng(777);
  const int rounds = Rounds(3000) / 10;
  for (const auto& [folder, files] : saes) {
    for (const std::string& name : files) {
      const fs::path file = folder / name;
      SAEDICT_ASSERT_OK_AND_ASSIGN(const std::string original, ReadFileToString(file));
      Outcomes o;
      for (int i = 0; i < rounds; ++i) {
        ASSERT_THAT(WriteFileAtomically(file, Mutate(original, rng)), IsOk());
        absl::StatusOr<LoadedDictionary> loaded = LoadDictionary(folder);
        if (!loaded.ok()) {
          ++o.rejected;
          bool names_a_file = false;
          for (const std::string& f : files) {
            names_a_file |= absl::StrContains(loaded.status().message(), (folder / f).string());
          }
          EXPECT_TRUE(names_a_file) << "round " << i << ": " << loaded.status();
        } else {
          ++o.accepted;
          EXPECT_THAT(loaded->dictionary.Validate(), IsOk()) << file << " round " << i;
        }
      }
      ASSERT_THAT(WriteFileAtomically(file, original), IsOk());
      ASSERT_THAT(LoadDictionary(folder).status(), IsOk()) << "restored " << file;
      RecordProperty(absl::StrCat(fs::path(folder).filename().string(), "_", name, "_rejected"),
                     o.rejected);
      RecordProperty(absl::StrCat(fs::path(folder).filename().string(), "_", name, "_accepted"),
                     o.accepted);
      std::cout << file.filename().string() << " of " << folder.filename().string() << ": "
                << o.rejected << " rejected, " << o.accepted << " accepted of " << rounds << "\n";
      // Most damage is fatal, and some must be seen to be.
      EXPECT_GT(o.rejected, rounds / 4) << file;
    }
  }
}

}  // namespace
}  // namespace saedict::formats
