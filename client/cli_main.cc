// saedict: command-line client of saedictd. All logic lives in RunCli
// (client/cli.h) so tests can drive it in-process.
#include <iostream>
#include <string>
#include <vector>

#include "client/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return saedict::client::RunCli(args, std::cout, std::cerr);
}
