// DelphiCacheWriter (layout and contract: delphi_cache.h).
#include "client/commands/delphi_cache.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "formats/codecs/json.h"
#include "formats/codecs/safetensors.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

namespace fs = std::filesystem;

absl::Status Protocol(absl::string_view what) {
  return absl::InternalError(absl::StrCat("export stream: ", what));
}

// The hookpoint as a folder name; a name that could leave DIR is refused.
bool SafeFolderName(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\\') == std::string::npos && s.find('\0') == std::string::npos;
}

absl::Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

}  // namespace

DelphiCacheWriter::DelphiCacheWriter(fs::path dir, std::string corpus, int32_t pad_token_id)
    : dir_(std::move(dir)), corpus_(std::move(corpus)), pad_token_id_(pad_token_id) {}

DelphiCacheWriter::~DelphiCacheWriter() {
  if (!finished_ && !partial_.empty()) {
    std::error_code ec;
    fs::remove_all(partial_, ec);
  }
}

fs::path DelphiCacheWriter::output_dir() const { return dir_ / header_.hookpoint(); }

absl::Status DelphiCacheWriter::Add(v1::ExportLatentsResponse&& m) {
  if (m.has_header()) {
    if (have_header_) return Protocol("a second header");
    header_ = m.header();
    if (!SafeFolderName(header_.hookpoint())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "hookpoint '", header_.hookpoint(), "' cannot be a folder name; export refused"));
    }
    if (header_.splits_size() == 0 || header_.ctx_len() <= 0) return Protocol("empty header");
    std::error_code ec;
    if (fs::exists(output_dir(), ec)) {
      return absl::AlreadyExistsError(absl::StrCat(
          output_dir().string(), " already exists; remove it or export to another DIR"));
    }
    partial_ = dir_ / ("." + header_.hookpoint() + ".partial");
    fs::remove_all(partial_, ec);
    fs::create_directories(partial_, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot create ", partial_.string(), ": ",
                                              ec.message()));
    }
    tokens_.reserve(static_cast<size_t>(header_.n_sequences()) * header_.ctx_len());
    have_header_ = true;
    return absl::OkStatus();
  }
  if (!have_header_) return Protocol("no header first");
  if (m.has_sequences()) {
    const auto& seq = m.sequences();
    if (split_ != 0 || !locations_.empty()) return Protocol("sequences after split chunks");
    if (seq.first() != static_cast<int64_t>(doc_ids_.size())) return Protocol("sequences out of order");
    const size_t want = static_cast<size_t>(seq.sequences_size()) * header_.ctx_len() * 4;
    if (seq.token_ids().size() != want) return Protocol("token_ids of the wrong size");
    for (const v1::ExportSequence& s : seq.sequences()) {
      doc_ids_.push_back(s.doc_id());
      offsets_.push_back(s.offset());
      lengths_.push_back(s.length());
    }
    const size_t n = seq.token_ids().size() / 4;
    const size_t at = tokens_.size();
    tokens_.resize(at + n);
    for (size_t i = 0; i < n; ++i) {
      int32_t id;
      std::memcpy(&id, seq.token_ids().data() + 4 * i, 4);
      tokens_[at + i] = id;
    }
    return absl::OkStatus();
  }
  if (!m.has_chunk()) return Protocol("an empty message");
  const auto& c = m.chunk();
  if (static_cast<int64_t>(doc_ids_.size()) != header_.n_sequences()) {
    return Protocol("split chunks before every sequence arrived");
  }
  if (c.split() != split_ || split_ >= header_.splits_size()) return Protocol("split out of order");
  if (c.locations().size() != c.activations().size() * 6 || c.locations().size() % 12 != 0) {
    return Protocol("locations and activations disagree");
  }
  const size_t n = c.activations().size() / 2;
  const size_t at = activations_.size();
  activations_.resize(at + n);
  std::memcpy(activations_.data() + at, c.activations().data(), n * 2);
  locations_.resize(locations_.size() + 3 * n);
  std::memcpy(locations_.data() + 3 * at, c.locations().data(), n * 12);
  if (c.last()) {
    SAEDICT_RETURN_IF_ERROR(WriteSplit());
    ++split_;
  }
  return absl::OkStatus();
}

absl::Status DelphiCacheWriter::WriteSplit() {
  const v1::ExportSplit& range = header_.splits(split_);
  const size_t n = activations_.size();
  // delphi's rule (uint16 when sequence and latent fit), plus the position.
  const bool small = std::all_of(locations_.begin(), locations_.end(),
                                 [](uint32_t v) { return v < (1u << 16); });
  std::string locations;
  if (small) {
    std::vector<uint16_t> narrow(locations_.begin(), locations_.end());
    locations.assign(reinterpret_cast<const char*>(narrow.data()), narrow.size() * 2);
  } else {
    locations.assign(reinterpret_cast<const char*>(locations_.data()), locations_.size() * 4);
  }
  const absl::string_view acts(reinterpret_cast<const char*>(activations_.data()), n * 2);
  const absl::string_view toks(reinterpret_cast<const char*>(tokens_.data()), tokens_.size() * 8);
  const fs::path file = partial_ / absl::StrCat(range.start(), "_", range.end(), ".safetensors");
  SAEDICT_RETURN_IF_ERROR(formats::WriteSafetensorsFile(
      file, {{"locations", small ? formats::StDType::kU16 : formats::StDType::kU32,
              {static_cast<int64_t>(n), 3}, locations},
             {"activations", formats::StDType::kF16, {static_cast<int64_t>(n)}, acts},
             {"tokens", formats::StDType::kI64, {header_.n_sequences(), header_.ctx_len()}, toks}}));
  entries_written_ += static_cast<int64_t>(n);
  locations_.clear();
  activations_.clear();
  return absl::OkStatus();
}

absl::Status DelphiCacheWriter::Finish() {
  if (!have_header_) return Protocol("ended before its header");
  if (split_ != header_.splits_size()) {
    return Protocol(absl::StrCat("ended after ", split_, " of ", header_.splits_size(), " splits"));
  }
  if (entries_written_ != header_.n_entries()) {
    return Protocol(absl::StrCat("sent ", entries_written_, " entries, the header says ",
                                 header_.n_entries()));
  }
  using formats::JsonQuote;
  const std::string config = absl::StrCat(
      "{\"dataset_repo\": \"saedict\", \"dataset_split\": ", JsonQuote(corpus_),
      ", \"dataset_name\": \"\", \"dataset_column\": \"\", \"batch_size\": 1",
      ", \"cache_ctx_len\": ", header_.ctx_len(), ", \"n_tokens\": ", header_.n_tokens(),
      ", \"n_splits\": ", header_.splits_size(), ", \"model_name\": ", JsonQuote(header_.model_name()),
      ", \"saedict\": {\"dictionary_id\": ", JsonQuote(header_.dictionary_id()),
      ", \"hookpoint\": ", JsonQuote(header_.hookpoint()),
      ", \"weights_sha256\": ", JsonQuote(header_.weights_sha256()), ", \"d_sae\": ", header_.d_sae(),
      ", \"corpus\": ", JsonQuote(corpus_), ", \"n_sequences\": ", header_.n_sequences(),
      ", \"n_entries\": ", header_.n_entries(), ", \"pad_token_id\": ", pad_token_id_, "}}\n");
  SAEDICT_RETURN_IF_ERROR(WriteText(partial_ / "config.json", config));
  SAEDICT_RETURN_IF_ERROR(WriteText(
      partial_ / "saedict_sequences.json",
      absl::StrCat("{\"doc_ids\": [", absl::StrJoin(doc_ids_, ", "), "], \"offsets\": [",
                   absl::StrJoin(offsets_, ", "), "], \"lengths\": [",
                   absl::StrJoin(lengths_, ", "), "]}\n")));
  std::error_code ec;
  fs::rename(partial_, output_dir(), ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot move ", partial_.string(), " to ",
                                            output_dir().string(), ": ", ec.message()));
  }
  finished_ = true;
  return absl::OkStatus();
}

}  // namespace saedict::client
