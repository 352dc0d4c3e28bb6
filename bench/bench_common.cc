// Shared pieces of the encode benchmarks (see bench_common.h).
#include "bench/bench_common.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "engine/parallel.h"
#include "service/demo_dictionary.h"
#include "util/status_macros.h"

namespace saedict::bench {

std::string BenchShape::Name() const { return absl::StrCat(d_in, "x", d_sae, "_k", k); }

std::vector<BenchShape> DefaultShapes() { return {{2304, 16384, 64}, {768, 24576, 32}}; }

absl::StatusOr<int64_t> IntFlag(const std::string& key, const std::string& value, int64_t min,
                                int64_t max) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(value, &n) || n < min || n > max) {
    return absl::InvalidArgumentError(absl::StrCat(key, " must be an integer in [", min, ", ",
                                                   max, "], got '", value, "'"));
  }
  return n;
}

absl::Status ForEachFlag(
    int argc, char** argv, const std::string& usage,
    const std::function<absl::Status(const std::string& key, const std::string& value)>& on_flag) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      std::exit(0);
    }
    const std::vector<std::string> kv = absl::StrSplit(arg, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || !absl::StartsWith(kv[0], "--")) {
      return absl::InvalidArgumentError(absl::StrCat("expected --flag=value, got '", arg, "'"));
    }
    SAEDICT_RETURN_IF_ERROR(on_flag(kv[0], kv[1]));
  }
  return absl::OkStatus();
}

absl::StatusOr<BenchFlags> ParseFlags(int argc, char** argv, const std::string& usage) {
  BenchFlags flags;
  SAEDICT_RETURN_IF_ERROR(ForEachFlag(
      argc, argv, usage, [&](const std::string& key, const std::string& value) -> absl::Status {
        int64_t number = 0;
        const bool is_number = absl::SimpleAtoi(value, &number);
        if (key == "--tokens" || key == "--warmup" || key == "--reps") {
          const int64_t min = key == "--warmup" ? 0 : 1;
          if (!is_number || number < min || number > (int64_t{1} << 24)) {
            return absl::InvalidArgumentError(
                absl::StrCat(key, " must be an integer >= ", min, ", got '", value, "'"));
          }
          if (key == "--tokens") flags.tokens = number;
          if (key == "--warmup") flags.warmup = static_cast<int>(number);
          if (key == "--reps") flags.reps = static_cast<int>(number);
        } else if (key == "--shape") {
          flags.shape = value;
        } else if (key == "--json") {
          flags.json_path = value;
        } else if (key == "--kernel") {
          using K = engine::InvariantGemm::Kernel;
          if (value == "auto") {
            flags.kernel = K::kAuto;
          } else if (value == "avx512") {
            flags.kernel = K::kAvx512;
          } else if (value == "avx2") {
            flags.kernel = K::kAvx2;
          } else if (value == "portable") {
            flags.kernel = K::kPortable;
          } else {
            return absl::InvalidArgumentError(absl::StrCat(
                "--kernel must be auto, avx512, avx2 or portable, got '", value, "'"));
          }
        } else {
          return absl::InvalidArgumentError(absl::StrCat("unknown flag '", key, "'\n", usage));
        }
        return absl::OkStatus();
      }));
  return flags;
}

absl::StatusOr<std::vector<BenchShape>> SelectShapes(const BenchFlags& flags) {
  if (flags.shape.empty()) return DefaultShapes();
  for (const BenchShape& s : DefaultShapes()) {
    if (s.Name() == flags.shape) return std::vector<BenchShape>{s};
  }
  const std::vector<std::string> parts = absl::StrSplit(flags.shape, 'x');
  BenchShape s;
  if (parts.size() == 3 && absl::SimpleAtoi(parts[0], &s.d_in) &&
      absl::SimpleAtoi(parts[1], &s.d_sae) && absl::SimpleAtoi(parts[2], &s.k) && s.d_in > 0 &&
      s.d_sae > 0 && s.k > 0 && s.k <= s.d_sae) {
    return std::vector<BenchShape>{s};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--shape must be one of 2304x16384_k64, 768x24576_k32 or D_INxD_SAExK, got '",
                   flags.shape, "'"));
}

std::shared_ptr<const engine::Dictionary> MakeRandomTopKDictionary(const BenchShape& shape,
                                                                   uint32_t seed) {
  service::RandomTopKSpec spec;
  spec.d_in = shape.d_in;
  spec.d_sae = shape.d_sae;
  spec.k = shape.k;
  spec.seed = seed;
  spec.bias_stddev = 0.01f;
  spec.model_name = "random";
  spec.hook_name = "bench";
  return service::MakeRandomTopKDictionary(spec);
}

std::vector<float> MakeActivations(int64_t n, int64_t d_in, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n * d_in);
  for (float& v : x) v = normal(gen);
  return x;
}

double SelectionAgreement(const engine::SparseCodes& reference, const engine::SparseCodes& other) {
  int64_t total = 0, same = 0;
  std::vector<uint32_t> a, b;
  for (int64_t r = 0; r < reference.num_rows && r < other.num_rows; ++r) {
    a.assign(reference.indices.begin() + reference.row_offsets[r],
             reference.indices.begin() + reference.row_offsets[r + 1]);
    b.assign(other.indices.begin() + other.row_offsets[r],
             other.indices.begin() + other.row_offsets[r + 1]);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    std::vector<uint32_t> both;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
    total += static_cast<int64_t>(std::max(a.size(), b.size()));
    same += static_cast<int64_t>(both.size());
  }
  return total == 0 ? 1.0 : double(same) / double(total);
}

double ModeTiming::BestTokensPerSecond(int64_t tokens) const {
  if (seconds.empty()) return 0;
  return double(tokens) / *std::min_element(seconds.begin(), seconds.end());
}

double ModeTiming::MedianTokensPerSecond(int64_t tokens) const {
  if (seconds.empty()) return 0;
  std::vector<double> s = seconds;
  std::sort(s.begin(), s.end());
  const size_t h = s.size() / 2;
  const double median = s.size() % 2 == 1 ? s[h] : 0.5 * (s[h - 1] + s[h]);
  return double(tokens) / median;
}

absl::StatusOr<std::vector<ModeTiming>> TimeModes(const std::vector<BenchMode>& modes, int warmup,
                                                  int reps) {
  std::vector<ModeTiming> timings(modes.size());
  for (size_t i = 0; i < modes.size(); ++i) {
    timings[i].name = modes[i].name;
    for (int w = 0; w < warmup; ++w) {
      const absl::Status s = modes[i].run();
      if (!s.ok()) return absl::Status(s.code(), absl::StrCat(modes[i].name, ": ", s.message()));
    }
  }
  for (int r = 0; r < reps; ++r) {
    for (size_t i = 0; i < modes.size(); ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      const absl::Status s = modes[i].run();
      const auto t1 = std::chrono::steady_clock::now();
      if (!s.ok()) return absl::Status(s.code(), absl::StrCat(modes[i].name, ": ", s.message()));
      timings[i].seconds.push_back(std::chrono::duration<double>(t1 - t0).count());
    }
  }
  return timings;
}

Report::Report(std::string bench, int64_t tokens) : bench_(std::move(bench)), tokens_(tokens) {}

void Report::AddShape(const BenchShape& shape) { shapes_.push_back({shape, {}, {}}); }

void Report::AddTiming(const ModeTiming& timing) {
  if (shapes_.empty()) return;
  shapes_.back().timings.push_back(timing);
  std::fprintf(stderr, "%-16s %-22s best %9.0f tok/s  median %9.0f tok/s\n",
               shapes_.back().shape.Name().c_str(), timing.name.c_str(),
               timing.BestTokensPerSecond(tokens_), timing.MedianTokensPerSecond(tokens_));
}

void Report::AddMetric(const std::string& name, double value) {
  if (shapes_.empty()) return;
  shapes_.back().metrics.emplace_back(name, value);
  std::fprintf(stderr, "%-16s %-22s %.5f\n", shapes_.back().shape.Name().c_str(), name.c_str(),
               value);
}

std::string Report::ToJson() const {
  std::string out = absl::StrFormat(
      "{\n \"bench\": \"%s\",\n \"tokens\": %d,\n \"threads\": %d,\n \"loadavg\": \"%s\",\n"
      " \"shapes\": [",
      bench_, tokens_, engine::HardwareThreads(), LoadAverage());
  for (size_t s = 0; s < shapes_.size(); ++s) {
    const ShapeResult& r = shapes_[s];
    absl::StrAppendFormat(&out,
                          "%s\n  {\"shape\": \"%s\", \"d_in\": %d, \"d_sae\": %d, \"k\": %d,\n"
                          "   \"modes\": {",
                          s ? "," : "", r.shape.Name(), r.shape.d_in, r.shape.d_sae, r.shape.k);
    for (size_t i = 0; i < r.timings.size(); ++i) {
      const ModeTiming& t = r.timings[i];
      absl::StrAppendFormat(
          &out, "%s\n    \"%s\": {\"best_tok_s\": %.1f, \"median_tok_s\": %.1f, \"best_s\": %.6f}",
          i ? "," : "", t.name, t.BestTokensPerSecond(tokens_), t.MedianTokensPerSecond(tokens_),
          t.seconds.empty() ? 0.0 : *std::min_element(t.seconds.begin(), t.seconds.end()));
    }
    out += "},\n   \"metrics\": {";
    for (size_t i = 0; i < r.metrics.size(); ++i) {
      absl::StrAppendFormat(&out, "%s\"%s\": %.6f", i ? ", " : "", r.metrics[i].first,
                            r.metrics[i].second);
    }
    out += "}}";
  }
  out += "\n ]\n}\n";
  return out;
}

absl::Status Report::Write(const BenchFlags& flags) const {
  const std::string json = ToJson();
  if (flags.json_path.empty()) {
    std::cout << json << std::flush;
    return absl::OkStatus();
  }
  std::ofstream file(flags.json_path);
  file << json;
  file.close();
  if (!file) return absl::InternalError(absl::StrCat("cannot write ", flags.json_path));
  return absl::OkStatus();
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double a = 0, b = 0, c = 0;
  if (!(in >> a >> b >> c)) return "";
  return absl::StrFormat("%.2f %.2f %.2f", a, b, c);
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string model = line.substr(colon + 1);
    model.erase(0, model.find_first_not_of(" \t"));
    return model;
  }
  return "unknown";
}

absl::Status WriteJsonReport(const std::string& json, const std::string& path) {
  std::cout << "\n" << json << std::endl;
  if (path.empty()) return absl::OkStatus();
  std::ofstream out(path);
  out << json << "\n";
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace saedict::bench
