// libFuzzer target: ParseNpy (and its conversions) on arbitrary bytes.
// Any input must give an array or an error, never a crash or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/codecs/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto array = saedict::formats::ParseNpy(std::string(reinterpret_cast<const char*>(data), size),
                                          "fuzz.npy");
  if (array.ok()) {
    (void)saedict::formats::NpyToFloat32(*array, "fuzz");
    (void)saedict::formats::NpyToInt64(*array, "fuzz");
  }
  return 0;
}
