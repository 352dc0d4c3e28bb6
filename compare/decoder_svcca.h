// DecoderSvcca: SVCCA of the decoder directions of paired features, the
// space-level similarity of Lan et al. 2024 ("Sparse autoencoders reveal
// universal feature spaces across large language models"): features of two
// dictionaries (any d_in) are paired by activation correlation, and SVCCA
// compares the two matrices of paired decoder rows, the pairs as samples
// (rows centred over the pairs, compare/svcca.h for the method). High when
// the paired features span the same geometry up to a linear map of each
// model's space.
//
// Pairs: each B feature keeps only the A feature it correlates best with
// (many-to-one matches collapse to one pair), and only pairs whose
// correlation is >= min_correlation.
//
// Thread safety: a pure function.
#ifndef SAEDICT_COMPARE_DECODER_SVCCA_H_
#define SAEDICT_COMPARE_DECODER_SVCCA_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "compare/activation_matching.h"
#include "compare/svcca.h"
#include "engine/dictionary.h"

namespace saedict::compare {

struct DecoderSvccaResult {
  int64_t pairs = 0;  // samples used
  SvccaResult svcca;  // dims, canonical correlations, mean
};

// FAILED_PRECONDITION when fewer than 2 pairs remain (the message says how
// many); Svcca's errors otherwise.
absl::StatusOr<DecoderSvccaResult> DecoderSvcca(const engine::Dictionary& a,
                                                const engine::Dictionary& b,
                                                const std::vector<CorrelationMatch>& a_to_b,
                                                double min_correlation,
                                                double variance_kept = 0.99);

}  // namespace saedict::compare

#endif  // SAEDICT_COMPARE_DECODER_SVCCA_H_
