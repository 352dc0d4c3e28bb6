// Feature families for the CLI (commands family, families and feature): the
// threshold flags they share, and the text of a family tree, of its short
// summary on a feature page and of the provenance.
//
// Thread safety: pure functions.
#ifndef SAEDICT_CLIENT_COMMANDS_FAMILY_OUTPUT_H_
#define SAEDICT_CLIENT_COMMANDS_FAMILY_OUTPUT_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/cli_args.h"
#include "saedict/v1/saedict.pb.h"

namespace saedict::client {

// --min_cosine, --min_coverage, --min_count (unset: the server's defaults).
std::vector<FlagSpec> FamilyOptionFlags();
// The FamilyOptions those flags ask for; InputError for a value out of range
// (--min_cosine in [-1, 1], --min_coverage in (0, 1], --min_count >= 1).
absl::StatusOr<v1::FamilyOptions> ParseFamilyOptions(const ParsedArgs& args);

// "2024-05-01T12:00:00Z".
std::string FormatTimestamp(const google::protobuf::Timestamp& t);

// Two lines: when and over what the families were computed, and the
// thresholds.
void WriteProvenance(std::ostream& out, const v1::FamilyProvenance& p);

// The family of the asked feature as a tree table (FEATURE drawn as a tree
// from the root down: the parent chain, the feature, its children and its
// siblings; RELATION, COUNT, and the COVERAGE / COSINE / JACCARD / PHI of the
// link from the row's parent to the row), then why each link was made, then
// the provenance.
void WriteFamilyTree(std::ostream& out, const v1::FeatureFamilyResponse& f);

// A few lines for a feature page: root and size, the parent chain, the
// children and the siblings (with their coverage).
void WriteFamilySummary(std::ostream& out, const v1::FeatureFamilyResponse& f);

}  // namespace saedict::client

#endif  // SAEDICT_CLIENT_COMMANDS_FAMILY_OUTPUT_H_
