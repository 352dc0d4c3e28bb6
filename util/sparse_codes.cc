// SparseCodes validation, lookup and concatenation (see sparse_codes.h).
#include "util/sparse_codes.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace saedict {

absl::Status SparseCodes::Validate() const {
  const SparseCodes& c = *this;
  if (c.num_rows < 0 || c.num_features < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("codes: negative num_rows ", c.num_rows, " or num_features ", c.num_features));
  }
  if (c.num_features > int64_t{1} << 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("codes: num_features ", c.num_features, " exceeds the uint32 index range"));
  }
  if (static_cast<int64_t>(c.row_offsets.size()) != c.num_rows + 1) {
    return absl::InvalidArgumentError(absl::StrCat("codes: ", c.row_offsets.size(),
                                                   " row_offsets for num_rows ", c.num_rows,
                                                   " (want num_rows + 1)"));
  }
  if (c.values.size() != c.indices.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("codes: ", c.indices.size(), " indices but ", c.values.size(), " values"));
  }
  if (c.row_offsets.front() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("codes: row_offsets[0] is ", c.row_offsets.front(), ", want 0"));
  }
  if (c.row_offsets.back() != c.indices.size()) {
    return absl::InvalidArgumentError(absl::StrCat("codes: row_offsets[", c.num_rows, "] is ",
                                                   c.row_offsets.back(), " but nnz is ",
                                                   c.indices.size()));
  }
  for (int64_t r = 0; r < c.num_rows; ++r) {
    const uint64_t begin = c.row_offsets[r], end = c.row_offsets[r + 1];
    if (end < begin || end > c.indices.size()) {
      return absl::InvalidArgumentError(absl::StrCat("codes: row_offsets not monotone at row ", r,
                                                     " (", begin, " then ", end, ")"));
    }
    for (uint64_t i = begin; i < end; ++i) {
      if (c.indices[i] >= static_cast<uint64_t>(c.num_features)) {
        return absl::InvalidArgumentError(absl::StrCat("codes: row ", r, " feature ", c.indices[i],
                                                       " >= num_features ", c.num_features));
      }
      if (i > begin && c.indices[i] <= c.indices[i - 1]) {
        return absl::InvalidArgumentError(
            absl::StrCat("codes: row ", r, " feature ", c.indices[i], " does not follow feature ",
                         c.indices[i - 1], "; indices must strictly ascend within a row"));
      }
      if (!std::isfinite(c.values[i])) {
        return absl::InvalidArgumentError(absl::StrCat("codes: row ", r, " feature ", c.indices[i],
                                                       " has non-finite value ", c.values[i]));
      }
    }
  }
  return absl::OkStatus();
}

float SparseCodes::ValueAt(int64_t row, uint32_t feature) const {
  const auto first = indices.begin() + static_cast<int64_t>(row_offsets[row]);
  const auto last = indices.begin() + static_cast<int64_t>(row_offsets[row + 1]);
  const auto hit = std::lower_bound(first, last, feature);
  if (hit == last || *hit != feature) return 0.0f;
  return values[hit - indices.begin()];
}

SparseCodes SliceRows(const SparseCodes& codes, int64_t begin, int64_t end) {
  SparseCodes out;
  out.num_rows = end - begin;
  out.num_features = codes.num_features;
  const uint64_t first = codes.row_offsets[begin], last = codes.row_offsets[end];
  out.row_offsets.resize(out.num_rows + 1);
  for (int64_t r = begin; r <= end; ++r) out.row_offsets[r - begin] = codes.row_offsets[r] - first;
  out.indices.assign(codes.indices.begin() + first, codes.indices.begin() + last);
  out.values.assign(codes.values.begin() + first, codes.values.begin() + last);
  return out;
}

absl::Status AppendRows(SparseCodes& head, const SparseCodes& tail) {
  if (head.num_rows == 0 && head.indices.empty()) {  // an empty head adopts tail's width
    head.num_features = tail.num_features;
    head.row_offsets = {0};
  }
  if (head.num_features != tail.num_features) {
    return absl::InvalidArgumentError(absl::StrCat("codes: cannot append rows with num_features ",
                                                   tail.num_features, " to rows with ",
                                                   head.num_features));
  }
  if (static_cast<int64_t>(tail.row_offsets.size()) != tail.num_rows + 1) {
    return absl::InvalidArgumentError("codes: appended chunk has inconsistent row_offsets");
  }
  const uint64_t base = head.indices.size();
  for (int64_t r = 1; r <= tail.num_rows; ++r)
    head.row_offsets.push_back(base + tail.row_offsets[r]);
  head.indices.insert(head.indices.end(), tail.indices.begin(), tail.indices.end());
  head.values.insert(head.values.end(), tail.values.begin(), tail.values.end());
  head.num_rows += tail.num_rows;
  return absl::OkStatus();
}

}  // namespace saedict
