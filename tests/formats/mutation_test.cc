// Robustness: thousands of randomly damaged safetensors, .npy and .npz/zip
// files (bytes flipped, overwritten with extreme values, truncated, grown)
// must parse or fail with a Status, never crash or read out of bounds. Most
// useful under -fsanitize=address,undefined. Deterministic seeds.
#include <cstdlib>
#include <random>

#include "formats/codecs/npy.h"
#include "formats/codecs/npz.h"
#include "formats/codecs/safetensors.h"
#include "formats/codecs/zip.h"
#include "gtest/gtest.h"
#include "tests/formats/codecs/zip_builder.h"
#include "tests/formats/sae_fixtures.h"

namespace saedict::formats {
namespace {

// SAEDICT_MUTATION_ROUNDS overrides the number of damaged copies per seed.
int Rounds() {
  const char* env = std::getenv("SAEDICT_MUTATION_ROUNDS");
  return env != nullptr ? std::atoi(env) : 3000;
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

void Exercise(const std::string& bytes) {
  if (auto st = SafetensorsFile::Parse(bytes, "m"); st.ok()) {
    for (const auto& t : st->tensors()) (void)st->ReadF32(t.name);
  }
  if (auto npy = ParseNpy(bytes, "m"); npy.ok()) {
    (void)NpyToFloat32(*npy, "m");
    (void)NpyToInt64(*npy, "m");
  }
  if (auto zip = ZipReader::Parse(bytes, "m"); zip.ok()) {
    for (const auto& e : zip->entries()) (void)zip->Extract(e);
  }
}

TEST(FormatsMutationTest, DamagedFilesNeverCrash) {
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
  for (const std::string& seed : seeds) {
    Exercise(seed);
    for (int i = 0; i < Rounds(); ++i) Exercise(Mutate(seed, rng));
  }
  SUCCEED();
}

}  // namespace
}  // namespace saedict::formats
