// libFuzzer target: SafetensorsFile::Parse (JSON header, offsets, dtypes) on
// arbitrary bytes, then every tensor it lists read as float32.
#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/codecs/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = saedict::formats::SafetensorsFile::Parse(
      std::string(reinterpret_cast<const char*>(data), size), "fuzz.safetensors");
  if (file.ok()) {
    for (const auto& tensor : file->tensors()) (void)file->ReadF32(tensor.name);
  }
  return 0;
}
