// gMock matchers for absl::Status / StatusOr (Debian's Abseil has none):
//   EXPECT_THAT(s, IsOk());
//   EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("d_in")));
#ifndef SAEDICT_TESTS_TEST_UTIL_STATUS_MATCHERS_H_
#define SAEDICT_TESTS_TEST_UTIL_STATUS_MATCHERS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace saedict::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s;
  return s.ok();
}

MATCHER_P2(StatusIs, code, message_matcher, "has code " + ::testing::PrintToString(code)) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code && ::testing::Matches(message_matcher)(std::string(s.message()));
}

}  // namespace saedict::testing

// Unwraps a StatusOr in a test, failing the test when it is not OK.
#define SAEDICT_ASSERT_OK_AND_ASSIGN(lhs, expr) \
  SAEDICT_ASSERT_OK_AND_ASSIGN_IMPL_(SAEDICT_STATUS_TEST_CONCAT_(statusor_, __LINE__), lhs, expr)
#define SAEDICT_STATUS_TEST_CONCAT_INNER_(a, b) a##b
#define SAEDICT_STATUS_TEST_CONCAT_(a, b) SAEDICT_STATUS_TEST_CONCAT_INNER_(a, b)
#define SAEDICT_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                       \
  ASSERT_TRUE(statusor.ok()) << statusor.status();              \
  lhs = std::move(statusor).value()

#endif  // SAEDICT_TESTS_TEST_UTIL_STATUS_MATCHERS_H_
