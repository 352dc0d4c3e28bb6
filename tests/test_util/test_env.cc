#include "tests/test_util/test_env.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

namespace saedict::testing {

std::optional<std::filesystem::path> Stories260kDir() {
  const char* root = std::getenv("SAEDICT_SHARED_DATA");
  if (root == nullptr || *root == '\0') return std::nullopt;
  std::filesystem::path dir = std::filesystem::path(root) / "stories260k";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return std::nullopt;
  return dir;
}

ScratchDir::ScratchDir() {
  static std::atomic<int> counter{0};
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::filesystem::path base = tmp != nullptr ? tmp : std::filesystem::temp_directory_path();
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info != nullptr ? std::string(info->test_suite_name()) + "." + info->name()
                                     : std::string("saedict");
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  path_ = base / ("saedict_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) +
                  "_" + name);
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace saedict::testing
