#include "tests/server/grpc_test_util.h"

#include <cmath>
#include <cstring>

#include "engine/encoder.h"
#include "wire/wire_codec.h"
#include "util/half.h"

namespace saedict::testing {

v1::Tensor MakeTensor(v1::DType dtype, std::vector<int64_t> shape, std::string data) {
  v1::Tensor t;
  t.set_dtype(dtype);
  for (int64_t d : shape) t.add_shape(d);
  t.set_data(std::move(data));
  return t;
}

v1::Tensor F32Tensor(const std::vector<float>& values, std::vector<int64_t> shape) {
  return MakeTensor(v1::DTYPE_F32, std::move(shape), Bytes(values));
}

v1::Tensor F16Tensor(const std::vector<float>& values, std::vector<int64_t> shape) {
  std::vector<uint16_t> h;
  h.reserve(values.size());
  for (float f : values) h.push_back(FloatToF16(f));
  return MakeTensor(v1::DTYPE_F16, std::move(shape), Bytes(h));
}

v1::Tensor Bf16Tensor(const std::vector<float>& values, std::vector<int64_t> shape) {
  std::vector<uint16_t> h;
  h.reserve(values.size());
  for (float f : values) h.push_back(FloatToBf16(f));
  return MakeTensor(v1::DTYPE_BF16, std::move(shape), Bytes(h));
}

std::vector<float> RoundF16(const std::vector<float>& values) {
  std::vector<float> out;
  for (float f : values) out.push_back(F16ToFloat(FloatToF16(f)));
  return out;
}

std::vector<float> RoundBf16(const std::vector<float>& values) {
  std::vector<float> out;
  for (float f : values) out.push_back(Bf16ToFloat(FloatToBf16(f)));
  return out;
}

std::vector<float> FloatsOf(const v1::Tensor& tensor) {
  if (tensor.dtype() != v1::DTYPE_F32 || tensor.data().size() % 4 != 0) {
    ADD_FAILURE() << "expected an F32 tensor, got " << v1::DType_Name(tensor.dtype()) << " of "
                  << tensor.data().size() << " bytes";
    return {};
  }
  std::vector<float> out(tensor.data().size() / 4);
  if (!out.empty()) std::memcpy(out.data(), tensor.data().data(), tensor.data().size());
  return out;
}

v1::ComputeMode FastExactRunsAs() {
  return engine::Encoder::FastExactAvailable() ? v1::COMPUTE_MODE_FAST_EXACT : v1::COMPUTE_MODE_F32;
}

v1::ComputeMode FastestExactMode() {
  return engine::Encoder::FastExactFastest() ? v1::COMPUTE_MODE_FAST_EXACT : v1::COMPUTE_MODE_F32;
}

engine::SparseCodes CodesOf(const v1::SparseCodes& codes) {
  absl::StatusOr<engine::SparseCodes> decoded = wire::DecodeCodes(codes, codes.num_features());
  if (!decoded.ok()) {
    ADD_FAILURE() << "malformed codes from the server: " << decoded.status();
    return {};
  }
  return *std::move(decoded);
}

std::vector<std::pair<uint32_t, float>> Row(const engine::SparseCodes& codes, int64_t r) {
  std::vector<std::pair<uint32_t, float>> out;
  for (uint64_t e = codes.row_offsets[r]; e < codes.row_offsets[r + 1]; ++e) {
    out.emplace_back(codes.indices[e], codes.values[e]);
  }
  return out;
}

void ExpectSameCodes(const engine::SparseCodes& actual, const engine::SparseCodes& expected,
                     float tol, const std::string& what) {
  ASSERT_EQ(actual.num_rows, expected.num_rows) << what;
  EXPECT_EQ(actual.num_features, expected.num_features) << what;
  int failures = 0;
  for (int64_t r = 0; r < actual.num_rows && failures < 5; ++r) {
    auto a = Row(actual, r), e = Row(expected, r);
    bool same = a.size() == e.size();
    for (size_t i = 0; same && i < a.size(); ++i) {
      same = a[i].first == e[i].first && std::abs(a[i].second - e[i].second) <= tol;
    }
    if (!same) {
      ++failures;
      ADD_FAILURE() << what << ": row " << r << " differs: got " << ::testing::PrintToString(a)
                    << ", expected " << ::testing::PrintToString(e);
    }
  }
}

}  // namespace saedict::testing
