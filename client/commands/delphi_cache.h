// DelphiCacheWriter: writes an ExportLatents stream as delphi's latent cache
// (EleutherAI/delphi, LatentCache.save_splits + save_config), so delphi's
// explainers and scorers read saedict's stored latents directly:
//
//   DIR/{hookpoint}/{start}_{end}.safetensors   one per latent range:
//       locations   [N, 3] uint16 when every value fits, else uint32:
//                   (sequence, position, latent - start), delphi's order
//       activations [N] float16
//       tokens      [n_sequences, ctx_len] int64 (padding: pad_token_id)
//   DIR/{hookpoint}/config.json                delphi's CacheConfig fields
//                   (cache_ctx_len, n_tokens, n_splits, ...) + model_name,
//                   and "saedict": dictionary, weights, corpus, counts
//   DIR/{hookpoint}/saedict_sequences.json     {"doc_ids", "offsets",
//                   "lengths"}: which document tokens each sequence holds
//
// Everything is written under DIR/.{hookpoint}.partial and renamed to
// DIR/{hookpoint} by Finish() once every split is complete, so an export
// that fails or is interrupted leaves no half-written cache (the partial
// folder is removed by the destructor). DIR/{hookpoint} must not exist yet.
//
// Thread safety: one stream, one thread.
#ifndef SAEDICT_CLIENT_COMMANDS_DELPHI_CACHE_H_
#define SAEDICT_CLIENT_COMMANDS_DELPHI_CACHE_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "saedict/v1/saedict.pb.h"

namespace saedict::client {

class DelphiCacheWriter {
 public:
  // `corpus` and `pad_token_id` are recorded in config.json.
  DelphiCacheWriter(std::filesystem::path dir, std::string corpus, int32_t pad_token_id);
  ~DelphiCacheWriter();
  DelphiCacheWriter(const DelphiCacheWriter&) = delete;
  DelphiCacheWriter& operator=(const DelphiCacheWriter&) = delete;

  // The next message of the stream; INTERNAL when the stream breaks the
  // protocol (no header first, sequences out of order, a split twice...).
  absl::Status Add(v1::ExportLatentsResponse&& message);
  // After the stream ended: checks that every sequence and split arrived,
  // writes config.json and moves the folder into place.
  absl::Status Finish();

  const v1::ExportLatentsResponse::Header& header() const { return header_; }
  int64_t entries_written() const { return entries_written_; }
  // The folder of the finished cache: DIR/{hookpoint}.
  std::filesystem::path output_dir() const;

 private:
  absl::Status WriteSplit();

  const std::filesystem::path dir_;
  const std::string corpus_;
  const int32_t pad_token_id_;
  bool have_header_ = false;
  v1::ExportLatentsResponse::Header header_;
  std::filesystem::path partial_;
  std::vector<int64_t> tokens_;  // [n_sequences * ctx_len]
  std::vector<uint64_t> doc_ids_;
  std::vector<uint32_t> offsets_, lengths_;
  int32_t split_ = 0;            // the split being received
  std::vector<uint32_t> locations_;
  std::vector<uint16_t> activations_;
  int64_t entries_written_ = 0;
  bool finished_ = false;
};

}  // namespace saedict::client

#endif  // SAEDICT_CLIENT_COMMANDS_DELPHI_CACHE_H_
