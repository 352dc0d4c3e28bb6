// CudaEncoder without CUDA: the build found no CUDA toolkit (or was
// configured with -DSAEDICT_CUDA=OFF), so saedict_engine_cuda is this stub
// with the same API (cuda_encoder.h): no device is ever reported and Create
// fails with FAILED_PRECONDITION saying why.
#include <utility>

#include "absl/status/status.h"
#include "engine/cuda/cuda_encoder.h"

namespace saedict::engine::cuda {
namespace {

constexpr char kNoCuda[] =
    "this build has no CUDA backend (configure found no CUDA toolkit, or SAEDICT_CUDA=OFF)";

}  // namespace

bool BuiltWithCuda() { return false; }

int DeviceCount() { return 0; }

absl::StatusOr<DeviceInfo> GetDeviceInfo(int /*ordinal*/) {
  return absl::FailedPreconditionError(kNoCuda);
}

// Never constructed: Create always fails.
class CudaEncoder::Impl {
 public:
  std::shared_ptr<const Encoder> cpu;
  DeviceInfo device;
};

absl::StatusOr<std::unique_ptr<CudaEncoder>> CudaEncoder::Create(
    std::shared_ptr<const Encoder> cpu, const CudaEncoderOptions& /*options*/) {
  if (cpu == nullptr) return absl::InvalidArgumentError("CudaEncoder: the CPU encoder is null");
  return absl::FailedPreconditionError(kNoCuda);
}

CudaEncoder::CudaEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaEncoder::~CudaEncoder() = default;

absl::StatusOr<EncodeResult> CudaEncoder::Encode(absl::Span<const float> /*x*/, int64_t /*n*/,
                                                 const EncodeOptions& /*options*/) const {
  return absl::FailedPreconditionError(kNoCuda);
}

int64_t CudaEncoder::device_bytes() const { return 0; }
const DeviceInfo& CudaEncoder::device() const { return impl_->device; }
const Encoder& CudaEncoder::cpu() const { return *impl_->cpu; }
int64_t CudaEncoder::chunk_rows() const { return 0; }

}  // namespace saedict::engine::cuda
