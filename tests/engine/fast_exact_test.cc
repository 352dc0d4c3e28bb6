// ComputeMode::kFastExact must return exactly the F32 path's codes (indices
// and values, bit for bit) on every row: random dictionaries of each
// threshold / top-k architecture, planted ties and near-ties at the
// selection boundary, rows forced onto the fallback, and the stories260k
// SAEs on real activations. The proven bound itself is checked against the
// exact GEMM, and a bound deliberately made too small is caught (and does
// change results, so the equality checks here can fail).
#include "engine/fast_exact.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/encoder.h"
#include "engine/invariant_gemm.h"
#include "formats/codecs/npy.h"
#include "formats/dictionary_loader.h"
#include "gtest/gtest.h"
#include "tests/engine/reference_sae.h"
#include "tests/test_util/test_env.h"

namespace saedict::engine {
namespace {

using testing::DictSpec;
using testing::MakeDictionary;
using testing::RandomInput;

#define REQUIRE_FAST_EXACT()                                                              \
  if (!Encoder::FastExactAvailable()) {                                                   \
    GTEST_SKIP() << "SKIPPED: no screen GEMM here (no AMX-BF16, AVX512-BF16 or AVX2, "    \
                    "or SAEDICT_NO_AMX / SAEDICT_NO_AVX512_BF16 / SAEDICT_NO_AVX2_INT16 " \
                    "is set): FAST_EXACT runs the F32 path, nothing to compare";          \
  }

// Same rows, same features, same float bits.
::testing::AssertionResult Identical(const SparseCodes& want, const SparseCodes& got) {
  if (want.num_rows != got.num_rows) {
    return ::testing::AssertionFailure() << "rows " << want.num_rows << " vs " << got.num_rows;
  }
  int differing = 0;
  std::string first;
  for (int64_t r = 0; r < want.num_rows; ++r) {
    const uint64_t a0 = want.row_offsets[r], a1 = want.row_offsets[r + 1];
    const uint64_t b0 = got.row_offsets[r], b1 = got.row_offsets[r + 1];
    bool same = a1 - a0 == b1 - b0;
    for (uint64_t e = 0; same && e < a1 - a0; ++e) {
      same = want.indices[a0 + e] == got.indices[b0 + e] &&
             std::memcmp(&want.values[a0 + e], &got.values[b0 + e], sizeof(float)) == 0;
    }
    if (!same && differing++ == 0) first = "row " + std::to_string(r);
  }
  if (differing == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << differing << " rows differ, first " << first;
}

struct Case {
  std::string name;
  DictSpec spec;
  int32_t top_k = 0;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  DictSpec base;
  base.d_in = 96;
  base.d_sae = 1000;  // not a multiple of 16: the last block is partial
  {
    Case c{"topk", base};
    c.spec.architecture = Architecture::kTopK;
    c.spec.k = 24;
    cases.push_back(c);
  }
  {
    Case c{"topk_rescaled_layer_norm", base};
    c.spec.architecture = Architecture::kTopK;
    c.spec.k = 8;
    c.spec.rescale_acts_by_decoder_norm = true;
    c.spec.normalization = Normalization::kLayerNorm;
    cases.push_back(c);
  }
  {
    Case c{"standard", base};
    c.spec.architecture = Architecture::kStandard;
    cases.push_back(c);
  }
  {
    Case c{"standard_top_k", base};
    c.spec.architecture = Architecture::kStandard;
    c.top_k = 16;
    cases.push_back(c);
  }
  {
    Case c{"jumprelu", base};
    c.spec.architecture = Architecture::kJumpReLU;
    c.spec.apply_b_dec_to_input = false;
    cases.push_back(c);
  }
  {
    Case c{"gated", base};
    c.spec.architecture = Architecture::kGated;
    cases.push_back(c);
  }
  return cases;
}

EncodeResult EncodeOrDie(const Encoder& encoder, const std::vector<float>& x, int64_t n,
                         ComputeMode mode, int32_t top_k = 0) {
  EncodeOptions options;
  options.compute_mode = mode;
  options.top_k = top_k;
  absl::StatusOr<EncodeResult> r = encoder.Encode(x, n, options);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : EncodeResult{};
}

TEST(FastExactTest, EqualsF32OnEveryArchitecture) {
  REQUIRE_FAST_EXACT();
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    // Random threshold SAEs keep about half their features active; let every
    // row through the screen rather than fall back.
    EncoderOptions options;
    options.fast_exact_options.max_candidates = c.spec.d_sae;
    auto encoder = Encoder::Create(MakeDictionary(c.spec), options);
    ASSERT_TRUE(encoder.ok()) << encoder.status();
    ASSERT_TRUE((*encoder)->fast_exact_ready());
    const int64_t n = 700;  // several tiles, the last one partial
    const std::vector<float> x = RandomInput(n, c.spec.d_in, 7, 1.0f, 0.1f);
    const EncodeResult f32 = EncodeOrDie(**encoder, x, n, ComputeMode::kF32, c.top_k);
    const EncodeResult fast = EncodeOrDie(**encoder, x, n, ComputeMode::kFastExact, c.top_k);
    EXPECT_EQ(fast.compute_mode, ComputeMode::kFastExact);
    EXPECT_EQ(f32.compute_mode, ComputeMode::kF32);
    EXPECT_TRUE(Identical(f32.codes, fast.codes));
    EXPECT_GT(f32.codes.nnz(), 0);
    EXPECT_EQ(fast.fast_exact.rows, n);
    EXPECT_EQ(fast.fast_exact.fallback_rows, 0);
    EXPECT_GT(fast.fast_exact.candidates, 0);
  }
}

TEST(FastExactTest, BatchInvariantLikeF32) {
  REQUIRE_FAST_EXACT();
  DictSpec spec;
  spec.architecture = Architecture::kTopK;
  spec.d_in = 64;
  spec.d_sae = 512;
  spec.k = 12;
  auto encoder = Encoder::Create(MakeDictionary(spec));
  ASSERT_TRUE(encoder.ok());
  const int64_t n = 300;
  const std::vector<float> x = RandomInput(n, spec.d_in, 3);
  const EncodeResult all = EncodeOrDie(**encoder, x, n, ComputeMode::kFastExact);
  for (int64_t r : {0, 1, 137, 299}) {
    const std::vector<float> row(x.begin() + r * spec.d_in, x.begin() + (r + 1) * spec.d_in);
    const EncodeResult one = EncodeOrDie(**encoder, row, 1, ComputeMode::kFastExact);
    SparseCodes want;
    want.num_rows = 1;
    want.num_features = spec.d_sae;
    want.row_offsets = {0, all.codes.row_offsets[r + 1] - all.codes.row_offsets[r]};
    want.indices.assign(all.codes.indices.begin() + all.codes.row_offsets[r],
                        all.codes.indices.begin() + all.codes.row_offsets[r + 1]);
    want.values.assign(all.codes.values.begin() + all.codes.row_offsets[r],
                       all.codes.values.begin() + all.codes.row_offsets[r + 1]);
    EXPECT_TRUE(Identical(want, one.codes)) << "row " << r;
  }
}

// The exact phase walks the rows in groups (FastExactOptions::
// exact_group_rows); groups of 1, 7 and 64 rows over 300 rows give the codes
// of one group, which equal F32's.
TEST(FastExactTest, ExactPhaseRowGroupsDoNotChangeCodes) {
  REQUIRE_FAST_EXACT();
  DictSpec spec;
  spec.architecture = Architecture::kTopK;
  spec.d_in = 48;
  spec.d_sae = 400;
  spec.k = 9;
  const int64_t n = 300;
  const std::vector<float> x = RandomInput(n, spec.d_in, 5);
  auto whole = Encoder::Create(MakeDictionary(spec));
  ASSERT_TRUE(whole.ok());
  const EncodeResult want = EncodeOrDie(**whole, x, n, ComputeMode::kF32);
  for (int64_t group : {1, 7, 64}) {
    EncoderOptions options;
    options.fast_exact_options.exact_group_rows = group;
    auto encoder = Encoder::Create(MakeDictionary(spec), options);
    ASSERT_TRUE(encoder.ok());
    ASSERT_TRUE((*encoder)->fast_exact_ready());
    const EncodeResult got = EncodeOrDie(**encoder, x, n, ComputeMode::kFastExact);
    EXPECT_GT(got.fast_exact.candidates, 0);
    EXPECT_TRUE(Identical(want.codes, got.codes)) << "groups of " << group << " rows";
  }
}

// Columns that tie exactly, or differ by one ulp in one weight, with the
// k-th selected feature: the screen cannot tell them apart, so all become
// candidates and the exact values (and the lower-index tie rule) decide.
TEST(FastExactTest, PlantedTiesAndNearTiesAtTheBoundary) {
  REQUIRE_FAST_EXACT();
  DictSpec spec;
  spec.architecture = Architecture::kTopK;
  spec.d_in = 80;
  spec.d_sae = 640;
  spec.k = 10;
  std::shared_ptr<Dictionary> dict = MakeDictionary(spec);
  const int64_t n = 64;
  const std::vector<float> x = RandomInput(n, spec.d_in, 11);
  auto before = Encoder::Create(dict);
  ASSERT_TRUE(before.ok());
  const std::vector<float> row0(x.begin(), x.begin() + spec.d_in);
  const EncodeResult f32 = EncodeOrDie(**before, row0, 1, ComputeMode::kF32);
  // Row 0's k-th best feature (the smallest kept value).
  uint32_t kth = f32.codes.indices[0];
  float smallest = f32.codes.values[0];
  for (uint64_t e = 0; e < f32.codes.row_offsets[1]; ++e) {
    if (f32.codes.values[e] < smallest) {
      smallest = f32.codes.values[e];
      kth = f32.codes.indices[e];
    }
  }
  const int64_t d_sae = spec.d_sae;
  auto copy_column = [&](uint32_t from, uint32_t to, int nudge_ulps) {
    for (int64_t p = 0; p < spec.d_in; ++p)
      dict->w_enc[p * d_sae + to] = dict->w_enc[p * d_sae + from];
    dict->b_enc[to] = dict->b_enc[from];
    float& w = dict->w_enc[(spec.d_in / 2) * d_sae + to];
    for (int u = 0; u < std::abs(nudge_ulps); ++u) {
      w = std::nextafter(w, nudge_ulps > 0 ? INFINITY : -INFINITY);
    }
  };
  // An exact twin below and above kth, and one-ulp neighbours both ways.
  const uint32_t twins[] = {3, 600, 17, 333};
  copy_column(kth, twins[0], 0);
  copy_column(kth, twins[1], 0);
  copy_column(kth, twins[2], 1);
  copy_column(kth, twins[3], -1);
  auto encoder = Encoder::Create(dict);
  ASSERT_TRUE(encoder.ok());
  const EncodeResult want = EncodeOrDie(**encoder, x, n, ComputeMode::kF32);
  const EncodeResult got = EncodeOrDie(**encoder, x, n, ComputeMode::kFastExact);
  EXPECT_TRUE(Identical(want.codes, got.codes));
}

TEST(FastExactTest, FallbackRowsAreExactToo) {
  REQUIRE_FAST_EXACT();
  DictSpec spec;
  spec.architecture = Architecture::kTopK;
  spec.d_in = 64;
  spec.d_sae = 800;
  spec.k = 20;
  const int64_t n = 400;
  const std::vector<float> x = RandomInput(n, spec.d_in, 5);
  for (int64_t limit : {int64_t{1}, int64_t{20}, int64_t{1000}}) {
    SCOPED_TRACE(limit);
    EncoderOptions options;
    options.fast_exact_options.max_candidates = limit;
    auto encoder = Encoder::Create(MakeDictionary(spec), options);
    ASSERT_TRUE(encoder.ok());
    ASSERT_EQ((*encoder)->fast_exact_ready(), true);
    const EncodeResult want = EncodeOrDie(**encoder, x, n, ComputeMode::kF32);
    const EncodeResult got = EncodeOrDie(**encoder, x, n, ComputeMode::kFastExact);
    EXPECT_TRUE(Identical(want.codes, got.codes));
    if (limit == 1) {
      EXPECT_EQ(got.fast_exact.fallback_rows, n);
    }
    if (limit == 1000) {
      EXPECT_EQ(got.fast_exact.fallback_rows, 0);
    }
    if (limit == 20) {  // k = 20: rows without a doubtful feature pass, the others fall back
      EXPECT_GT(got.fast_exact.fallback_rows, 0);
      EXPECT_LT(got.fast_exact.fallback_rows, n);
    }
  }
}

TEST(FastExactTest, BoundHoldsAndATooSmallBoundIsCaught) {
  REQUIRE_FAST_EXACT();
  const int64_t d_in = 256, d_sae = 2048, m = 200;
  std::vector<float> w = RandomInput(d_in, d_sae, 21, 0.1f);
  const std::vector<float> a = RandomInput(m, d_in, 22, 2.0f, 0.3f);
  auto exact_gemm = InvariantGemm::Create(w.data(), d_in, d_sae, InvariantGemm::Layout::kKByN);
  std::vector<float> exact(m * d_sae), screen(m * d_sae), bound(m * d_sae);
  exact_gemm->Multiply(a.data(), m, d_in, exact.data(), d_sae);

  auto good = FastExactScreen::Create(w.data(), d_in, d_sae, {});
  ASSERT_TRUE(good.ok());
  ASSERT_TRUE((*good)->ScreenWithBound(a.data(), m, screen.data(), bound.data()).ok());
  EXPECT_TRUE(
      FastExactScreen::CheckBound(exact.data(), screen.data(), bound.data(), m, d_sae).ok());
  // Not vacuous: the screen's error uses a real part of the bound.
  double worst = 0.0;
  for (int64_t e = 0; e < m * d_sae; ++e) {
    worst = std::max(worst, std::abs(static_cast<double>(exact[e]) - screen[e]) / bound[e]);
  }
  EXPECT_GT(worst, 0.01);

  FastExactOptions too_small;
  too_small.bound_scale = 1e-3;
  auto bad = FastExactScreen::Create(w.data(), d_in, d_sae, too_small);
  ASSERT_TRUE(bad.ok());
  ASSERT_TRUE((*bad)->ScreenWithBound(a.data(), m, screen.data(), bound.data()).ok());
  const absl::Status caught =
      FastExactScreen::CheckBound(exact.data(), screen.data(), bound.data(), m, d_sae);
  EXPECT_EQ(caught.code(), absl::StatusCode::kInternal) << caught;
  EXPECT_NE(caught.message().find("bound violated at row"), std::string::npos) << caught;
}

TEST(FastExactTest, ATooSmallBoundChangesCodes) {
  REQUIRE_FAST_EXACT();
  DictSpec spec;
  spec.architecture = Architecture::kTopK;
  spec.d_in = 128;
  spec.d_sae = 2048;
  spec.k = 32;
  EncoderOptions options;
  options.fast_exact_options.bound_scale = 1e-6;
  auto encoder = Encoder::Create(MakeDictionary(spec), options);
  ASSERT_TRUE(encoder.ok());
  const int64_t n = 512;
  const std::vector<float> x = RandomInput(n, spec.d_in, 9);
  const EncodeResult want = EncodeOrDie(**encoder, x, n, ComputeMode::kF32);
  const EncodeResult got = EncodeOrDie(**encoder, x, n, ComputeMode::kFastExact);
  EXPECT_FALSE(Identical(want.codes, got.codes))
      << "a bound 1e6 times too small should drop some true features";
}

TEST(FastExactTest, RejectsBadOptions) {
  std::vector<float> w(16 * 32, 0.5f);
  EXPECT_EQ(FastExactScreen::Create(nullptr, 16, 32, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FastExactScreen::Create(w.data(), 0, 32, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  FastExactOptions zero;
  zero.bound_scale = 0.0;
  EXPECT_EQ(FastExactScreen::Create(w.data(), 16, 32, zero).status().code(),
            absl::StatusCode::kInvalidArgument);
  FastExactOptions negative_group;
  negative_group.exact_group_rows = -1;
  const absl::Status group_status =
      FastExactScreen::Create(w.data(), 16, 32, negative_group).status();
  EXPECT_EQ(group_status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(group_status.message().find("exact_group_rows"), std::string::npos) << group_status;
  FastExactOptions negative_limit;
  negative_limit.max_candidates = -5;
  EXPECT_EQ(FastExactScreen::Create(w.data(), 16, 32, negative_limit).status().code(),
            absl::StatusCode::kInvalidArgument);
  if (!FastExactScreen::Available()) {
    EXPECT_EQ(FastExactScreen::Create(w.data(), 16, 32, {}).status().code(),
              absl::StatusCode::kUnimplemented);
  }
}

// The default (fastest exact) mode is FAST_EXACT only with a screen that
// beats F32 (a bf16 one); with the AVX2 int16 screen FAST_EXACT is ready
// but runs only when asked for.
TEST(FastExactTest, DefaultModeIsFastExactOnlyWhereItsScreenBeatsF32) {
  REQUIRE_FAST_EXACT();
  DictSpec spec;
  spec.architecture = Architecture::kTopK;
  spec.k = 4;
  auto encoder = Encoder::Create(MakeDictionary(spec));
  ASSERT_TRUE(encoder.ok());
  ASSERT_TRUE((*encoder)->fast_exact_ready());
  const ComputeMode want =
      Encoder::FastExactFastest() ? ComputeMode::kFastExact : ComputeMode::kF32;
  EXPECT_EQ((*encoder)->fastest_exact_mode(), want);
  EXPECT_EQ((*encoder)->default_compute_mode(), want);
  const std::vector<float> x = RandomInput(9, spec.d_in, 2);
  const EncodeResult fast = EncodeOrDie(**encoder, x, 9, ComputeMode::kFastExact);
  EXPECT_EQ(fast.compute_mode, ComputeMode::kFastExact);  // asked for: screened either way
  EXPECT_EQ(fast.fast_exact.rows, 9);
}

TEST(FastExactTest, MatchingPursuitRunsTheF32Path) {
  DictSpec spec;
  spec.architecture = Architecture::kMatchingPursuit;
  spec.k = 4;
  auto encoder = Encoder::Create(MakeDictionary(spec));
  ASSERT_TRUE(encoder.ok());
  EXPECT_FALSE((*encoder)->fast_exact_ready());
  EXPECT_EQ((*encoder)->fastest_exact_mode(), ComputeMode::kF32);
  const std::vector<float> x = RandomInput(20, spec.d_in, 1);
  const EncodeResult fast = EncodeOrDie(**encoder, x, 20, ComputeMode::kFastExact);
  const EncodeResult f32 = EncodeOrDie(**encoder, x, 20, ComputeMode::kF32);
  EXPECT_EQ(fast.compute_mode, ComputeMode::kF32);
  EXPECT_TRUE(Identical(f32.codes, fast.codes));
}

// The stories260k SAEs (trained weights) on their real activations.
TEST(FastExactTest, Stories260kEqualsF32) {
  SAEDICT_REQUIRE_STORIES260K(dir);
  REQUIRE_FAST_EXACT();
  struct Sae {
    const char* path;
    const char* acts;
  };
  for (const Sae& sae :
       {Sae{"topk_l2_a", "acts_layer2.npy"}, Sae{"topk_l2_b", "acts_layer2.npy"},
        Sae{"jumprelu_l2", "acts_layer2.npy"}, Sae{"jumprelu_l2.npz", "acts_layer2.npy"},
        Sae{"relu_l4", "acts_layer4.npy"}}) {
    SCOPED_TRACE(sae.path);
    auto loaded = formats::LoadDictionary(dir / sae.path);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    auto encoder =
        Encoder::Create(std::make_shared<const Dictionary>(std::move(loaded->dictionary)));
    ASSERT_TRUE(encoder.ok());
    auto npy = formats::ReadNpyFile(dir / sae.acts);
    ASSERT_TRUE(npy.ok()) << npy.status();
    auto acts = formats::NpyToFloat32(*npy, "acts");
    ASSERT_TRUE(acts.ok());
    const int64_t d_in = npy->shape[1];
    const int64_t n = std::min<int64_t>(npy->shape[0], 20000);
    acts->resize(n * d_in);
    const EncodeResult want = EncodeOrDie(**encoder, *acts, n, ComputeMode::kF32);
    const EncodeResult got = EncodeOrDie(**encoder, *acts, n, ComputeMode::kFastExact);
    EXPECT_TRUE(Identical(want.codes, got.codes));
    EXPECT_EQ(got.fast_exact.rows, n);
    std::printf("%s: %.1f candidates per screened row, %lld of %lld rows fell back\n", sae.path,
                static_cast<double>(got.fast_exact.candidates) /
                    std::max<int64_t>(1, n - got.fast_exact.fallback_rows),
                static_cast<long long>(got.fast_exact.fallback_rows), static_cast<long long>(n));
  }
}

}  // namespace
}  // namespace saedict::engine
