// Shared pieces of the encode benchmarks: the benchmark shapes, a random
// top-k SAE and activations, interleaved timing of several modes, BF16-vs-F32
// selection agreement, flags and the JSON report that run_encode_bench.sh
// parses. encode_bench.cc (in-process) uses it; a gRPC loopback bench
// (encode_bench_grpc.cc, owned by the server side) is meant to reuse it so
// both print the same report format.
//
// Thread safety: plain functions and single-threaded value types; nothing
// here is shared between threads.
#ifndef SAEDICT_BENCH_BENCH_COMMON_H_
#define SAEDICT_BENCH_BENCH_COMMON_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/dictionary.h"
#include "engine/invariant_gemm.h"
#include "engine/sparse_codes.h"

namespace saedict::bench {

struct BenchShape {
  int64_t d_in = 0;
  int64_t d_sae = 0;
  int32_t k = 0;
  std::string Name() const;  // "2304x16384_k64"
};

// The two shapes every encode benchmark reports (Gemma-2-2B- and GPT-2-sized).
std::vector<BenchShape> DefaultShapes();

struct BenchFlags {
  int64_t tokens = 4096;  // rows per encode call
  int warmup = 1;         // untimed calls per mode
  int reps = 5;           // timed calls per mode (interleaved across modes)
  std::string shape;      // empty: all; else a BenchShape::Name() or "d_in x d_sae x k"
  std::string json_path;  // empty: JSON on stdout
  // The encoder's F32 GEMM kernel: auto (the widest this CPU runs), avx512,
  // avx2 or portable — to compare each against OpenBLAS's matching kernels.
  engine::InvariantGemm::Kernel kernel = engine::InvariantGemm::Kernel::kAuto;
};

// Calls on_flag(key, value) for each "--key=value" argument ("--help" / "-h"
// print `usage` and exit 0). INVALID_ARGUMENT for an argument of another
// form, or the first error on_flag returns.
absl::Status ForEachFlag(
    int argc, char** argv, const std::string& usage,
    const std::function<absl::Status(const std::string& key, const std::string& value)>& on_flag);

// `value` of flag `key` as an integer in [min, max]; INVALID_ARGUMENT naming
// the flag, the range and the value otherwise.
absl::StatusOr<int64_t> IntFlag(const std::string& key, const std::string& value, int64_t min,
                                int64_t max);

// Parses --tokens=N --warmup=N --reps=N --shape=S --json=PATH --kernel=K (and --help).
// INVALID_ARGUMENT naming the flag for anything else.
absl::StatusOr<BenchFlags> ParseFlags(int argc, char** argv, const std::string& usage);

// Shapes selected by flags.shape; INVALID_ARGUMENT when it names none.
absl::StatusOr<std::vector<BenchShape>> SelectShapes(const BenchFlags& flags);

// Random top-k SAE of `shape` (service::MakeRandomTopKDictionary: unit-norm
// Gaussian decoder rows, W_enc = W_dec^T) with b_enc, b_dec ~ N(0, 0.01²).
// Deterministic in seed.
std::shared_ptr<const engine::Dictionary> MakeRandomTopKDictionary(const BenchShape& shape,
                                                                   uint32_t seed);

// n x d_in standard Gaussian activations, row-major. Deterministic in seed.
std::vector<float> MakeActivations(int64_t n, int64_t d_in, uint32_t seed);

// Fraction of (row, feature) selections of `reference` that `other` also
// selects; rows compared as index sets. Both must have the same row count.
double SelectionAgreement(const engine::SparseCodes& reference, const engine::SparseCodes& other);

// One timed mode: a call that does the work for `tokens` rows.
struct BenchMode {
  std::string name;  // JSON key, e.g. "encode_f32"
  std::function<absl::Status()> run;
};

struct ModeTiming {
  std::string name;
  std::vector<double> seconds;  // one per rep
  double BestTokensPerSecond(int64_t tokens) const;
  double MedianTokensPerSecond(int64_t tokens) const;
};

// Warms each mode up, then runs reps rounds, each calling every mode once,
// so slow drifts in machine load hit all modes alike. Stops at the first
// error, naming the mode.
absl::StatusOr<std::vector<ModeTiming>> TimeModes(const std::vector<BenchMode>& modes, int warmup,
                                                  int reps);

// Collects results and writes the report:
//   {"bench": ..., "tokens": N, "threads": T, "loadavg": "...",
//    "shapes": [{"shape": "2304x16384_k64", "d_in": .., "d_sae": .., "k": ..,
//                "modes": {"gemm_f32": {"best_tok_s": .., "median_tok_s": ..,
//                                       "best_s": ..}, ...},
//                "metrics": {"bf16_agreement": .., ...}}]}
class Report {
 public:
  Report(std::string bench, int64_t tokens);
  void AddShape(const BenchShape& shape);  // later Add* calls go to this shape
  void AddTiming(const ModeTiming& timing);
  void AddMetric(const std::string& name, double value);
  std::string ToJson() const;
  // Writes ToJson() to flags.json_path, or stdout when it is empty.
  absl::Status Write(const BenchFlags& flags) const;

 private:
  struct ShapeResult {
    BenchShape shape;
    std::vector<ModeTiming> timings;
    std::vector<std::pair<std::string, double>> metrics;
  };
  std::string bench_;
  int64_t tokens_;
  std::vector<ShapeResult> shapes_;
};

// "1-, 5- and 15-minute load averages" from /proc/loadavg, or "" if unreadable.
std::string LoadAverage();

// The CPU's "model name" from /proc/cpuinfo ("unknown" when absent).
std::string CpuModel();

// Prints the JSON report as the last line of stdout and, when `path` is not
// empty, writes it there too (UNAVAILABLE when it cannot).
absl::Status WriteJsonReport(const std::string& json, const std::string& path);

}  // namespace saedict::bench

#endif  // SAEDICT_BENCH_BENCH_COMMON_H_
