// Tests of the zip reader / stored writer and the .npz layer: stored and
// deflate entries (deflate produced here with zlib), zip64 records, and
// rejection of truncated, corrupt or hostile archives.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "formats/codecs/file_io.h"
#include "formats/codecs/npz.h"
#include "formats/codecs/zip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/formats/codecs/zip_builder.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/test_env.h"

namespace saedict::formats {
namespace {

using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using test::BuildZip;
using test::TestEntry;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

MATCHER_P(HoldsValue, value, "is OK and holds the value") {
  if (!arg.ok()) *result_listener << "status is " << arg.status();
  return arg.ok() && *arg == value;
}

std::string Repeat(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>("abcab"[i % 5]));
  return s;
}

// Every ZipTest runs twice: on archives in memory (ZipReader::Parse) and on
// archives in a file (ZipReader::Open, which reads entries with pread).
enum class Source { kMemory, kFile };

class ZipTest : public ::testing::TestWithParam<Source> {
 protected:
  absl::StatusOr<ZipReader> Read(const std::string& zip) {
    if (GetParam() == Source::kMemory) return ZipReader::Parse(zip, "t.zip");
    const std::filesystem::path file = dir_.path() / "t.zip";
    if (absl::Status s = WriteFileAtomically(file, zip); !s.ok()) return s;
    return ZipReader::Open(file);
  }

  absl::StatusOr<std::string> ExtractOnly(const std::string& zip, const std::string& name) {
    auto reader = Read(zip);
    if (!reader.ok()) return reader.status();
    const ZipEntry* e = reader->Find(name);
    if (e == nullptr) return absl::NotFoundError(name);
    return reader->Extract(*e);
  }

  testing::ScratchDir dir_;
};

TEST_P(ZipTest, ReadsStoredAndDeflateEntries) {
  const std::string big = Repeat(100000);
  const std::string zip = BuildZip({{"a.txt", "hello"}, {"b.bin", big, true}, {"empty", "", true}});
  SAEDICT_ASSERT_OK_AND_ASSIGN(ZipReader reader, Read(zip));
  ASSERT_EQ(reader.entries().size(), 3u);
  EXPECT_EQ(reader.entries()[1].method, 8);
  EXPECT_LT(reader.entries()[1].compressed_size, big.size() / 10);
  EXPECT_EQ(*reader.Extract(*reader.Find("a.txt")), "hello");
  EXPECT_EQ(*reader.Extract(*reader.Find("b.bin")), big);
  EXPECT_EQ(*reader.Extract(*reader.Find("empty")), "");
  EXPECT_EQ(reader.Find("c"), nullptr);
}

TEST_P(ZipTest, ReadsZip64RecordsAndExtraFields) {
  const std::string zip =
      BuildZip({{"x.npy", "stored", false, true}, {"y.npy", Repeat(5000), true, true}}, true);
  EXPECT_THAT(ExtractOnly(zip, "x.npy"), HoldsValue("stored"));
  EXPECT_THAT(ExtractOnly(zip, "y.npy"), HoldsValue(Repeat(5000)));
}

TEST_P(ZipTest, StoredWriterRoundTrips) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::string zip,
                               BuildStoredZip({{"one", "1"}, {"two", Repeat(3000)}, {"z", ""}}));
  EXPECT_THAT(ExtractOnly(zip, "one"), HoldsValue("1"));
  EXPECT_THAT(ExtractOnly(zip, "two"), HoldsValue(Repeat(3000)));
  EXPECT_THAT(ExtractOnly(zip, "z"), HoldsValue(""));
  EXPECT_THAT(BuildStoredZip({{"a", "1"}, {"a", "2"}}), StatusIs(kInvalid, HasSubstr("duplicate")));
  EXPECT_THAT(BuildStoredZip({{"", "1"}}), StatusIs(kInvalid, HasSubstr("empty")));
}

TEST_P(ZipTest, RejectsNonZipAndTruncatedArchives) {
  EXPECT_THAT(Read("short"), StatusIs(kInvalid, HasSubstr("t.zip")));
  EXPECT_THAT(Read(std::string(100, 'x')),
              StatusIs(kInvalid, HasSubstr("no end-of-central-directory")));
  const std::string zip = BuildZip({{"a", Repeat(1000)}});
  for (size_t cut : {size_t{1}, size_t{10}, zip.size() / 2, zip.size() - 30}) {
    EXPECT_THAT(Read(zip.substr(0, zip.size() - cut)), StatusIs(kInvalid, HasSubstr("t.zip")))
        << cut;
  }
  // The end record survives but the data before it is cut: bad offsets.
  std::string front_cut = zip.substr(500);
  EXPECT_THAT(Read(front_cut), StatusIs(kInvalid, HasSubstr("t.zip")));
}

TEST_P(ZipTest, RejectsOutOfRangeOffsets) {
  std::string zip = BuildZip({{"a", "data"}});
  std::string bad_cd = zip;
  const uint32_t far = 1u << 30;
  std::memcpy(bad_cd.data() + bad_cd.size() - 6, &far, 4);  // EOCD cd offset
  EXPECT_THAT(Read(bad_cd), StatusIs(kInvalid, HasSubstr("central directory")));
  // Local header offset (central entry offset 42) pointing past the file.
  const size_t cd = zip.find("PK\x01\x02");
  std::string bad_local = zip;
  std::memcpy(bad_local.data() + cd + 42, &far, 4);
  EXPECT_THAT(ExtractOnly(bad_local, "a"), StatusIs(kInvalid, HasSubstr("no local header")));
  // Compressed size running past the end of the file.
  std::string bad_size = zip;
  std::memcpy(bad_size.data() + cd + 20, &far, 4);
  std::memcpy(bad_size.data() + cd + 24, &far, 4);
  EXPECT_THAT(ExtractOnly(bad_size, "a"), StatusIs(kInvalid, HasSubstr("runs past")));
  // Name length running past the central directory.
  std::string bad_name = zip;
  const uint16_t long_name = 60000;
  std::memcpy(bad_name.data() + cd + 28, &long_name, 2);
  EXPECT_THAT(Read(bad_name), StatusIs(kInvalid, HasSubstr("overruns")));
}

TEST_P(ZipTest, RejectsCorruptData) {
  std::string zip = BuildZip({{"a", "stored data"}, {"d", Repeat(4000), true}});
  std::string flipped = zip;
  flipped[30 + 1 + 2] ^= 0x20;  // inside a's stored bytes
  EXPECT_THAT(ExtractOnly(flipped, "a"), StatusIs(kInvalid, HasSubstr("CRC-32 mismatch")));
  const size_t d_data = zip.find("d", 30 + 1 + 11 + 30) + 1;
  std::string bad_deflate = zip;
  for (size_t i = 0; i < 8; ++i) bad_deflate[d_data + i] = '\xff';
  EXPECT_THAT(ExtractOnly(bad_deflate, "d"), StatusIs(kInvalid, HasSubstr("entry 'd'")));
  // Declared uncompressed size smaller / larger than the stream.
  const size_t cd = zip.find("PK\x01\x02", zip.find("PK\x01\x02") + 1);
  for (uint32_t declared : {3999u, 4001u}) {
    std::string bad = zip;
    std::memcpy(bad.data() + cd + 24, &declared, 4);
    EXPECT_THAT(ExtractOnly(bad, "d"), StatusIs(kInvalid, HasSubstr("entry 'd'"))) << declared;
  }
  // A bomb: a huge declared size for a few compressed bytes is refused up front.
  std::string bomb = zip;
  const uint32_t huge = 0xfffffff0u;
  std::memcpy(bomb.data() + cd + 24, &huge, 4);
  EXPECT_THAT(ExtractOnly(bomb, "d"), StatusIs(kInvalid, HasSubstr("impossible")));
}

TEST_P(ZipTest, RejectsUnsupportedFeatures) {
  EXPECT_THAT(Read(BuildZip({{"a", "x", false, false, 1}})),
              StatusIs(kInvalid, HasSubstr("encrypted")));
  EXPECT_THAT(Read(BuildZip({{"a", "x", false, false, 0, 12}})),
              StatusIs(kInvalid, HasSubstr("compression method 12")));
  EXPECT_THAT(Read(BuildZip({{"a", "x"}, {"a", "y"}})),
              StatusIs(kInvalid, HasSubstr("duplicate entry 'a'")));
  std::string multi = BuildZip({{"a", "x"}});
  multi[multi.size() - 18] = 1;  // EOCD disk number
  EXPECT_THAT(Read(multi), StatusIs(kInvalid, HasSubstr("multi-disk")));
  std::string no_locator = BuildZip({{"a", "x"}});
  std::memset(no_locator.data() + no_locator.size() - 12, 0xff, 10);  // count, size, offset
  EXPECT_THAT(Read(no_locator), StatusIs(kInvalid, HasSubstr("zip64")));
}

TEST(ZipFileTest, FileThatShrinksAfterOpenFailsNamingTheEntry) {
  testing::ScratchDir dir;
  const std::filesystem::path file = dir.path() / "t.zip";
  ASSERT_THAT(WriteFileAtomically(file, BuildZip({{"a", Repeat(1000)}, {"d", Repeat(4000), true}})),
              IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(ZipReader reader, ZipReader::Open(file));
  std::filesystem::resize_file(file, 500);
  for (const char* name : {"a", "d"}) {
    EXPECT_THAT(reader.Extract(*reader.Find(name)),
                StatusIs(kInvalid,
                         AllOf(HasSubstr(file.string()),
                               HasSubstr(absl::StrCat("entry '", name, "'")), HasSubstr("shrank"))))
        << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Sources, ZipTest, ::testing::Values(Source::kMemory, Source::kFile),
                         [](const auto& info) {
                           return std::string(info.param == Source::kMemory ? "Memory" : "File");
                         });

TEST(NpzTest, FileRoundTrip) {
  testing::ScratchDir dir;
  std::map<std::string, NpyArray> arrays;
  arrays["weights"] = NpyFromFloat32({2, 2}, std::vector<float>{1, 2, 3, 4});
  arrays["ids"] = NpyFromInt64({3}, std::vector<int64_t>{7, 8, 9});
  ASSERT_THAT(WriteNpzFile(dir.path() / "a.npz", arrays), IsOk());
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto back, ReadNpzFile(dir.path() / "a.npz"));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_THAT(back["weights"].shape, ElementsAre(2, 2));
  EXPECT_THAT(*NpyToFloat32(back["weights"], "w"), ElementsAre(1.0f, 2.0f, 3.0f, 4.0f));
  EXPECT_THAT(*NpyToInt64(back["ids"], "ids"), ElementsAre(7, 8, 9));
  EXPECT_THAT(ReadNpzFile(dir.path() / "none.npz"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("none.npz")));
}

TEST(NpzTest, ReadsCompressedNpzAndIgnoresOtherEntries) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::string npy,
                               SerializeNpy(NpyFromFloat32({4}, std::vector<float>{1, 1, 1, 1})));
  const std::string zip = BuildZip({{"x.npy", npy, true}, {"readme.txt", "hi"}});
  SAEDICT_ASSERT_OK_AND_ASSIGN(auto arrays, ParseNpz(zip, "c.npz"));
  ASSERT_EQ(arrays.size(), 1u);
  EXPECT_THAT(*NpyToFloat32(arrays["x"], "x"), ElementsAre(1.0f, 1.0f, 1.0f, 1.0f));
  SAEDICT_ASSERT_OK_AND_ASSIGN(ZipReader reader, ZipReader::Parse(zip, "c.npz"));
  EXPECT_THAT(ReadNpzArray(reader, "y"),
              StatusIs(kInvalid, AllOf(HasSubstr("c.npz"), HasSubstr("missing array 'y'"))));
}

TEST(NpzTest, NamesTheArrayInNpyErrors) {
  const std::string zip = BuildZip({{"bad.npy", "not npy data"}});
  EXPECT_THAT(ParseNpz(zip, "c.npz"),
              StatusIs(kInvalid, AllOf(HasSubstr("c.npz: array 'bad'"), HasSubstr("npy"))));
  std::map<std::string, NpyArray> arrays;
  arrays["broken"] = NpyFromFloat32({2}, std::vector<float>{1, 2});
  arrays["broken"].shape = {5};
  EXPECT_THAT(SerializeNpz(arrays), StatusIs(kInvalid, HasSubstr("array 'broken'")));
}

}  // namespace
}  // namespace saedict::formats
