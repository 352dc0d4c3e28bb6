// Sha256: incremental SHA-256 (OpenSSL EVP) with a lowercase-hex digest, the
// one hashing helper of content hashes, index file checksums and token hashes.
// Thread safety: a Sha256 object is for one thread; Sha256Hex is pure.
#ifndef SAEDICT_UTIL_SHA256_H_
#define SAEDICT_UTIL_SHA256_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

struct evp_md_ctx_st;

namespace saedict {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Add(const void* data, size_t size);
  void Add(absl::string_view bytes) { Add(bytes.data(), bytes.size()); }
  // 64 lowercase hex digits; call once, last.
  std::string HexDigest();

 private:
  struct Free {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, Free> ctx_;
};

// SHA-256 of `bytes` as 64 lowercase hex digits.
std::string Sha256Hex(absl::string_view bytes);

// Whether `s` is exactly `digits` lowercase hex digits (a digest as
// HexDigest writes it, or a prefix of one such as an explanation id).
bool IsLowerHex(absl::string_view s, size_t digits);

}  // namespace saedict

#endif  // SAEDICT_UTIL_SHA256_H_
