// Client-side helpers for tests that talk to a saedict server over gRPC:
// gRPC status matchers, wire tensor builders/readers and code comparisons.
// Needs only the protos and the wire codec, not the server itself (so
// process tests, which must not link libgrpc++_reflection, can use it).
// Thread safety: pure functions.
#ifndef SAEDICT_TESTS_SERVER_GRPC_TEST_UTIL_H_
#define SAEDICT_TESTS_SERVER_GRPC_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/sparse_codes.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "saedict/v1/saedict.pb.h"

namespace saedict::testing {

// EXPECT_THAT(status, GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("x")))
MATCHER_P2(GrpcStatusIs, code, message_matcher,
           "gRPC status has code " + ::testing::PrintToString(static_cast<int>(code))) {
  *result_listener << "status is " << static_cast<int>(arg.error_code()) << " '"
                   << arg.error_message() << "'";
  return arg.error_code() == code && ::testing::Matches(message_matcher)(arg.error_message());
}
MATCHER(GrpcOk, "gRPC status is OK") {
  *result_listener << "status is " << static_cast<int>(arg.error_code()) << " '"
                   << arg.error_message() << "'";
  return arg.ok();
}

// --- wire tensors -------------------------------------------------------------
// The raw little-endian bytes of `v` (a wire field's payload).
template <typename T>
std::string Bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}
// A Tensor exactly as given, with no checks (for building malformed ones too).
v1::Tensor MakeTensor(v1::DType dtype, std::vector<int64_t> shape, std::string data);

v1::Tensor F32Tensor(const std::vector<float>& values, std::vector<int64_t> shape);
// Rounds each value to F16 / BF16 (round to nearest even).
v1::Tensor F16Tensor(const std::vector<float>& values, std::vector<int64_t> shape);
v1::Tensor Bf16Tensor(const std::vector<float>& values, std::vector<int64_t> shape);
// `values` rounded through F16 / BF16 and back, what the server will decode.
std::vector<float> RoundF16(const std::vector<float>& values);
std::vector<float> RoundBf16(const std::vector<float>& values);
// The F32 payload of a tensor (ADD_FAILURE and empty when not F32).
std::vector<float> FloatsOf(const v1::Tensor& tensor);
// The mode a request without compute_mode runs for a threshold / top-k
// dictionary on this CPU: FAST_EXACT where a bf16 screen exists
// (Encoder::FastExactFastest), else F32 (the same codes either way).
v1::ComputeMode FastestExactMode();
// The mode a request for FAST_EXACT runs as: FAST_EXACT where any screen
// exists (Encoder::FastExactAvailable), else F32.
v1::ComputeMode FastExactRunsAs();
// Wire CSR → engine CSR (ADD_FAILURE on malformed codes).
engine::SparseCodes CodesOf(const v1::SparseCodes& codes);
// Row r of a CSR batch as (index, value) pairs.
std::vector<std::pair<uint32_t, float>> Row(const engine::SparseCodes& codes, int64_t r);

// EXPECT that two code batches have the same rows, the same indices and
// values within `tol` (absolute). `what` names the comparison in failures.
void ExpectSameCodes(const engine::SparseCodes& actual, const engine::SparseCodes& expected,
                     float tol, const std::string& what);

}  // namespace saedict::testing

namespace grpc {
// Readable gRPC statuses in gMock failure messages.
inline void PrintTo(const Status& status, std::ostream* os) {
  *os << "status " << static_cast<int>(status.error_code()) << " '" << status.error_message()
      << "'";
}
}  // namespace grpc

#endif  // SAEDICT_TESTS_SERVER_GRPC_TEST_UTIL_H_
