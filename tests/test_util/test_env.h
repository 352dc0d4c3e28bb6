// Test environment helpers: the real-data folder (../shared/data, absent on
// users' clones: tests then skip with a visible message) and scratch dirs.
#ifndef SAEDICT_TESTS_TEST_UTIL_TEST_ENV_H_
#define SAEDICT_TESTS_TEST_UTIL_TEST_ENV_H_

#include <filesystem>
#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace saedict::testing {

// ${SAEDICT_SHARED_DATA}/stories260k when present, else nullopt.
std::optional<std::filesystem::path> Stories260kDir();

// A fresh directory under the test temp dir, removed by the destructor.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace saedict::testing

// In a TEST body: binds `var` to the stories260k dir or skips the test,
// printing why, when ../shared/data is not there.
#define SAEDICT_REQUIRE_STORIES260K(var)                                  \
  auto var##_opt = ::saedict::testing::Stories260kDir();                  \
  if (!var##_opt) {                                                       \
    GTEST_SKIP() << "SKIPPED: ../shared/data/stories260k not found "      \
                    "(set SAEDICT_SHARED_DATA); real-data check not run"; \
  }                                                                       \
  const std::filesystem::path var = *var##_opt

#endif  // SAEDICT_TESTS_TEST_UTIL_TEST_ENV_H_
