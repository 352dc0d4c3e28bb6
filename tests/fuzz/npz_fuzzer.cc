// libFuzzer target: ParseNpz (zip container + .npy members) on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/codecs/npz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)saedict::formats::ParseNpz(std::string(reinterpret_cast<const char*>(data), size),
                                   "fuzz.npz");
  return 0;
}
