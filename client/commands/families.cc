// `saedict families DICT`: the feature families of a dictionary, largest
// first (ListFamilies), one page or with --all every page.
// Thread safety: see command.h.
#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/family_output.h"
#include "client/commands/output.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

// Members shown in the MEMBERS column before "+N more" (--json has all).
constexpr int kShownMembers = 20;

std::string Members(const v1::FeatureFamily& f) {
  std::vector<uint32_t> shown(f.members().begin(),
                              f.members().begin() + std::min(f.members_size(), kShownMembers));
  std::string out = absl::StrJoin(shown, ",");
  if (f.members_size() > kShownMembers) {
    absl::StrAppend(&out, " +", f.members_size() - kShownMembers, " more");
  }
  return out;
}

void WriteText(std::ostream& out, const std::string& dictionary,
               const v1::ListFamiliesResponse& resp) {
  out << dictionary << ": " << FormatCount(resp.total_families()) << " famil"
      << (resp.total_families() == 1 ? "y" : "ies") << ", largest first";
  if (resp.families_size() < resp.total_families()) {
    out << " (" << FormatCount(resp.families_size()) << " on this page)";
  }
  out << "\n";
  if (resp.families_size() > 0) {
    out << "\n";
    std::vector<std::vector<std::string>> rows;
    for (const v1::FeatureFamily& f : resp.families()) {
      rows.push_back({absl::StrCat(f.root()), absl::StrCat(f.members_size()),
                      absl::StrCat(f.depth()), FormatCount(f.root_count()), Members(f)});
    }
    WriteTable(out, {"ROOT", "SIZE", "DEPTH", "ROOT_COUNT", "MEMBERS"}, rows);
  }
  if (!resp.next_page_token().empty()) {
    out << "\nmore: --page_token " << resp.next_page_token() << " (or --all)\n";
  }
  out << "\n";
  WriteProvenance(out, resp.provenance());
}

absl::Status RunFamilies(CommandEnv& env) {
  const ParsedArgs& args = env.args();
  const std::string& dictionary = env.positional(0);
  const int64_t page_size = args.GetInt("page_size");
  SAEDICT_RETURN_IF_ERROR(CheckRange("--page_size", page_size, 1, 1000));
  const bool all = args.GetBool("all");
  v1::ListFamiliesRequest req;
  req.set_dictionary_id(dictionary);
  req.set_page_size(static_cast<int32_t>(page_size));
  req.set_page_token(args.GetString("page_token"));
  SAEDICT_ASSIGN_OR_RETURN(*req.mutable_options(), ParseFamilyOptions(args));

  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  SAEDICT_ASSIGN_OR_RETURN(v1::ListFamiliesResponse resp,
                           (RetryWhileNotReady<v1::ListFamiliesResponse>(
                               WaitFlagValue(args), [&] { return client->ListFamilies(req); },
                               [&] {  // stop waiting when the neighbours of DICT failed
                                 const std::optional<v1::IndexStatus> s =
                                     IndexStatusOf(*client, dictionary);
                                 return !s || s->neighbours_state() == v1::INDEX_STATE_FAILED;
                               })));
  if (all) {
    // Every later page into `resp`; the server refuses a token of families
    // recomputed since, so the pages are of one computation.
    std::set<std::string> seen;
    while (!resp.next_page_token().empty()) {
      if (!seen.insert(resp.next_page_token()).second) {
        return absl::InternalError(absl::StrCat("ListFamilies: the server returned page token '",
                                                resp.next_page_token(), "' twice"));
      }
      req.set_page_token(resp.next_page_token());
      SAEDICT_ASSIGN_OR_RETURN(v1::ListFamiliesResponse page, client->ListFamilies(req));
      for (v1::FeatureFamily& f : *page.mutable_families()) *resp.add_families() = std::move(f);
      resp.set_next_page_token(page.next_page_token());
      resp.set_total_families(page.total_families());
      *resp.mutable_provenance() = page.provenance();
    }
  }
  if (env.global().json) {
    env.out() << MessageToJson(resp) << "\n";
  } else {
    WriteText(env.out(), dictionary, resp);
  }
  return absl::OkStatus();
}

}  // namespace

const Command& FamiliesCommand() {
  static const Command* const kCommand = new Command{
      .name = "families",
      .positional = {"DICT"},
      .summary = "list a dictionary's feature families, largest first",
      .details =
          "One row per family: its ROOT feature, SIZE (members), DEPTH (longest chain\n"
          "below the root), ROOT_COUNT (tokens the root fires on) and MEMBERS (the root\n"
          "first, then the descendants ascending). Families are computed from the\n"
          "decoder neighbours and the tokens stored for DICT, with the thresholds of\n"
          "'saedict family' (see its --help). A page holds --page_size families; the\n"
          "next one is asked for with the --page_token printed at the end, and --all\n"
          "follows every page. --json prints the ListFamiliesResponse (with --all one\n"
          "response holding every family).",
      .flags =
          [] {
            std::vector<FlagSpec> flags = {
                ValueFlag("page_size", FlagKind::kInt, "50", "N", "families per page (1..1000)"),
                ValueFlag("page_token", FlagKind::kString, "", "TOKEN",
                          "the page after the one that printed TOKEN"),
                BoolFlag("all", "list every family, following the pages")};
            for (FlagSpec& f : FamilyOptionFlags()) flags.push_back(std::move(f));
            flags.push_back(WaitFlag());
            return flags;
          }(),
      .run = &RunFamilies,
  };
  return *kCommand;
}

}  // namespace saedict::client
