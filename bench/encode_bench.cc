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
//   encode_bf16  Encoder::Encode, ComputeMode::kBF16 (when available);
//   bf16_matmul  Bf16Matmul::Run alone on the same M, K, N.
// Metrics:
//   bf16_agreement             fraction of (row, feature) selections of the F32
//                              encode that the BF16 encode also selects;
//   bf16_rescore_agreement_mK  the same for "BF16 GEMM picks k+K candidates,
//                              exact F32 dot products re-rank them" (an
//                              accuracy probe for a possible encoder mode;
//                              not timed), on the first 1024 rows.
// The gRPC loopback numbers come from a separate executable
// (encode_bench_grpc, bench/CMakeLists.txt) printing the same JSON report.
//
// Single-threaded driver; the library calls parallelise internally.
#include <cblas.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_common.h"
#include "engine/bf16_matmul.h"
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

// Top-k of the bf16 GEMM widened by `margin` candidates, re-ranked with exact
// float32 pre-activations; returns the agreement with `reference` rows.
double RescoreAgreement(const engine::Dictionary& d, const engine::Bf16Matmul& bf16,
                        const std::vector<float>& x, int64_t rows, int32_t margin,
                        const engine::SparseCodes& reference) {
  const int64_t d_in = d.config.d_in, d_sae = d.config.d_sae;
  const int32_t k = d.config.k;
  std::vector<float> xc(rows * d_in);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < d_in; ++j) xc[r * d_in + j] = x[r * d_in + j] - d.b_dec[j];
  }
  std::vector<float> pre(rows * d_sae);
  if (!bf16.Run(xc.data(), rows, pre.data()).ok()) return -1;
  std::vector<float> w_t(d_sae * d_in);  // W_enc^T: one contiguous row per feature
  for (int64_t j = 0; j < d_in; ++j) {
    for (int64_t i = 0; i < d_sae; ++i) w_t[i * d_in + j] = d.w_enc[j * d_sae + i];
  }
  engine::SparseCodes out;
  out.num_rows = rows;
  out.num_features = d_sae;
  out.row_offsets.assign(1, 0);
  std::vector<uint32_t> order(d_sae);
  std::vector<std::pair<float, uint32_t>> exact;
  for (int64_t r = 0; r < rows; ++r) {
    const float* h = pre.data() + r * d_sae;
    std::iota(order.begin(), order.end(), 0u);
    const int64_t wide = std::min<int64_t>(k + margin, d_sae);
    std::nth_element(order.begin(), order.begin() + wide - 1, order.end(),
                     [&](uint32_t a, uint32_t b) { return h[a] + d.b_enc[a] > h[b] + d.b_enc[b]; });
    exact.clear();
    for (int64_t c = 0; c < wide; ++c) {
      const uint32_t f = order[c];
      const float dot =
          cblas_sdot(static_cast<int>(d_in), xc.data() + r * d_in, 1, w_t.data() + f * d_in, 1);
      exact.emplace_back(dot + d.b_enc[f], f);
    }
    std::partial_sort(exact.begin(), exact.begin() + k, exact.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    for (int32_t c = 0; c < k; ++c) {
      if (exact[c].first > 0) out.indices.push_back(exact[c].second);
    }
    out.row_offsets.push_back(out.indices.size());
  }
  engine::SparseCodes ref = reference;
  ref.num_rows = rows;
  return SelectionAgreement(ref, out);
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
  SAEDICT_ASSIGN_OR_RETURN(std::shared_ptr<const engine::Encoder> encoder,
                           engine::Encoder::Create(dict, {.kernel = flags.kernel}));
  std::vector<float> c(n * shape.d_sae);
  engine::EncodeResult f32_result, bf16_result;
  engine::EncodeOptions f32_options, bf16_options;
  bf16_options.compute_mode = engine::ComputeMode::kBF16;

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
    std::fprintf(stderr, "BF16 unavailable (no oneDNN or no AVX512-BF16/AMX): F32 modes only\n");
  }

  report->AddShape(shape);
  SAEDICT_ASSIGN_OR_RETURN(std::vector<ModeTiming> timings,
                           TimeModes(modes, flags.warmup, flags.reps));
  for (const ModeTiming& t : timings) report->AddTiming(t);
  // The invariant encode selects what the BLAS one does, up to near-ties.
  report->AddMetric("blas_agreement", SelectionAgreement(f32_result.codes, blas_result.codes));
  if (bf16 != nullptr) {
    report->AddMetric("bf16_agreement", SelectionAgreement(f32_result.codes, bf16_result.codes));
    const int64_t rows = std::min<int64_t>(n, 1024);
    for (const int32_t margin : {shape.k / 4, shape.k}) {
      report->AddMetric(absl::StrCat("bf16_rescore_agreement_m", margin),
                        RescoreAgreement(*dict, *bf16, x, rows, margin, f32_result.codes));
    }
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
