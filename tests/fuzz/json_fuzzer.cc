// libFuzzer target: ParseJsonObject (cfg.json and friends) and the typed
// getters the loaders use, on arbitrary text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/codecs/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // Both modes the loaders use: strict, and Python's NaN / Infinity as null.
  (void)saedict::formats::ParseJsonObject(text, "fuzz cfg.json", /*nonfinite_as_null=*/true);
  auto object = saedict::formats::ParseJsonObject(text, "fuzz cfg.json");
  if (object.ok()) {
    for (const char* key : {"d_in", "d_sae", "k", "architecture", "apply_b_dec_to_input"}) {
      (void)saedict::formats::GetJsonInt(*object, key, "cfg", 0, int64_t{1} << 40);
      (void)saedict::formats::GetJsonNumber(*object, key, "cfg");
      (void)saedict::formats::GetJsonBool(*object, key, "cfg");
      (void)saedict::formats::GetJsonString(*object, key, "cfg");
      if (const auto* v = saedict::formats::FindJsonField(*object, key)) {
        (void)saedict::formats::DescribeJson(*v);
      }
    }
  }
  return 0;
}
