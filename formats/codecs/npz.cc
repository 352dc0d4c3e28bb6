// NumPy .npz reader and writer (see npz.h).
#include "formats/codecs/npz.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "formats/codecs/file_io.h"
#include "util/status_macros.h"

namespace saedict::formats {
namespace {
constexpr absl::string_view kSuffix = ".npy";
}  // namespace

absl::StatusOr<NpyArray> ReadNpzArray(const ZipReader& zip, absl::string_view name) {
  const std::string entry_name = absl::StrCat(name, kSuffix);
  const ZipEntry* entry = zip.Find(entry_name);
  if (entry == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(zip.label(), ": missing array '", name, "' (entry ", entry_name, ")"));
  }
  SAEDICT_ASSIGN_OR_RETURN(std::string bytes, zip.Extract(*entry));
  return ParseNpy(std::move(bytes), absl::StrCat(zip.label(), ": array '", name, "'"));
}

namespace {

absl::StatusOr<std::map<std::string, NpyArray>> ReadAllArrays(const ZipReader& zip) {
  std::map<std::string, NpyArray> out;
  for (const ZipEntry& e : zip.entries()) {
    if (!absl::EndsWith(e.name, kSuffix)) continue;
    const std::string name = e.name.substr(0, e.name.size() - kSuffix.size());
    SAEDICT_ASSIGN_OR_RETURN(out[name], ReadNpzArray(zip, name));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::map<std::string, NpyArray>> ParseNpz(std::string bytes, std::string label) {
  SAEDICT_ASSIGN_OR_RETURN(ZipReader zip, ZipReader::Parse(std::move(bytes), std::move(label)));
  return ReadAllArrays(zip);
}

absl::StatusOr<std::map<std::string, NpyArray>> ReadNpzFile(const std::filesystem::path& path) {
  SAEDICT_ASSIGN_OR_RETURN(ZipReader zip, ZipReader::Open(path));
  return ReadAllArrays(zip);
}

absl::StatusOr<std::string> SerializeNpz(const std::map<std::string, NpyArray>& arrays) {
  std::vector<std::string> files;
  files.reserve(arrays.size());
  std::vector<std::pair<std::string, absl::string_view>> entries;
  for (const auto& [name, array] : arrays) {
    auto npy = SerializeNpy(array);
    if (!npy.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("array '", name, "': ", npy.status().message()));
    }
    files.push_back(std::move(*npy));
  }
  size_t i = 0;
  for (const auto& [name, array] : arrays) {
    entries.emplace_back(absl::StrCat(name, kSuffix), files[i++]);
  }
  return BuildStoredZip(entries);
}

absl::Status WriteNpzFile(const std::filesystem::path& path,
                          const std::map<std::string, NpyArray>& arrays) {
  SAEDICT_ASSIGN_OR_RETURN(std::string bytes, SerializeNpz(arrays));
  return WriteFileAtomically(path, bytes);
}

}  // namespace saedict::formats
