// Family flags and text; see family_output.h.
#include "client/commands/family_output.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

// Members listed on one summary line before "+N more".
constexpr int kSummaryMembers = 10;

std::string Score(double v) { return absl::StrFormat("%.3f", v); }

// One row of the tree table; `link` holds the scores of the link into it.
struct TreeRow {
  std::vector<bool>
      ancestors_last;  // below the root: whether each ancestor is its parent's last child
  bool last = true;    // the last child of its parent
  bool is_root = false;
  uint32_t feature = 0;
  std::string relation;
  int64_t count = 0;
  const v1::FamilyMember* link = nullptr;
};

std::string TreePrefix(const TreeRow& row) {
  if (row.is_root) return "";
  std::string out;
  for (bool last : row.ancestors_last) absl::StrAppend(&out, last ? "   " : "\u2502  ");
  absl::StrAppend(&out, row.last ? "\u2514\u2500 " : "\u251c\u2500 ");
  return out;
}

// One row per member, all under the same ancestors; the last one closes the branch.
void AppendMemberRows(const google::protobuf::RepeatedPtrField<v1::FamilyMember>& members,
                      const char* relation, const std::vector<bool>& ancestors_last,
                      std::vector<TreeRow>* rows) {
  for (int i = 0; i < members.size(); ++i) {
    TreeRow row;
    row.ancestors_last = ancestors_last;
    row.last = i + 1 == members.size();
    row.feature = members[i].feature();
    row.relation = relation;
    row.count = members[i].count();
    row.link = &members[i];
    rows->push_back(row);
  }
}

std::string MemberList(const google::protobuf::RepeatedPtrField<v1::FamilyMember>& members) {
  std::vector<std::string> parts;
  for (int i = 0; i < members.size() && i < kSummaryMembers; ++i) {
    parts.push_back(
        absl::StrFormat("%d (coverage %.3f)", members[i].feature(), members[i].coverage()));
  }
  std::string out = absl::StrJoin(parts, ", ");
  if (members.size() > kSummaryMembers) {
    absl::StrAppend(&out, ", +", members.size() - kSummaryMembers, " more");
  }
  return out;
}

}  // namespace

std::vector<FlagSpec> FamilyOptionFlags() {
  return {ValueFlag("min_cosine", FlagKind::kDouble, "", "X",
                    "least decoder cosine of a parent and child (-1..1; server default 0.3)"),
          ValueFlag("min_coverage", FlagKind::kDouble, "", "X",
                    "least P(parent | child) (0..1, above 0; server default 0.8)"),
          ValueFlag("min_count", FlagKind::kInt, "", "N",
                    "least tokens a child fires on (>= 1; server default 5)")};
}

absl::StatusOr<v1::FamilyOptions> ParseFamilyOptions(const ParsedArgs& args) {
  v1::FamilyOptions o;
  if (args.IsSet("min_cosine")) {
    const double v = args.GetDouble("min_cosine");
    SAEDICT_RETURN_IF_ERROR(CheckRange("--min_cosine", v, -1.0, 1.0));
    o.set_min_decoder_cosine(v);
  }
  if (args.IsSet("min_coverage")) {
    const double v = args.GetDouble("min_coverage");
    SAEDICT_RETURN_IF_ERROR(CheckRange("--min_coverage", v, 0.0, 1.0, /*min_open=*/true));
    o.set_min_coverage(v);
  }
  if (args.IsSet("min_count")) {
    const int64_t v = args.GetInt("min_count");
    if (v < 1) return InputError(absl::StrCat("--min_count must be at least 1, got ", v));
    o.set_min_child_count(v);
  }
  return o;
}

std::string FormatTimestamp(const google::protobuf::Timestamp& t) {
  const absl::Time time = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

void WriteProvenance(std::ostream& out, const v1::FamilyProvenance& p) {
  out << "computed at " << FormatTimestamp(p.computed_at())
      << absl::StrFormat(" in %.3g s", p.seconds()) << " over " << FormatCount(p.tokens())
      << " stored tokens in " << FormatCount(p.documents()) << " documents\n";
  out << "thresholds: min_decoder_cosine " << p.min_decoder_cosine() << ", min_coverage "
      << p.min_coverage() << ", min_child_count " << p.min_child_count() << " ("
      << p.neighbours_per_feature() << " decoder neighbours per feature)\n";
}

void WriteFamilyTree(std::ostream& out, const v1::FeatureFamilyResponse& f) {
  out << "feature " << f.feature() << " of " << f.dictionary_id() << ": fires on "
      << FormatCount(f.count()) << " tokens; ";
  if (f.nesting_level() > 0) out << "Matryoshka level " << f.nesting_level() << "; ";
  if (f.family_size() <= 1 && f.parents_size() == 0 && f.children_size() == 0) {
    out << "no family at these thresholds (no parent, no child)\n\n";
    WriteProvenance(out, f.provenance());
    return;
  }
  out << "family of root " << f.root() << ", " << f.family_size() << " members\n\n";

  std::vector<TreeRow> rows;
  const int n = f.parents_size();
  // The parent chain from the root down: parents(n-1) is the root. The link
  // into parents(k) is scored on parents(k+1); into the feature on parents(0).
  for (int k = n - 1; k >= 0; --k) {
    TreeRow row;
    row.is_root = k == n - 1;
    row.ancestors_last.assign(n - 1 - k > 0 ? n - 2 - k : 0, true);
    row.feature = f.parents(k).feature();
    row.relation = row.is_root ? "root" : "parent";
    row.count = f.parents(k).count();
    row.link = k + 1 < n ? &f.parents(k + 1) : nullptr;
    rows.push_back(row);
  }
  const std::vector<bool> chain(n > 0 ? n - 1 : 0,
                                true);  // ancestors of the feature below the root
  TreeRow self;
  self.is_root = n == 0;
  self.ancestors_last = chain;
  self.last = f.siblings_size() == 0;
  self.feature = f.feature();
  self.relation = "feature";
  self.count = f.count();
  self.link = n > 0 ? &f.parents(0) : nullptr;
  rows.push_back(self);
  std::vector<bool> below_self = chain;
  if (!self.is_root) below_self.push_back(self.last);
  AppendMemberRows(f.children(), "child", below_self, &rows);
  AppendMemberRows(f.siblings(), "sibling", chain, &rows);

  std::vector<std::vector<std::string>> table;
  for (const TreeRow& row : rows) {
    std::vector<std::string> cells = {absl::StrCat(TreePrefix(row), row.feature), row.relation,
                                      FormatCount(row.count)};
    if (row.link != nullptr) {
      cells.insert(cells.end(), {Score(row.link->coverage()), Score(row.link->decoder_cosine()),
                                 Score(row.link->jaccard()), Score(row.link->phi())});
    }
    table.push_back(std::move(cells));
  }
  WriteTable(out, {"FEATURE", "RELATION", "COUNT", "COVERAGE", "COSINE", "JACCARD", "PHI"}, table);

  out << "\nwhy (COVERAGE is P(parent | child) over the stored tokens):\n";
  for (const TreeRow& row : rows) {
    if (row.link == nullptr) continue;
    out << "  " << row.link->pair_parent() << " \u2192 " << row.link->pair_child() << ": "
        << row.link->reason() << "\n";
  }
  out << "\n";
  WriteProvenance(out, f.provenance());
}

void WriteFamilySummary(std::ostream& out, const v1::FeatureFamilyResponse& f) {
  if (f.parents_size() == 0 && f.children_size() == 0) {
    out << "family: none (no parent or child at the default thresholds; "
        << FormatCount(f.provenance().tokens()) << " stored tokens)\n";
    return;
  }
  out << "family: root " << f.root() << ", " << f.family_size() << " members ("
      << FormatCount(f.provenance().tokens()) << " stored tokens; 'saedict family "
      << f.dictionary_id() << " " << f.feature() << "' shows the scores)\n";
  std::vector<std::string> chain;
  for (const v1::FamilyMember& p : f.parents()) chain.push_back(absl::StrCat(p.feature()));
  std::vector<std::pair<std::string, std::string>> kv;
  kv.emplace_back("  parents", chain.empty() ? "none (the feature is the root)"
                                             : absl::StrCat(absl::StrJoin(chain, " \u2192 "),
                                                            " (nearest first, up to the root)"));
  kv.emplace_back("  children", MemberList(f.children()));
  kv.emplace_back("  siblings", MemberList(f.siblings()));
  WriteKeyValues(out, kv);
}

}  // namespace saedict::client
