// encode_bench: in-process throughput of the top-k encode, per benchmark shape.
//
// Modes (tokens/s, best and median over interleaved reps):
//   gemm_f32     cblas_sgemm alone, M=tokens K=d_in N=d_sae, OpenBLAS on all
//                hardware threads: the ceiling for the F32 encode;
//   gemm_f32_tiled  the same GEMM in the encoder's row tiles (tile_rows rows
//                per call, output tile reused, as Encode does);
//   gemm_invariant  InvariantGemm::Multiply alone (the encoder's F32 GEMM,
//                fixed reduction order), in the encoder's row tiles;
//   encode_f32_blas  the F32 encode as it was before the invariant kernel:
//                OpenBLAS sgemm per row tile, then the engine's own
//                ActivateRow pass (not batch-invariant; the "before" figure);
//   encode_f32   Encoder::Encode, ComputeMode::kF32 (batch-invariant);
//   encode_fast_exact  Encoder::Encode, ComputeMode::kFastExact: the F32
//                codes, bit for bit, from a low-precision screen (bf16 or int16)
//                with a proven bound
//                plus exact re-computation of the candidates (when available);
//   encode_bf16  Encoder::Encode, ComputeMode::kBF16 (when available);
//   bf16_matmul  Bf16Matmul::Run alone on the same M, K, N;
//   screen_gemm  the FAST_EXACT screen's GEMM alone (ScreenGemm: AMX or
//                AVX512-BF16 with bf16, AVX2 with int16), on rows already
//                encoded, in the encoder's row tiles (when available).
// Metrics:
//   bf16_agreement             fraction of (row, feature) selections of the F32
//                              encode that the BF16 encode also selects;
//   fast_exact_identical_rows  fraction of rows whose FAST_EXACT codes equal
//                              the F32 codes bit for bit (must be 1);
//   fast_exact_fallback_rate   fraction of rows the screen sent to the dense
//                              exact path (too many candidates);
//   fast_exact_mib / fast_exact_create_extra_s  the screen's memory (low-
//                              precision copy + norms) and what it adds to
//                              Encoder::Create;
//   fast_exact_bf16_screen     1 for a bf16 screen, 0 for the AVX2 int16 one;
//   fast_exact_candidates_per_row / fast_exact_blocks_per_row  mean over the
//                              screened rows (8-column blocks recomputed).
// The gRPC loopback numbers come from a separate executable
// (encode_bench_grpc, bench/CMakeLists.txt) printing the same JSON report.
//
// Single-threaded driver; the library calls parallelise internally.
#include <cblas.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_common.h"
#include "engine/bf16_matmul.h"
#include "engine/screen_gemm.h"
#include "engine/activation.h"
#include "engine/invariant_gemm.h"
#include "engine/parallel.h"
#include "engine/encoder.h"
#include "util/status_macros.h"

namespace saedict::bench {
namespace {

constexpr char kUsage[] =
    "encode_bench [--tokens=4096] [--warmup=1] [--reps=5] [--shape=2304x16384_k64]"
    " [--json=out.json] [--kernel=auto|avx512|avx2|portable]\n";

// Fraction of rows whose codes are identical (indices and value bits).
double IdenticalRows(const engine::SparseCodes& a, const engine::SparseCodes& b) {
  if (a.num_rows != b.num_rows || a.num_rows == 0) return 0.0;
  int64_t same = 0;
  for (int64_t r = 0; r < a.num_rows; ++r) {
    const uint64_t a0 = a.row_offsets[r], n = a.row_offsets[r + 1] - a0;
    const uint64_t b0 = b.row_offsets[r];
    if (b.row_offsets[r + 1] - b0 != n) continue;
    same += std::equal(a.indices.begin() + a0, a.indices.begin() + a0 + n,
                       b.indices.begin() + b0) &&
            std::memcmp(a.values.data() + a0, b.values.data() + b0, n * sizeof(float)) == 0;
  }
  return static_cast<double>(same) / static_cast<double>(a.num_rows);
}

// The pre-invariant F32 encode: x - b_dec, OpenBLAS sgemm per tile of
// `tile` rows into `c`, then the engine's ActivateRow per row, in parallel.
engine::EncodeResult EncodeWithBlas(const engine::Dictionary& d, const std::vector<float>& x,
                                    int64_t n, int64_t tile, std::vector<float>* c) {
  const int64_t d_in = d.config.d_in, d_sae = d.config.d_sae;
  engine::ActivationParams params;
  params.architecture = d.config.architecture;
  params.d_sae = d_sae;
  params.b_enc = d.b_enc.data();
  params.k = d.config.k;
  engine::EncodeResult result;
  engine::SparseCodes& codes = result.codes;
  codes.num_rows = n;
  codes.num_features = d_sae;
  codes.row_offsets.assign(1, 0);
  std::vector<float> a(tile * d_in);
  std::vector<std::vector<uint32_t>> row_indices(tile);
  std::vector<std::vector<float>> row_values(tile);
  for (int64_t r0 = 0; r0 < n; r0 += tile) {
    const int64_t m = std::min(tile, n - r0);
    for (int64_t i = 0; i < m * d_in; ++i) a[i] = x[r0 * d_in + i] - d.b_dec[i % d_in];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m),
                static_cast<int>(d_sae), static_cast<int>(d_in), 1.0f, a.data(),
                static_cast<int>(d_in), d.w_enc.data(), static_cast<int>(d_sae), 0.0f, c->data(),
                static_cast<int>(d_sae));
    engine::ParallelFor(m, std::max<int64_t>(1, (int64_t{1} << 16) / d_sae),
                        [&](int64_t begin, int64_t end) {
                          for (int64_t i = begin; i < end; ++i) {
                            row_indices[i].clear();
                            row_values[i].clear();
                            engine::ActivateRow(params, c->data() + i * d_sae, &row_indices[i],
                                                &row_values[i]);
                          }
                        });
    for (int64_t i = 0; i < m; ++i) {
      codes.indices.insert(codes.indices.end(), row_indices[i].begin(), row_indices[i].end());
      codes.values.insert(codes.values.end(), row_values[i].begin(), row_values[i].end());
      codes.row_offsets.push_back(codes.indices.size());
    }
  }
  return result;
}

absl::Status RunShape(const BenchShape& shape, const BenchFlags& flags, Report* report) {
  const int64_t n = flags.tokens;
  auto dict = MakeRandomTopKDictionary(shape, /*seed=*/1);
  const std::vector<float> x = MakeActivations(n, shape.d_in, /*seed=*/2);
  // Load cost of the FAST_EXACT screen: Encoder::Create with and without it.
  const absl::Time before_plain = absl::Now();
  SAEDICT_ASSIGN_OR_RETURN(std::shared_ptr<const engine::Encoder> plain,
                           engine::Encoder::Create(dict, {.kernel = flags.kernel,
                                                          .fast_exact = false}));
  const absl::Duration create_plain = absl::Now() - before_plain;
  plain.reset();
  const absl::Time before_screen = absl::Now();
  SAEDICT_ASSIGN_OR_RETURN(std::shared_ptr<const engine::Encoder> encoder,
                           engine::Encoder::Create(dict, {.kernel = flags.kernel}));
  const absl::Duration create_screen = absl::Now() - before_screen;
  std::vector<float> c(n * shape.d_sae);
  engine::EncodeResult f32_result, bf16_result, fast_result;
  engine::EncodeOptions f32_options, bf16_options, fast_options;
  bf16_options.compute_mode = engine::ComputeMode::kBF16;
  fast_options.compute_mode = engine::ComputeMode::kFastExact;

  std::vector<BenchMode> modes;
  modes.push_back({"gemm_f32", [&] {
                     cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n),
                                 static_cast<int>(shape.d_sae), static_cast<int>(shape.d_in), 1.0f,
                                 x.data(), static_cast<int>(shape.d_in), dict->w_enc.data(),
                                 static_cast<int>(shape.d_sae), 0.0f, c.data(),
                                 static_cast<int>(shape.d_sae));
                     return absl::OkStatus();
                   }});
  // The encoder runs its GEMM in row tiles; the same tiling without the
  // activation pass is the tighter ceiling for encode_f32.
  const int64_t tile = engine::EncoderOptions{}.tile_rows;
  modes.push_back({"gemm_f32_tiled", [&] {
                     for (int64_t r0 = 0; r0 < n; r0 += tile) {
                       const int m = static_cast<int>(std::min(tile, n - r0));
                       cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m,
                                   static_cast<int>(shape.d_sae), static_cast<int>(shape.d_in),
                                   1.0f, x.data() + r0 * shape.d_in, static_cast<int>(shape.d_in),
                                   dict->w_enc.data(), static_cast<int>(shape.d_sae), 0.0f,
                                   c.data(), static_cast<int>(shape.d_sae));
                     }
                     return absl::OkStatus();
                   }});
  auto gemm = engine::InvariantGemm::Create(dict->w_enc.data(), shape.d_in, shape.d_sae,
                                            engine::InvariantGemm::Layout::kKByN, flags.kernel);
  std::fprintf(stderr, "invariant kernel: %s\n", std::string(gemm->kernel_name()).c_str());
  modes.push_back({"gemm_invariant", [&] {
                     for (int64_t r0 = 0; r0 < n; r0 += tile) {
                       const int64_t m = std::min(tile, n - r0);
                       gemm->Multiply(x.data() + r0 * shape.d_in, m, shape.d_in, c.data(),
                                      shape.d_sae);
                     }
                     return absl::OkStatus();
                   }});
  engine::EncodeResult blas_result;
  modes.push_back({"encode_f32_blas", [&] {
                     blas_result = EncodeWithBlas(*dict, x, n, tile, &c);
                     return absl::OkStatus();
                   }});
  modes.push_back({"encode_f32", [&]() -> absl::Status {
                     SAEDICT_ASSIGN_OR_RETURN(f32_result, encoder->Encode(x, n, f32_options));
                     return absl::OkStatus();
                   }});
  if (encoder->fast_exact_ready()) {
    modes.push_back({"encode_fast_exact", [&]() -> absl::Status {
                       SAEDICT_ASSIGN_OR_RETURN(fast_result, encoder->Encode(x, n, fast_options));
                       return absl::OkStatus();
                     }});
  } else {
    std::fprintf(stderr,
                 "FAST_EXACT has no screen here (no AMX-BF16, AVX512-BF16 or AVX2): it would "
                 "run F32\n");
  }
  std::unique_ptr<engine::ScreenGemm> screen_gemm;
  std::vector<uint64_t> x_encoded;
  if (engine::ScreenGemmAvailable()) {
    SAEDICT_ASSIGN_OR_RETURN(screen_gemm, engine::CreateScreenGemm(dict->w_enc.data(),
                                                                   shape.d_in, shape.d_sae));
    std::fprintf(stderr, "screen GEMM: %s\n", std::string(screen_gemm->name()).c_str());
    const int64_t row_bytes = screen_gemm->encoded_row_bytes();
    x_encoded.resize((n * row_bytes + 7) / 8);
    std::vector<engine::RowNorms> norms(n);
    screen_gemm->EncodeRows(x.data(), n, x_encoded.data(), norms.data());
    modes.push_back({"screen_gemm", [&, row_bytes] {
                       const char* rows = reinterpret_cast<const char*>(x_encoded.data());
                       for (int64_t r0 = 0; r0 < n; r0 += tile) {
                         screen_gemm->Multiply(rows + r0 * row_bytes, std::min(tile, n - r0),
                                               c.data(), shape.d_sae);
                       }
                       return absl::OkStatus();
                     }});
  }
  std::unique_ptr<engine::Bf16Matmul> bf16;
  if (engine::Encoder::Bf16Available()) {
    SAEDICT_ASSIGN_OR_RETURN(
        bf16, engine::Bf16Matmul::Create(dict->w_enc.data(), shape.d_in, shape.d_sae));
    modes.push_back({"encode_bf16", [&]() -> absl::Status {
                       SAEDICT_ASSIGN_OR_RETURN(bf16_result, encoder->Encode(x, n, bf16_options));
                       return absl::OkStatus();
                     }});
    modes.push_back({"bf16_matmul", [&] { return bf16->Run(x.data(), n, c.data()); }});
  } else {
    std::fprintf(stderr, "BF16 unavailable (no oneDNN or no AVX512-BF16/AMX): no BF16 modes\n");
  }

  report->AddShape(shape);
  SAEDICT_ASSIGN_OR_RETURN(std::vector<ModeTiming> timings,
                           TimeModes(modes, flags.warmup, flags.reps));
  for (const ModeTiming& t : timings) report->AddTiming(t);
  // The invariant encode selects what the BLAS one does, up to near-ties.
  report->AddMetric("blas_agreement", SelectionAgreement(f32_result.codes, blas_result.codes));
  if (bf16 != nullptr) {
    report->AddMetric("bf16_agreement", SelectionAgreement(f32_result.codes, bf16_result.codes));
  }
  if (encoder->fast_exact_ready()) {
    report->AddMetric("fast_exact_identical_rows", IdenticalRows(f32_result.codes, fast_result.codes));
    const engine::FastExactStats& st = fast_result.fast_exact;
    const double screened = static_cast<double>(std::max<int64_t>(1, st.rows - st.fallback_rows));
    report->AddMetric("fast_exact_fallback_rate",
                      static_cast<double>(st.fallback_rows) / std::max<int64_t>(1, st.rows));
    report->AddMetric("fast_exact_candidates_per_row", st.candidates / screened);
    report->AddMetric("fast_exact_blocks_per_row", st.blocks / screened);
    report->AddMetric("fast_exact_mib", encoder->fast_exact_bytes() / 1048576.0);
    // 1 for a bf16 screen (AMX, AVX512-BF16: the >= 4x target), 0 for int16 (AVX2: >= 2x).
    report->AddMetric(
        "fast_exact_bf16_screen",
        screen_gemm != nullptr && screen_gemm->name().find("bf16") != std::string_view::npos ? 1.0
                                                                                             : 0.0);
    report->AddMetric("fast_exact_create_extra_s",
                      absl::ToDoubleSeconds(create_screen - create_plain));
  }
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  auto flags = ParseFlags(argc, argv, kUsage);
  if (!flags.ok()) {
    std::fprintf(stderr, "%s\n", std::string(flags.status().message()).c_str());
    return 2;
  }
  auto shapes = SelectShapes(*flags);
  if (!shapes.ok()) {
    std::fprintf(stderr, "%s\n", std::string(shapes.status().message()).c_str());
    return 2;
  }
  openblas_set_num_threads(engine::HardwareThreads());  // the reference GEMMs use every core
  Report report("encode_bench", flags->tokens);
  for (const BenchShape& shape : *shapes) {
    const absl::Status s = RunShape(shape, *flags, &report);
    if (!s.ok()) {
      std::fprintf(stderr, "%s: %s\n", shape.Name().c_str(), s.ToString().c_str());
      return 1;
    }
  }
  const absl::Status s = report.Write(*flags);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace saedict::bench

int main(int argc, char** argv) { return saedict::bench::Main(argc, argv); }
