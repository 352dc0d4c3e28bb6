// DictionaryContentSha256 (see content_hash.h), with util/sha256.h.
#include "engine/content_hash.h"

#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "util/sha256.h"

namespace saedict::engine {
namespace {

static_assert(std::endian::native == std::endian::little, "floats are hashed as stored");

// Sha256 with the framing of the content hash: sizes before payloads.
class ContentSha256 {
 public:
  void Add(const void* data, size_t size) { sha_.Add(data, size); }
  void AddU64(uint64_t v) { Add(&v, sizeof(v)); }
  void AddString(std::string_view s) {
    AddU64(s.size());
    Add(s.data(), s.size());
  }
  void AddTensor(std::string_view name, const std::vector<float>& values) {
    AddString(name);
    AddU64(values.size());
    Add(values.data(), values.size() * sizeof(float));
  }
  std::string HexDigest() { return sha_.HexDigest(); }

 private:
  Sha256 sha_;
};

}  // namespace

std::string DictionaryContentSha256(const Dictionary& d) {
  const DictionaryConfig& c = d.config;
  ContentSha256 h;
  h.AddString("saedict-dictionary-content-v1");
  h.AddString(ArchitectureName(c.architecture));
  h.AddString(NormalizationName(c.normalization));
  h.AddU64(static_cast<uint64_t>(c.d_in));
  h.AddU64(static_cast<uint64_t>(c.d_sae));
  h.AddU64(static_cast<uint64_t>(static_cast<int64_t>(c.k)));
  h.AddU64(c.apply_b_dec_to_input ? 1 : 0);
  h.AddU64(c.rescale_acts_by_decoder_norm ? 1 : 0);
  h.AddU64(std::bit_cast<uint32_t>(c.mp_residual_threshold));
  h.AddTensor("w_enc", d.w_enc);
  h.AddTensor("b_enc", d.b_enc);
  h.AddTensor("w_dec", d.w_dec);
  h.AddTensor("b_dec", d.b_dec);
  h.AddTensor("threshold", d.threshold);
  h.AddTensor("b_gate", d.b_gate);
  h.AddTensor("b_mag", d.b_mag);
  h.AddTensor("r_mag", d.r_mag);
  if (c.is_transcoder()) {  // added only for transcoders: SAE hashes stay as they were
    h.AddString("transcoder");
    h.AddU64(static_cast<uint64_t>(c.d_out));
    h.AddTensor("w_skip", d.w_skip);
  }
  return h.HexDigest();
}

}  // namespace saedict::engine
