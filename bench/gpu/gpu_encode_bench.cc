// gpu_encode_bench: the CUDA encode backend on one GPU, in one run, for the
// issue's shapes (2304x16384 and 4096x131072, top-k k=64):
//   cuda_f32 / cuda_bf16   CudaEncoder::Encode of --tokens host rows, the
//                          whole call (H2D, GEMM, selection, CSR, D2H)
//   gemm_f32 / gemm_bf16   the cuBLAS GEMM alone on device data (the ceiling)
//   worker_bf16            the same rows through the worker protocol: a
//                          saedict-worker at --worker (its backend) behind
//                          server::WorkerPool, --worker_calls concurrent
//                          batches of --worker_rows rows (--worker_mode=f32:
//                          worker_f32; --only_worker=true: this figure alone,
//                          with no CUDA device needed here)
// plus agreement with the CPU engine's F32 codes on --check_rows rows
// (fraction of selections shared, max relative value error on them).
// Prints one JSON object (stdout or --json=PATH); bench/gpu/run_hopper.sh
// turns it into ratios next to torch on the same GPU.
//
// Without a CUDA device it prints why and exits 3.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/bench_common.h"
#include "bench/gpu/cublas_gemm_alone.h"
#include "engine/cuda/cuda_encoder.h"
#include "engine/encoder.h"
#include "server/worker_pool.h"

namespace saedict::bench {
namespace {

struct GpuFlags {
  int64_t tokens = 16384;
  int warmup = 2;
  int reps = 5;
  int64_t check_rows = 256;
  std::string shape;  // empty: both
  std::string json_path;
  std::string worker;  // host:port of a saedict-worker; empty: skip
  int64_t worker_rows = 4096;
  int worker_calls = 4;
  bool only_worker = false;  // measure the worker protocol alone (no CUDA needed here)
  engine::ComputeMode worker_mode = engine::ComputeMode::kBF16;
};

constexpr char kUsage[] =
    "gpu_encode_bench [--tokens=16384] [--reps=5] [--warmup=2] [--check_rows=256]\n"
    "                 [--shape=2304x16384_k64] [--json=PATH]\n"
    "                 [--worker=HOST:PORT --worker_rows=4096 --worker_calls=4 --worker_mode=bf16]\n"
    "                 [--only_worker=true]  (the worker protocol alone: no CUDA device needed\n"
    "                                        here, the worker brings its own backend)\n";

absl::StatusOr<GpuFlags> Parse(int argc, char** argv) {
  GpuFlags f;
  absl::Status s = ForEachFlag(argc, argv, kUsage, [&](const std::string& flag,
                                                       const std::string& v) -> absl::Status {
    const std::string k = flag.substr(2);  // ForEachFlag passes "--name"
    auto as_int = [&](int64_t lo, int64_t hi, auto* out) -> absl::Status {
      absl::StatusOr<int64_t> n = IntFlag(k, v, lo, hi);
      if (!n.ok()) return n.status();
      *out = static_cast<std::remove_pointer_t<decltype(out)>>(*n);
      return absl::OkStatus();
    };
    if (k == "tokens") return as_int(1, int64_t{1} << 22, &f.tokens);
    if (k == "warmup") return as_int(0, 100, &f.warmup);
    if (k == "reps") return as_int(1, 1000, &f.reps);
    if (k == "check_rows") return as_int(0, int64_t{1} << 20, &f.check_rows);
    if (k == "worker_rows") return as_int(1, int64_t{1} << 20, &f.worker_rows);
    if (k == "worker_calls") return as_int(1, 64, &f.worker_calls);
    if (k == "shape") return (f.shape = v, absl::OkStatus());
    if (k == "json") return (f.json_path = v, absl::OkStatus());
    if (k == "worker") return (f.worker = v, absl::OkStatus());
    if (k == "worker_mode") {
      if (v != "bf16" && v != "f32") {
        return absl::InvalidArgumentError("--worker_mode must be bf16 or f32, got '" + v + "'");
      }
      f.worker_mode = v == "bf16" ? engine::ComputeMode::kBF16 : engine::ComputeMode::kF32;
      return absl::OkStatus();
    }
    if (k == "only_worker") {
      if (v != "true" && v != "false") {
        return absl::InvalidArgumentError("--only_worker must be true or false, got '" + v + "'");
      }
      f.only_worker = v == "true";
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(absl::StrCat("unknown flag --", k, "\n", kUsage));
  });
  if (!s.ok()) return s;
  return f;
}

// One mode timed alone by bench_common's TimeModes (so an error in one
// mode leaves the others' figures in the report).
absl::StatusOr<ModeTiming> TimeOne(const std::string& name, int warmup, int reps,
                                   std::function<absl::Status()> run) {
  absl::StatusOr<std::vector<ModeTiming>> t = TimeModes({{name, std::move(run)}}, warmup, reps);
  if (!t.ok()) return t.status();
  return std::move(t->front());
}

// Selections of `gpu` that the CPU's F32 codes share, and the largest
// relative value difference on them.
std::string Agreement(const engine::SparseCodes& cpu, const engine::SparseCodes& gpu) {
  double max_rel = 0.0;
  for (int64_t r = 0; r < cpu.num_rows; ++r) {
    uint64_t a = cpu.row_offsets[r], b = gpu.row_offsets[r];
    while (a < cpu.row_offsets[r + 1] && b < gpu.row_offsets[r + 1]) {
      if (cpu.indices[a] < gpu.indices[b]) {
        ++a;
      } else if (gpu.indices[b] < cpu.indices[a]) {
        ++b;
      } else {
        const double want = cpu.values[a], got = gpu.values[b];
        max_rel = std::max(max_rel, std::abs(got - want) / std::max(std::abs(want), 1e-6));
        ++a;
        ++b;
      }
    }
  }
  return absl::StrFormat("{\"selection_agreement\": %.6f, \"max_rel_value_error\": %.3g}",
                         SelectionAgreement(cpu, gpu), max_rel);
}

// {"tokens_per_s": median, "best_tokens_per_s": best} of `tokens` rows per
// call, or {"error": ...}.
std::string TimingJson(const absl::StatusOr<ModeTiming>& t, int64_t tokens) {
  if (!t.ok()) return absl::StrFormat("{\"error\": \"%s\"}", t.status().ToString());
  return absl::StrFormat("{\"tokens_per_s\": %.1f, \"best_tokens_per_s\": %.1f}",
                         t->MedianTokensPerSecond(tokens), t->BestTokensPerSecond(tokens));
}

// The cuBLAS GEMM alone, timed on the device by CUDA events.
absl::StatusOr<ModeTiming> GemmAlone(const std::string& name, const GpuFlags& f,
                                     const BenchShape& shape, bool bf16) {
  gpu::GemmAloneTiming t =
      gpu::TimeCublasGemm(0, f.tokens, shape.d_in, shape.d_sae, bf16, f.warmup, f.reps);
  if (!t.error.empty()) return absl::InternalError(t.error);
  return ModeTiming{name, std::move(t.seconds)};
}

// Tokens per timed call: --worker_calls batches of --worker_rows rows.
int64_t WorkerRoundTokens(const GpuFlags& f) {
  return std::min(f.worker_rows, f.tokens) * f.worker_calls;
}

// The rows through the worker protocol: WorkerPool (weights by hash, then
// EncodeBatch) with --worker_calls batches in flight at once.
absl::StatusOr<ModeTiming> WorkerTiming(const GpuFlags& f, const engine::Encoder& cpu,
                                        const std::vector<float>& x, int64_t d_in) {
  server::WorkerPoolOptions options;
  options.addresses = {f.worker};
  options.cache_dir = std::filesystem::temp_directory_path() / "saedict-gpu-bench-cache";
  std::filesystem::create_directories(options.cache_dir);
  options.batch_timeout = absl::Seconds(300);
  options.max_message_bytes = 1 << 30;
  absl::StatusOr<std::unique_ptr<server::WorkerPool>> pool = server::WorkerPool::Create(options);
  if (!pool.ok()) return pool.status();
  (*pool)->CheckHealthNow();
  engine::EncodeOptions encode;
  encode.compute_mode = f.worker_mode;
  const int64_t rows = std::min(f.worker_rows, f.tokens);
  auto round = [&]() -> absl::Status {
    std::vector<std::thread> threads;
    std::vector<absl::Status> errors(f.worker_calls);
    for (int c = 0; c < f.worker_calls; ++c) {
      threads.emplace_back([&, c] {
        const int64_t first = (c * rows) % std::max<int64_t>(1, f.tokens - rows + 1);
        absl::StatusOr<engine::EncodeResult> r = (*pool)->Run(
            cpu, absl::MakeConstSpan(x.data() + first * d_in, rows * d_in), rows, encode);
        if (!r.ok()) errors[c] = r.status();
      });
    }
    for (std::thread& t : threads) t.join();
    for (const absl::Status& e : errors) {
      if (!e.ok()) return e;
    }
    if ((*pool)->fallback_batches() > 0) {
      return absl::UnavailableError("the worker failed batches (fell back to CPU)");
    }
    return absl::OkStatus();
  };
  return TimeOne("worker", f.warmup, f.reps, round);
}

// The in-process figures of one shape, as JSON members each followed by ", ".
absl::StatusOr<std::string> InProcess(const GpuFlags& f, const BenchShape& shape,
                                      const std::shared_ptr<const engine::Encoder>& cpu,
                                      const std::vector<float>& x) {
  absl::StatusOr<std::unique_ptr<engine::cuda::CudaEncoder>> gpu =
      engine::cuda::CudaEncoder::Create(cpu, {});
  if (!gpu.ok()) return gpu.status();
  auto encode = [&](engine::ComputeMode mode, engine::SparseCodes* keep) {
    return [&, mode, keep]() -> absl::Status {
      engine::EncodeOptions o;
      o.compute_mode = mode;
      absl::StatusOr<engine::EncodeResult> r = (*gpu)->Encode(x, f.tokens, o);
      if (!r.ok()) return r.status();
      *keep = std::move(r->codes);
      return absl::OkStatus();
    };
  };
  engine::SparseCodes f32_codes, bf16_codes;
  const absl::StatusOr<ModeTiming> f32 =
      TimeOne("cuda_f32", f.warmup, f.reps, encode(engine::ComputeMode::kF32, &f32_codes));
  const absl::StatusOr<ModeTiming> bf16 =
      TimeOne("cuda_bf16", f.warmup, f.reps, encode(engine::ComputeMode::kBF16, &bf16_codes));
  const absl::StatusOr<ModeTiming> gemm_f32 = GemmAlone("gemm_f32", f, shape, false);
  const absl::StatusOr<ModeTiming> gemm_bf16 = GemmAlone("gemm_bf16", f, shape, true);
  std::string agreement = "null";
  const int64_t check = std::min(f.check_rows, f.tokens);
  if (check > 0 && f32.ok() && bf16.ok()) {
    std::cerr << "  CPU F32 reference on " << check << " rows\n";
    absl::StatusOr<engine::EncodeResult> want =
        cpu->Encode(absl::MakeConstSpan(x.data(), check * shape.d_in), check);
    if (!want.ok()) return want.status();
    auto head = [&](const engine::SparseCodes& c) {  // the first `check` rows
      engine::SparseCodes h;
      h.num_rows = check;
      h.num_features = c.num_features;
      h.row_offsets.assign(c.row_offsets.begin(), c.row_offsets.begin() + check + 1);
      h.indices.assign(c.indices.begin(), c.indices.begin() + h.row_offsets.back());
      h.values.assign(c.values.begin(), c.values.begin() + h.row_offsets.back());
      return h;
    };
    agreement = absl::StrCat("{\"f32\": ", Agreement(want->codes, head(f32_codes)),
                             ", \"bf16\": ", Agreement(want->codes, head(bf16_codes)), "}");
  }
  return absl::StrCat("\"cuda_f32\": ", TimingJson(f32, f.tokens),
                      ", \"cuda_bf16\": ", TimingJson(bf16, f.tokens),
                      ", \"gemm_f32\": ", TimingJson(gemm_f32, f.tokens),
                      ", \"gemm_bf16\": ", TimingJson(gemm_bf16, f.tokens),
                      ", \"device_bytes\": ", (*gpu)->device_bytes(),
                      ", \"agreement_with_cpu_f32\": ", agreement, ", ");
}

int Main(int argc, char** argv) {
  absl::StatusOr<GpuFlags> flags = Parse(argc, argv);
  if (!flags.ok()) {
    std::cerr << flags.status().message() << "\n";
    return 2;
  }
  if (flags->only_worker && flags->worker.empty()) {
    std::cerr << "--only_worker=true needs --worker=HOST:PORT\n";
    return 2;
  }
  engine::cuda::DeviceInfo device;
  device.name = "none (worker protocol only)";
  if (!flags->only_worker) {
    if (engine::cuda::DeviceCount() == 0) {
      std::cerr << "gpu_encode_bench: no CUDA device (BuiltWithCuda="
                << engine::cuda::BuiltWithCuda() << "); nothing to measure\n";
      return 3;
    }
    absl::StatusOr<engine::cuda::DeviceInfo> info = engine::cuda::GetDeviceInfo(0);
    if (!info.ok()) {
      std::cerr << info.status() << "\n";
      return 3;
    }
    device = *std::move(info);
  }
  BenchFlags shape_flags;
  shape_flags.shape = flags->shape;
  absl::StatusOr<std::vector<BenchShape>> shapes = SelectShapes(shape_flags);
  if (!shapes.ok()) {
    std::cerr << shapes.status().message() << "\n";
    return 2;
  }
  if (flags->shape.empty()) {  // the GPU shapes, not the CPU benches' pair
    shapes = std::vector<BenchShape>{{2304, 16384, 64}, {4096, 131072, 64}};
  }
  std::string json = absl::StrFormat(
      "{\"device\": \"%s\", \"cc\": \"%d.%d\", \"multiprocessors\": %d, \"tokens\": %d, "
      "\"shapes\": {",
      device.name, device.cc_major, device.cc_minor, device.multiprocessors, flags->tokens);
  bool first_shape = true;
  for (const BenchShape& shape : *shapes) {
    std::cerr << "shape " << shape.Name() << "\n";
    std::shared_ptr<const engine::Dictionary> dict = MakeRandomTopKDictionary(shape, 1);
    engine::EncoderOptions cpu_options;
    cpu_options.fast_exact = false;  // the CPU reference is plain F32
    absl::StatusOr<std::unique_ptr<engine::Encoder>> cpu = engine::Encoder::Create(dict, cpu_options);
    if (!cpu.ok()) {
      std::cerr << cpu.status() << "\n";
      return 1;
    }
    std::shared_ptr<const engine::Encoder> shared_cpu = std::move(*cpu);
    const std::vector<float> x = MakeActivations(flags->tokens, shape.d_in, 2);
    std::string in_process;
    if (!flags->only_worker) {
      absl::StatusOr<std::string> measured = InProcess(*flags, shape, shared_cpu, x);
      if (!measured.ok()) {
        std::cerr << measured.status() << "\n";
        return 1;
      }
      in_process = *measured;
    }
    std::string worker = "null";
    if (!flags->worker.empty()) {
      std::cerr << "  through the worker at " << flags->worker << "\n";
      worker = TimingJson(WorkerTiming(*flags, *shared_cpu, x, shape.d_in),
                          WorkerRoundTokens(*flags));
    }
    absl::StrAppend(&json, first_shape ? "" : ", ", "\"", shape.Name(), "\": {", in_process,
                    "\"worker_",
                    flags->worker_mode == engine::ComputeMode::kBF16 ? "bf16" : "f32", "\": ",
                    worker, "}");
    first_shape = false;
  }
  json += "}}";
  if (absl::Status s = WriteJsonReport(json, flags->json_path); !s.ok()) {
    std::cerr << s << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace saedict::bench

int main(int argc, char** argv) { return saedict::bench::Main(argc, argv); }
