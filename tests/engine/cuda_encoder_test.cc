// CudaEncoder (engine/cuda) against the CPU Encoder: every architecture ×
// normalization × b_dec placement, F32 and BF16, top_k overrides, a skip
// transcoder, reconstruction and row error, input errors, integer-exact
// dictionaries whose ties must break like the CPU's, concurrent callers, and
// batches of 0 and 1 rows. Label `gpu`: every test but the availability one
// skips visibly without a CUDA device; the availability test runs
// everywhere and checks that the absence of a device (or of CUDA in the
// build) is reported as an error, never a crash.
#include "engine/cuda/cuda_encoder.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/encoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/reference_sae.h"
#include "tests/test_util/status_matchers.h"

namespace saedict::engine {
namespace {

using ::saedict::engine::cuda::CudaEncoder;
using ::saedict::engine::cuda::CudaEncoderOptions;
using ::saedict::engine::cuda::kBf16Tolerance;
using ::saedict::engine::cuda::kF32Tolerance;
using ::saedict::engine::testing::DenseRow;
using ::saedict::engine::testing::DictSpec;
using ::saedict::engine::testing::MakeDictionary;
using ::saedict::engine::testing::RandomInput;
using ::saedict::engine::testing::ReferenceEncodeRow;
using ::saedict::engine::testing::SpecName;
using ::saedict::testing::IsOk;
using ::saedict::testing::StatusIs;
using ::testing::AnyOf;
using ::testing::HasSubstr;

#define SAEDICT_SKIP_WITHOUT_CUDA_DEVICE()                                                  \
  if (cuda::DeviceCount() == 0)                                                             \
  GTEST_SKIP() << "no CUDA device (BuiltWithCuda=" << (cuda::BuiltWithCuda() ? "true" : "false") \
               << "): GPU test skipped"

constexpr int64_t kRows = 200;  // not a multiple of kChunkRows
constexpr int64_t kChunkRows = 64;

CudaEncoderOptions SmallChunks() {
  CudaEncoderOptions options;
  options.chunk_rows = kChunkRows;
  options.lanes = 2;
  return options;
}

std::vector<float> InputFor(const DictSpec& spec, int64_t n, uint32_t seed) {
  if (spec.normalization == Normalization::kNone) return RandomInput(n, spec.d_in, seed);
  return RandomInput(n, spec.d_in, seed, 3.0f, 0.5f);
}

struct Encoders {
  std::shared_ptr<Encoder> cpu;
  std::unique_ptr<CudaEncoder> gpu;
};

void MakeEncoders(std::shared_ptr<const Dictionary> d, const CudaEncoderOptions& options,
                  Encoders* out) {
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Encoder> cpu, Encoder::Create(std::move(d)));
  out->cpu = std::move(cpu);
  SAEDICT_ASSERT_OK_AND_ASSIGN(out->gpu, CudaEncoder::Create(out->cpu, options));
}

// A[r * d_sae + f] = sum_j |x'_rj W_jf| * max(1, scale_f): the size of the
// terms the encoder GEMM sums for feature f of row r (the tolerances'
// floor, cuda_encoder.h). W is W_enc, or W_dec^T for matching pursuit.
std::vector<double> TermMagnitudes(const Dictionary& d, const std::vector<float>& xp, int64_t n) {
  const DictionaryConfig& c = d.config;
  std::vector<double> scale(c.d_sae, 1.0);
  for (int64_t f = 0; f < c.d_sae; ++f) {
    if (c.architecture == Architecture::kGated) scale[f] = std::exp(double{d.r_mag[f]});
    if (c.rescale_acts_by_decoder_norm) {
      double sq = 0.0;
      for (int64_t j = 0; j < c.d_in; ++j) sq += double{d.w_dec[f * c.d_in + j]} * d.w_dec[f * c.d_in + j];
      scale[f] = std::sqrt(sq);
    }
  }
  const bool mp = c.architecture == Architecture::kMatchingPursuit;
  std::vector<double> a(static_cast<size_t>(n * c.d_sae), 0.0);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < c.d_in; ++j) {
      const double xj = std::abs(double{xp[r * c.d_in + j]});
      for (int64_t f = 0; f < c.d_sae; ++f) {
        const float w = mp ? d.w_dec[f * c.d_in + j] : d.w_enc[j * c.d_sae + f];
        a[r * c.d_sae + f] += xj * std::abs(double{w});
      }
    }
    for (int64_t f = 0; f < c.d_sae; ++f) a[r * c.d_sae + f] *= std::max(1.0, scale[f]);
  }
  return a;
}

struct Agreement {
  int64_t rows_compared = 0;
  int64_t rows_skipped = 0;  // matching pursuit rows with an ambiguous path
  int64_t selection_differences = 0;
};

// GPU codes against the CPU's for the same input: shared features within
// tol * (|v_cpu| + A); a feature on one side only must sit at a decision
// boundary (float64 reference margin < 2 tol (1 + max_f A) for the row).
::testing::AssertionResult CodesAgree(const Dictionary& d, const Encoder& cpu,
                                      const std::vector<float>& x, int64_t n, int32_t top_k,
                                      const SparseCodes& want, const SparseCodes& got, double tol,
                                      Agreement* agreement) {
  const DictionaryConfig& c = d.config;
  if (absl::Status s = got.Validate(); !s.ok()) {
    return ::testing::AssertionFailure() << "GPU codes invalid: " << s;
  }
  if (got.num_rows != n || got.num_features != c.d_sae || want.num_rows != n) {
    return ::testing::AssertionFailure() << "shape " << got.num_rows << "x" << got.num_features
                                         << ", expected " << n << "x" << c.d_sae;
  }
  std::vector<float> xp(static_cast<size_t>(n * c.d_in));
  if (absl::Status s = cpu.PreprocessRows(x, 0, n, xp.data()); !s.ok()) {
    return ::testing::AssertionFailure() << "PreprocessRows: " << s;
  }
  const std::vector<double> a = TermMagnitudes(d, xp, n);
  const bool mp = c.architecture == Architecture::kMatchingPursuit;
  for (int64_t r = 0; r < n; ++r) {
    const double* ar = a.data() + r * c.d_sae;
    const double a_max = *std::max_element(ar, ar + c.d_sae);
    const double boundary = 2.0 * tol * (1.0 + a_max);
    const auto ref = ReferenceEncodeRow(d, x.data() + r * c.d_in, top_k);
    if (mp && ref.mp_min_gap < boundary) {
      ++agreement->rows_skipped;
      continue;
    }
    ++agreement->rows_compared;
    const std::vector<double> cv = DenseRow(want, r);
    const std::vector<double> gv = DenseRow(got, r);
    for (int64_t f = 0; f < c.d_sae; ++f) {
      if (cv[f] != 0.0 && gv[f] != 0.0) {
        const double allowed = tol * (std::abs(cv[f]) + ar[f]) + 1e-7;
        if (std::abs(gv[f] - cv[f]) > allowed) {
          return ::testing::AssertionFailure()
                 << "row " << r << " feature " << f << ": gpu " << gv[f] << " cpu " << cv[f]
                 << " (allowed " << allowed << ", A " << ar[f] << ")";
        }
      } else if (cv[f] != 0.0 || gv[f] != 0.0) {
        ++agreement->selection_differences;
        if (!(ref.margin[f] < boundary)) {
          return ::testing::AssertionFailure()
                 << "row " << r << " feature " << f << " selected on one side only: gpu " << gv[f]
                 << " cpu " << cv[f] << ", reference margin " << ref.margin[f] << " >= "
                 << boundary;
        }
      }
    }
  }
  return ::testing::AssertionSuccess();
}

void ExpectSameCodes(const SparseCodes& a, const SparseCodes& b) {
  EXPECT_EQ(a.num_rows, b.num_rows);
  EXPECT_EQ(a.num_features, b.num_features);
  EXPECT_EQ(a.row_offsets, b.row_offsets);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.values, b.values);
}

// --- runs everywhere ---------------------------------------------------------

TEST(CudaAvailabilityTest, AbsenceIsReportedNotACrash) {
  auto dict = MakeDictionary({.architecture = Architecture::kTopK, .k = 4, .seed = 3});
  SAEDICT_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encoder> cpu, Encoder::Create(dict));
  EXPECT_THAT(CudaEncoder::Create(nullptr, {}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("null")));
  const int devices = cuda::DeviceCount();
  if (devices == 0) {
    auto created = CudaEncoder::Create(cpu, {});
    EXPECT_THAT(created.status(),
                AnyOf(StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("CUDA")),
                      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("CUDA"))));
    if (!cuda::BuiltWithCuda()) {
      EXPECT_THAT(created.status().message(), HasSubstr("this build has no CUDA backend"));
    } else {
      EXPECT_THAT(created.status().message(), HasSubstr("no CUDA device"));
    }
    EXPECT_FALSE(cuda::GetDeviceInfo(0).ok());
    std::cout << "no CUDA device here (BuiltWithCuda=" << cuda::BuiltWithCuda()
              << "): Create says: " << created.status() << "\n";
    return;
  }
  SAEDICT_ASSERT_OK_AND_ASSIGN(cuda::DeviceInfo info, cuda::GetDeviceInfo(0));
  EXPECT_EQ(info.ordinal, 0);
  EXPECT_FALSE(info.name.empty());
  EXPECT_GT(info.total_bytes, 0);
  EXPECT_GT(info.multiprocessors, 0);
  CudaEncoderOptions bad;
  bad.device = devices;
  EXPECT_THAT(CudaEncoder::Create(cpu, bad).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out of range")));
  bad.device = 0;
  bad.chunk_rows = 0;
  EXPECT_THAT(CudaEncoder::Create(cpu, bad).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("chunk_rows")));
}

// --- every architecture × normalization × b_dec -------------------------------

class CudaEncoderSpecTest : public ::testing::TestWithParam<DictSpec> {};

TEST_P(CudaEncoderSpecTest, F32MatchesCpu) {
  SAEDICT_SKIP_WITHOUT_CUDA_DEVICE();
  const DictSpec spec = GetParam();
  auto dict = MakeDictionary(spec);
  Encoders e;
  ASSERT_NO_FATAL_FAILURE(MakeEncoders(dict, SmallChunks(), &e));
  const std::vector<float> x = InputFor(spec, kRows, 11);
  EncodeOptions options;
  options.return_reconstruction = true;
  options.return_row_error = true;
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult want, e.cpu->Encode(x, kRows, options));
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult got, e.gpu->Encode(x, kRows, options));
  EXPECT_EQ(got.compute_mode, ComputeMode::kF32);
  Agreement agreement;
  EXPECT_TRUE(CodesAgree(*dict, *e.cpu, x, kRows, 0, want.codes, got.codes, kF32Tolerance,
                         &agreement));
  EXPECT_GE(agreement.rows_compared, kRows * 9 / 10) << agreement.rows_skipped << " rows skipped";
  // Near-ties are rare in F32: at most a handful of features differ.
  EXPECT_LE(agreement.selection_differences, kRows / 20);

  // Reconstruction and row error are the CPU engine's, from the GPU's codes.
  EncodeResult again;
  again.codes = got.codes;
  ASSERT_THAT(e.cpu->FinishEncode(x, kRows, options, &again), IsOk());
  EXPECT_EQ(got.reconstruction, again.reconstruction);
  EXPECT_EQ(got.row_squared_error, again.row_squared_error);
  ASSERT_EQ(got.reconstruction.size(), want.reconstruction.size());
  for (int64_t r = 0; r < kRows; ++r) {
    const auto begin = [&](const SparseCodes& s) { return s.indices.begin() + s.row_offsets[r]; };
    const auto end = [&](const SparseCodes& s) { return s.indices.begin() + s.row_offsets[r + 1]; };
    if (!std::equal(begin(got.codes), end(got.codes), begin(want.codes), end(want.codes))) continue;
    for (int64_t j = 0; j < spec.d_in; ++j) {
      const float w = want.reconstruction[r * spec.d_in + j];
      EXPECT_NEAR(got.reconstruction[r * spec.d_in + j], w, 1e-3 * (1.0 + std::abs(w)))
          << "row " << r << " column " << j;
    }
    EXPECT_NEAR(got.row_squared_error[r], want.row_squared_error[r],
                1e-3 * (1.0 + want.row_squared_error[r]))
        << "row " << r;
  }
}

TEST_P(CudaEncoderSpecTest, Bf16WithinTolerance) {
  SAEDICT_SKIP_WITHOUT_CUDA_DEVICE();
  const DictSpec spec = GetParam();
  auto dict = MakeDictionary(spec);
  Encoders e;
  ASSERT_NO_FATAL_FAILURE(MakeEncoders(dict, SmallChunks(), &e));
  const std::vector<float> x = InputFor(spec, kRows, 12);
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult want, e.cpu->Encode(x, kRows));
  EncodeOptions options;
  options.compute_mode = ComputeMode::kBF16;
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult got, e.gpu->Encode(x, kRows, options));
  EXPECT_EQ(got.compute_mode, ComputeMode::kBF16);
  Agreement agreement;
  EXPECT_TRUE(CodesAgree(*dict, *e.cpu, x, kRows, 0, want.codes, got.codes, kBf16Tolerance,
                         &agreement));
  if (spec.architecture != Architecture::kMatchingPursuit) {
    EXPECT_EQ(agreement.rows_compared, kRows);
  }
}

TEST_P(CudaEncoderSpecTest, TopKOverrideMatchesCpu) {
  SAEDICT_SKIP_WITHOUT_CUDA_DEVICE();
  const DictSpec spec = GetParam();
  auto dict = MakeDictionary(spec);
  Encoders e;
  ASSERT_NO_FATAL_FAILURE(MakeEncoders(dict, SmallChunks(), &e));
  const std::vector<float> x = InputFor(spec, kRows, 13);
  // Matching pursuit runs top_k steps: 40, not d_sae, keeps the float64
  // reference quick.
  const bool mp = spec.architecture == Architecture::kMatchingPursuit;
  for (int32_t top_k : {1, 5, mp ? 40 : static_cast<int32_t>(spec.d_sae)}) {
    EncodeOptions options;
    options.top_k = top_k;
    SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult want, e.cpu->Encode(x, kRows, options));
    SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult got, e.gpu->Encode(x, kRows, options));
    for (int64_t r = 0; r < kRows; ++r) {
      ASSERT_LE(got.codes.row_offsets[r + 1] - got.codes.row_offsets[r],
                static_cast<uint64_t>(top_k))
          << "top_k " << top_k << " row " << r;
    }
    Agreement agreement;
    EXPECT_TRUE(CodesAgree(*dict, *e.cpu, x, kRows, top_k, want.codes, got.codes, kF32Tolerance,
                           &agreement))
        << "top_k " << top_k;
  }
}

TEST_P(CudaEncoderSpecTest, ZeroAndOneRowBatches) {
  SAEDICT_SKIP_WITHOUT_CUDA_DEVICE();
  const DictSpec spec = GetParam();
  auto dict = MakeDictionary(spec);
  Encoders e;
  ASSERT_NO_FATAL_FAILURE(MakeEncoders(dict, SmallChunks(), &e));
  EncodeOptions options;
  options.return_reconstruction = true;
  options.return_row_error = true;
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult none, e.gpu->Encode({}, 0, options));
  EXPECT_EQ(none.codes.num_rows, 0);
  EXPECT_EQ(none.codes.num_features, spec.d_sae);
  EXPECT_EQ(none.codes.row_offsets, std::vector<uint64_t>{0});
  EXPECT_TRUE(none.reconstruction.empty());
  EXPECT_TRUE(none.row_squared_error.empty());

  const std::vector<float> x = InputFor(spec, 1, 14);
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult want, e.cpu->Encode(x, 1, options));
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult got, e.gpu->Encode(x, 1, options));
  Agreement agreement;
  EXPECT_TRUE(CodesAgree(*dict, *e.cpu, x, 1, 0, want.codes, got.codes, kF32Tolerance,
                         &agreement));
  EXPECT_EQ(got.reconstruction.size(), static_cast<size_t>(spec.d_in));
  EXPECT_EQ(got.row_squared_error.size(), 1u);
}

std::vector<DictSpec> AllSpecs() {
  std::vector<DictSpec> specs;
  const std::vector<DictSpec> bases = {
      {.architecture = Architecture::kStandard},
      {.architecture = Architecture::kTopK, .k = 16},
      {.architecture = Architecture::kTopK, .rescale_acts_by_decoder_norm = true, .k = 16},
      {.architecture = Architecture::kJumpReLU},
      {.architecture = Architecture::kGated},
      {.architecture = Architecture::kMatchingPursuit, .k = 8},
      {.architecture = Architecture::kMatchingPursuit, .mp_store_w_enc = false, .k = 12,
       .mp_residual_threshold = 5.0f},
  };
  uint32_t seed = 100;
  for (const DictSpec& base : bases) {
    for (Normalization norm : {Normalization::kNone, Normalization::kConstantNormRescale,
                               Normalization::kLayerNorm}) {
      for (bool b_dec_in : {true, false}) {
        DictSpec spec = base;
        spec.normalization = norm;
        spec.apply_b_dec_to_input = b_dec_in;
        spec.seed = seed++;
        specs.push_back(spec);
      }
    }
  }
  return specs;
}

std::string ParamName(const ::testing::TestParamInfo<DictSpec>& info) {
  std::string name = SpecName(info.param);
  if (info.param.mp_residual_threshold > 0.0f) name += "_threshold";
  return name;
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, CudaEncoderSpecTest, ::testing::ValuesIn(AllSpecs()),
                         ParamName);

// --- integer-exact dictionaries: every tie must break like the CPU's ------------

// Small integers in x, W_enc and the biases: every product and sum is exact in
// float32 (and bf16), in any order, so the GPU must return the CPU's codes bit
// for bit, ties (there are many) included.
std::shared_ptr<Dictionary> IntegerDictionary(Architecture architecture, int64_t d_in,
                                              int64_t d_sae, int32_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> w(-1, 1);
  std::uniform_int_distribution<int> b(-2, 2);
  auto d = std::make_shared<Dictionary>();
  DictionaryConfig& c = d->config;
  c.model_name = "test-model";
  c.hook_name = "blocks.0.hook_resid_post";
  c.d_in = d_in;
  c.d_sae = d_sae;
  c.architecture = architecture;
  c.apply_b_dec_to_input = false;
  c.k = k;
  d->w_enc.resize(static_cast<size_t>(d_in * d_sae));
  for (float& v : d->w_enc) v = static_cast<float>(w(rng));
  d->w_dec.resize(static_cast<size_t>(d_sae * d_in));
  for (float& v : d->w_dec) v = static_cast<float>(w(rng)) * 0.5f;
  d->b_dec.assign(d_in, 0.25f);
  if (architecture == Architecture::kGated) {
    d->b_gate.resize(d_sae);
    d->b_mag.resize(d_sae);
    d->r_mag.assign(d_sae, 0.0f);  // exp(0) = 1: the magnitude path stays exact
    for (float& v : d->b_gate) v = static_cast<float>(b(rng));
    for (float& v : d->b_mag) v = static_cast<float>(b(rng));
    return d;
  }
  d->b_enc.resize(d_sae);
  for (float& v : d->b_enc) v = static_cast<float>(b(rng));
  if (architecture == Architecture::kJumpReLU) {
    d->threshold.resize(d_sae);
    for (float& v : d->threshold) v = static_cast<float>(b(rng) + 2);  // 0..4, often == h
  }
  return d;
}

std::vector<float> IntegerInput(int64_t n, int64_t d_in, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> v(-2, 2);
  std::vector<float> x(static_cast<size_t>(n * d_in));
  for (float& e : x) e = static_cast<float>(v(rng));
  return x;
}

TEST(CudaEncoderExactTest, TiesBreakLikeTheCpu) {
  SAEDICT_SKIP_WITHOUT_CUDA_DEVICE();
  struct Case {
    Architecture architecture;
    int64_t d_sae;
    int32_t k;
    std::vector<int32_t> top_ks;
  };
  const std::vector<Case> cases = {
      {Architecture::kTopK, 300, 7, {0, 1, 50}},
      {Architecture::kTopK, 4099, 64, {0, 2, 1000}},  // rows longer than many 256-wide tiles
      {Architecture::kStandard, 300, 0, {0, 3, 299}},
      {Architecture::kJumpReLU, 1000, 0, {0, 9}},
      {Architecture::kGated, 600, 0, {0, 4}},
  };
  uint32_t seed = 7;
  for (const Case& tc : cases) {
    auto dict = IntegerDictionary(tc.architecture, 32, tc.d_sae, tc.k, seed++);
    Encoders e;
    ASSERT_NO_FATAL_FAILURE(MakeEncoders(dict, SmallChunks(), &e));
    const std::vector<float> x = IntegerInput(kRows, 32, seed++);
    for (int32_t top_k : tc.top_ks) {
      for (ComputeMode mode : {ComputeMode::kF32, ComputeMode::kBF16}) {
        SCOPED_TRACE(absl::StrCat(ArchitectureName(tc.architecture), " d_sae ", tc.d_sae,
                                  " top_k ", top_k, " bf16 ", mode == ComputeMode::kBF16));
        EncodeOptions options;
        options.top_k = top_k;
        SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult want, e.cpu->Encode(x, kRows, options));
        options.compute_mode = mode;
        SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult got, e.gpu->Encode(x, kRows, options));
        ExpectSameCodes(got.codes, want.codes);
      }
    }
  }
}

// --- transcoders ---------------------------------------------------------------

TEST(CudaEncoderTranscoderTest, SkipTranscoderMatchesCpu) {
  SAEDICT_SKIP_WITHOUT_CUDA_DEVICE();
  for (auto [architecture, k] : {std::pair{Architecture::kStandard, 0},
                                 std::pair{Architecture::kTopK, 8},
                                 std::pair{Architecture::kJumpReLU, 0}}) {
    SCOPED_TRACE(ArchitectureName(architecture));
    auto dict = testing::MakeTranscoder({.architecture = architecture, .skip = true, .k = k});
    Encoders e;
    ASSERT_NO_FATAL_FAILURE(MakeEncoders(dict, SmallChunks(), &e));
    const int64_t d_out = dict->config.d_out;
    const std::vector<float> x = RandomInput(kRows, dict->config.d_in, 21);
    EncodeOptions options;
    options.return_reconstruction = true;
    SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult want, e.cpu->Encode(x, kRows, options));
    SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult got, e.gpu->Encode(x, kRows, options));
    Agreement agreement;
    EXPECT_TRUE(CodesAgree(*dict, *e.cpu, x, kRows, 0, want.codes, got.codes, kF32Tolerance,
                           &agreement));
    ASSERT_EQ(got.reconstruction.size(), static_cast<size_t>(kRows * d_out));
    EncodeResult again;
    again.codes = got.codes;
    ASSERT_THAT(e.cpu->FinishEncode(x, kRows, options, &again), IsOk());
    EXPECT_EQ(got.reconstruction, again.reconstruction);  // includes x W_skip^T

    options.return_row_error = true;
    const absl::Status cpu_error = e.cpu->Encode(x, kRows, options).status();
    EXPECT_THAT(e.gpu->Encode(x, kRows, options).status(),
                StatusIs(cpu_error.code(), std::string(cpu_error.message())));
  }
}

// --- errors ----------------------------------------------------------------------

TEST(CudaEncoderErrorsTest, SameErrorsAsCpu) {
  SAEDICT_SKIP_WITHOUT_CUDA_DEVICE();
  const DictSpec spec{.architecture = Architecture::kStandard, .seed = 9};
  auto dict = MakeDictionary(spec);
  Encoders e;
  ASSERT_NO_FATAL_FAILURE(MakeEncoders(dict, SmallChunks(), &e));
  auto expect_same = [&](const std::vector<float>& x, int64_t n, const EncodeOptions& options,
                         const std::string& what) {
    const absl::Status cpu = e.cpu->Encode(x, n, options).status();
    ASSERT_FALSE(cpu.ok()) << what;
    EXPECT_THAT(e.gpu->Encode(x, n, options).status(),
                StatusIs(cpu.code(), std::string(cpu.message())))
        << what;
  };
  std::vector<float> x = RandomInput(kRows, spec.d_in, 31);
  expect_same(std::vector<float>(x.begin(), x.end() - 1), kRows, {}, "wrong size");
  expect_same(x, -1, {}, "negative n");
  std::vector<float> nan = x;
  nan[3 * spec.d_in + 7] = std::numeric_limits<float>::quiet_NaN();
  expect_same(nan, kRows, {}, "NaN");
  EXPECT_THAT(e.gpu->Encode(nan, kRows).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x[row 3, column 7]")));
  std::vector<float> inf = x;
  inf[150 * spec.d_in] = std::numeric_limits<float>::infinity();
  expect_same(inf, kRows, {}, "Inf");
  EncodeOptions too_many;
  too_many.top_k = static_cast<int32_t>(spec.d_sae) + 1;
  expect_same(x, kRows, too_many, "top_k > d_sae");
  EncodeOptions negative;
  negative.top_k = -1;
  expect_same(x, kRows, negative, "top_k < 0");
  std::vector<float> huge = x;  // finite, but too large for float32 GEMMs (in chunk 2)
  for (int64_t j = 0; j < spec.d_in; ++j) huge[130 * spec.d_in + j] = 1e37f;
  expect_same(huge, kRows, {}, "too large");

  // The encoder still works after the errors.
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult want, e.cpu->Encode(x, kRows));
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult got, e.gpu->Encode(x, kRows));
  Agreement agreement;
  EXPECT_TRUE(CodesAgree(*dict, *e.cpu, x, kRows, 0, want.codes, got.codes, kF32Tolerance,
                         &agreement));
}

TEST(CudaEncoderErrorsTest, Bf16NeedsItsWeights) {
  SAEDICT_SKIP_WITHOUT_CUDA_DEVICE();
  auto dict = MakeDictionary({.architecture = Architecture::kTopK, .k = 8, .seed = 4});
  CudaEncoderOptions options = SmallChunks();
  options.keep_bf16_weights = false;
  Encoders e;
  ASSERT_NO_FATAL_FAILURE(MakeEncoders(dict, options, &e));
  const std::vector<float> x = RandomInput(10, dict->config.d_in, 5);
  EncodeOptions bf16;
  bf16.compute_mode = ComputeMode::kBF16;
  EXPECT_THAT(e.gpu->Encode(x, 10, bf16).status(),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("keep_bf16_weights")));
  EncodeOptions fast;
  fast.compute_mode = ComputeMode::kFastExact;
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult got, e.gpu->Encode(x, 10, fast));
  EXPECT_EQ(got.compute_mode, ComputeMode::kF32);
}

// --- buffers, chunks, concurrency -------------------------------------------------

TEST(CudaEncoderLanesTest, BuffersGrowAcrossCallsAndChunkingIsConsistent) {
  SAEDICT_SKIP_WITHOUT_CUDA_DEVICE();
  const DictSpec spec{.architecture = Architecture::kTopK, .d_sae = 700, .k = 4, .seed = 8};
  auto dict = MakeDictionary(spec);
  Encoders e;
  ASSERT_NO_FATAL_FAILURE(MakeEncoders(dict, SmallChunks(), &e));
  EXPECT_EQ(e.gpu->chunk_rows(), kChunkRows);
  EXPECT_GT(e.gpu->device_bytes(), static_cast<int64_t>(dict->w_enc.size() * sizeof(float)));
  const std::vector<float> x = RandomInput(kRows, spec.d_in, 17);
  const int64_t before = e.gpu->device_bytes();
  // k = 4, then every feature (grows the CSR buffers), then k again.
  for (int32_t top_k : {0, static_cast<int32_t>(spec.d_sae), 0}) {
    EncodeOptions options;
    options.top_k = top_k;
    SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult want, e.cpu->Encode(x, kRows, options));
    SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult got, e.gpu->Encode(x, kRows, options));
    Agreement agreement;
    EXPECT_TRUE(CodesAgree(*dict, *e.cpu, x, kRows, top_k, want.codes, got.codes, kF32Tolerance,
                           &agreement))
        << "top_k " << top_k;
  }
  EXPECT_GT(e.gpu->device_bytes(), before);
  // A row's codes in a chunk of its own agree with the same row in a batch
  // (within tolerance: cuBLAS may pick another kernel for another shape).
  SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult batch, e.gpu->Encode(x, kRows));
  for (int64_t r : {0L, 63L, 64L, 199L}) {
    std::vector<float> row(x.begin() + r * spec.d_in, x.begin() + (r + 1) * spec.d_in);
    SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult alone, e.gpu->Encode(row, 1));
    const SparseCodes slice = SliceRows(batch.codes, r, r + 1);
    Agreement agreement;
    EXPECT_TRUE(CodesAgree(*dict, *e.cpu, row, 1, 0, slice, alone.codes, kF32Tolerance,
                           &agreement))
        << "row " << r;
  }
}

TEST(CudaEncoderLanesTest, ConcurrentCallersGetTheirOwnRows) {
  SAEDICT_SKIP_WITHOUT_CUDA_DEVICE();
  const DictSpec spec{.architecture = Architecture::kJumpReLU,
                      .normalization = Normalization::kLayerNorm,
                      .seed = 12};
  auto dict = MakeDictionary(spec);
  Encoders e;
  ASSERT_NO_FATAL_FAILURE(MakeEncoders(dict, SmallChunks(), &e));  // 2 lanes, 4 callers
  constexpr int kThreads = 4;
  constexpr int kCalls = 3;
  std::vector<std::vector<float>> inputs;
  std::vector<EncodeResult> alone;
  for (int t = 0; t < kThreads; ++t) {
    inputs.push_back(InputFor(spec, kRows - 10 * t, 40 + t));
    EncodeOptions options;
    options.return_reconstruction = true;
    SAEDICT_ASSERT_OK_AND_ASSIGN(EncodeResult result,
                                 e.gpu->Encode(inputs[t], kRows - 10 * t, options));
    alone.push_back(std::move(result));
  }
  std::vector<std::vector<EncodeResult>> results(kThreads);
  std::vector<absl::Status> statuses(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int call = 0; call < kCalls; ++call) {
        EncodeOptions options;
        options.return_reconstruction = true;
        auto result = e.gpu->Encode(inputs[t], kRows - 10 * t, options);
        if (!result.ok()) {
          statuses[t] = result.status();
          return;
        }
        results[t].push_back(std::move(result).value());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_THAT(statuses[t], IsOk()) << "thread " << t;
    ASSERT_EQ(results[t].size(), static_cast<size_t>(kCalls));
    for (const EncodeResult& result : results[t]) {
      // Same shape, same device and library: the same bits.
      ExpectSameCodes(result.codes, alone[t].codes);
      EXPECT_EQ(result.reconstruction, alone[t].reconstruction);
    }
  }
}

}  // namespace
}  // namespace saedict::engine
