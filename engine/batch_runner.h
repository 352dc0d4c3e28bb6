// BatchRunner: where the EncodeBatcher runs a merged batch. Without one the
// batcher calls Encoder::Encode in-process; saedictd's worker pool
// (server/worker_pool.h) is one, sending the batch to a saedict-worker and
// falling back to the in-process encoder. A runner must return what
// encoder.Encode(x, n, options) would (F32 is batch-invariant and CPU
// workers run this same engine; a GPU backend returns it within its
// documented tolerances), or that call's error.
//
// Thread safety: Run() is called from the batcher's threads concurrently.
#ifndef SAEDICT_ENGINE_BATCH_RUNNER_H_
#define SAEDICT_ENGINE_BATCH_RUNNER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/encoder.h"

namespace saedict::engine {

class BatchRunner {
 public:
  virtual ~BatchRunner() = default;
  virtual absl::StatusOr<EncodeResult> Run(const Encoder& encoder, absl::Span<const float> x,
                                           int64_t n, const EncodeOptions& options) = 0;
};

}  // namespace saedict::engine

#endif  // SAEDICT_ENGINE_BATCH_RUNNER_H_
