// libFuzzer target: the request decoder — arbitrary bytes parsed as an
// EncodeRequest / DecodeRequest and their tensors and sparse codes decoded
// with the wire codec's validation (what every Encode / Decode call runs).
#include <cstddef>
#include <cstdint>
#include <string>

#include "saedict/v1/saedict.pb.h"
#include "wire/wire_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  saedict::v1::EncodeRequest encode;
  if (encode.ParseFromString(bytes)) {
    for (int64_t cols : {1, 16, 64}) (void)saedict::wire::DecodeMatrix(encode.activations(), cols, "activations");
  }
  saedict::v1::DecodeRequest decode;
  if (decode.ParseFromString(bytes)) {
    for (int64_t features : {1, 64, 1 << 20}) (void)saedict::wire::DecodeCodes(decode.codes(), features);
  }
  return 0;
}
