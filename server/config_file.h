// saedictd's optional config file (--config=FILE): a
// saedict.config.v1.ServerConfig in protobuf text format whose fields are
// the saedictd flags of the same names. It is turned into "--name=value"
// arguments that saedictd parses before its own command line, so a flag
// given on the command line overrides the file, and the file overrides the
// built-in defaults.
//
// Thread safety: pure functions.
#ifndef SAEDICT_SERVER_CONFIG_FILE_H_
#define SAEDICT_SERVER_CONFIG_FILE_H_

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace saedict::server {

// The flags `text` (a ServerConfig in text format) sets, as "--name=value"
// in field order. INVALID_ARGUMENT naming `source`, line and column for
// text that does not parse (unknown field, wrong type), and for a list
// value holding a comma (flags split lists at commas).
absl::StatusOr<std::vector<std::string>> ConfigArguments(absl::string_view text,
                                                         absl::string_view source);
// As ConfigArguments on the file's text; NOT_FOUND when it cannot be read.
absl::StatusOr<std::vector<std::string>> ConfigFileArguments(const std::filesystem::path& path);

// The FILE of "--config=FILE" or "--config FILE" in argv[1..], the last one
// when repeated; nullopt when absent.
std::optional<std::string> FindConfigFlag(int argc, char** argv);

}  // namespace saedict::server

#endif  // SAEDICT_SERVER_CONFIG_FILE_H_
