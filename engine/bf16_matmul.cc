// Placeholder Bf16Matmul: no BF16 path in this build (see bf16_matmul.h).
#include "engine/bf16_matmul.h"

namespace saedict::engine {

struct Bf16Matmul::Impl {};

Bf16Matmul::Bf16Matmul(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Bf16Matmul::~Bf16Matmul() = default;

bool Bf16Matmul::Available() { return false; }

absl::StatusOr<std::unique_ptr<Bf16Matmul>> Bf16Matmul::Create(const float*, int64_t, int64_t) {
  return absl::UnimplementedError("BF16 matmul: built without oneDNN");
}

absl::Status Bf16Matmul::Run(const float*, int64_t, float*) const {
  return absl::UnimplementedError("BF16 matmul: built without oneDNN");
}

}  // namespace saedict::engine
