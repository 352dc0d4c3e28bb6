// Helpers for CLI tests: run RunCli in-process and capture its exit code,
// stdout and stderr. Thread safety: none needed (test thread only).
#ifndef SAEDICT_TESTS_CLIENT_CLI_TEST_UTIL_H_
#define SAEDICT_TESTS_CLIENT_CLI_TEST_UTIL_H_

#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "client/cli.h"

namespace saedict::testing {

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

inline CliResult RunCliCaptured(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  CliResult r;
  r.code = client::RunCli(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

// gtest prints a CliResult as its three parts when an assertion fails.
inline void PrintTo(const CliResult& r, std::ostream* os) {
  *os << "exit " << r.code << "\nstdout:\n" << r.out << "stderr:\n" << r.err;
}

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_CLIENT_CLI_TEST_UTIL_H_
