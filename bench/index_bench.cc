// index_bench: the index/ library (FeatureIndex, PrecomputeNeighbours) next
// to the BLAS calls that bound it, measured in the same run.
//
// Cases (--cases=precompute,exact,approx; each runs alone):
//   precompute  index::PrecomputeNeighbours (top_n=32, block 256) on the exact
//               "Flat" index of --flat_n x --flat_d random-normal directions,
//               against the reference: cblas_sgemm of the same float32 unit
//               rows against all of them, in the same query blocks, no
//               selection. --precompute_rows=N measures only the leading N
//               features (queries) against all rows (both sides alike; the
//               precompute is stopped through its cancel hook after the block
//               holding feature N-1). Interleaved reps; best and median.
//               Target: precompute / GEMM <= 1.3x.
//   exact       FeatureIndex::Search latency with one unit query (top_n=10,
//               the half-precision scan path) on the same Flat index, against
//               one cblas_sgemv over the float32 unit rows and HalfRows::Score
//               alone (the scan without the selection). Target p50 <= 5 ms.
//               Latency is measured twice: cold (2x the last-level cache read
//               before every timed call: the matrix comes from DRAM) and warm
//               (calls back to back; this VM's 300 MB L3 holds the 75 MB half
//               rows, so warm is an L3 figure there).
//   approx      the same on an approximate index (factory --approx_factory,
//               default IVF1024,Flat; "auto" = IVF<4 sqrt(n)>,Flat = IVF2048,Flat
//               here, whose training alone took ~5 min on 2 cores) over --approx_n x
//               --approx_d STRUCTURED directions: --clusters random-normal
//               centres, each row = centre + --spread x N(0, I) noise
//               (tests/index/index_test_util.h ClusteredRows); queries are
//               further rows of the same draw (same centres), not in the index.
//               The index is built once; each further --ivf_nprobe value is
//               applied by Save + Load (the only public way to reconfigure).
//               Target p50 <= 5 ms at recall@10 >= 0.95.
// Recall@10: |returned ids ∩ true ids| / 10 per query, averaged; the truth
// is brute force: sgemm of the queries against the raw rows (scaled by the
// float64 row norms) picks the top 10 + 22 candidates, rescored in float64
// cosine from the raw rows.
// Build: FeatureIndex::Build time next to a reference (Flat: Directions +
// UnitRows, the float64 normalisation every index starts with; IVF: one
// k-means assignment pass, the sgemm of all rows against nlist unit rows),
// and memory_bytes() next to the raw float32 size n x d x 4.
// Memory bandwidth: a two-thread streaming read of the float32 unit rows, so
// the scans' bytes/query / time can be compared against what the machine
// reads.
//
// Output: tables on stdout, then one JSON line (also to --json=PATH).
// Progress goes to stderr. Single-threaded driver; the library and OpenBLAS
// parallelise internally (OpenBLAS on all hardware threads).
#include <cblas.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/bench_common.h"
#include "engine/dictionary.h"
#include "engine/parallel.h"
#include "index/directions.h"
#include "index/feature_index.h"
#include "index/half_rows.h"
#include "index/neighbours.h"
#include "tests/index/index_test_util.h"
#include "util/status_macros.h"

namespace saedict::bench {
namespace {

constexpr char kUsage[] = R"(index_bench: neighbour precompute, single-query latency and recall of index/.
  --cases=precompute,exact,approx  which parts to run
  --queries=200         single-vector queries per latency/recall run (after --warmup)
  --warmup=5            untimed queries before each latency run
  --reference_queries=50  the sgemv (and scan-alone) references time the first N queries
  --flush_mb=0          cold latency: MB read before each timed call to evict the caches
                        (0: twice the last-level cache size from sysfs)
  --top_n=10            hits per query (recall@top_n)
  --flat_n=16384 --flat_d=2304   the random-normal set of precompute and exact
  --precompute_rows=16384  leading features whose neighbours are timed (<= flat_n)
  --precompute_reps=2   interleaved reps of precompute and its GEMM reference
  --approx_n=262144 --approx_d=768  the structured set of approx
  --clusters=4096 --spread=0.4      its centres and relative noise
  --approx_factory=IVF1024,Flat  FAISS factory string, or "auto" (IndexConfig's
                        default: IVF2048,Flat at 262144 rows, ~2x the training time)
  --ivf_nprobe=1,4,16,64  nprobe values to measure (comma list; 0 = the library
                        default max(16, nlist/8)); the first is built, the
                        others are applied by Save + Load
  --tmp_dir=DIR         where Save writes for the nprobe sweep (default: system temp)
  --json=PATH           also write the JSON report there
)";

constexpr double kPrecomputeRatioTarget = 1.3;
constexpr double kP50TargetMs = 5;
constexpr double kRecallTarget = 0.95;
constexpr int kPrecomputeTopN = 32;

struct Flags {
  std::vector<std::string> cases = {"precompute", "exact", "approx"};
  int queries = 200;
  int warmup = 5;
  int reference_queries = 50;
  int64_t flush_mb = 0;  // 0: twice the last-level cache (sysfs), at least 64 MB
  int top_n = 10;
  int64_t flat_n = 16384, flat_d = 2304;
  int64_t precompute_rows = -1;  // -1: flat_n
  int precompute_reps = 2;
  int64_t approx_n = 262144, approx_d = 768;
  int64_t clusters = 4096;
  double spread = 0.4;
  // "auto" resolves to IVF2048,Flat at 262144 rows; its k-means took ~5 min
  // on a 2-core VM (OpenBLAS Prescott kernels), so the default is IVF1024.
  std::string approx_factory = "IVF1024,Flat";
  std::vector<int> nprobe = {1, 4, 16, 64};
  std::string tmp_dir;
  std::string json_path;
  bool Has(const std::string& c) const {
    return std::find(cases.begin(), cases.end(), c) != cases.end();
  }
};

absl::StatusOr<Flags> ParseIndexFlags(int argc, char** argv) {
  Flags f;
  SAEDICT_RETURN_IF_ERROR(ForEachFlag(
      argc, argv, kUsage, [&](const std::string& key, const std::string& value) -> absl::Status {
        auto number = [&](int64_t min, int64_t max) { return IntFlag(key, value, min, max); };
        if (key == "--cases") {
          f.cases = absl::StrSplit(value, ',', absl::SkipEmpty());
          for (const std::string& c : f.cases) {
            if (c != "precompute" && c != "exact" && c != "approx") {
              return absl::InvalidArgumentError(
                  absl::StrCat("--cases: precompute, exact or approx, got '", c, "'"));
            }
          }
        } else if (key == "--queries") {
          SAEDICT_ASSIGN_OR_RETURN(int64_t n, number(1, 1000000));
          f.queries = static_cast<int>(n);
        } else if (key == "--warmup") {
          SAEDICT_ASSIGN_OR_RETURN(int64_t n, number(0, 1000000));
          f.warmup = static_cast<int>(n);
        } else if (key == "--reference_queries") {
          SAEDICT_ASSIGN_OR_RETURN(int64_t n, number(1, 1000000));
          f.reference_queries = static_cast<int>(n);
        } else if (key == "--flush_mb") {
          SAEDICT_ASSIGN_OR_RETURN(f.flush_mb, number(0, 1 << 16));
        } else if (key == "--top_n") {
          SAEDICT_ASSIGN_OR_RETURN(int64_t n, number(1, 1000));
          f.top_n = static_cast<int>(n);
        } else if (key == "--flat_n") {
          SAEDICT_ASSIGN_OR_RETURN(f.flat_n, number(64, int64_t{1} << 24));
        } else if (key == "--flat_d") {
          SAEDICT_ASSIGN_OR_RETURN(f.flat_d, number(1, 65536));
        } else if (key == "--precompute_rows") {
          SAEDICT_ASSIGN_OR_RETURN(f.precompute_rows, number(1, int64_t{1} << 24));
        } else if (key == "--precompute_reps") {
          SAEDICT_ASSIGN_OR_RETURN(int64_t n, number(1, 100));
          f.precompute_reps = static_cast<int>(n);
        } else if (key == "--approx_n") {
          SAEDICT_ASSIGN_OR_RETURN(f.approx_n, number(1024, int64_t{1} << 26));
        } else if (key == "--approx_d") {
          SAEDICT_ASSIGN_OR_RETURN(f.approx_d, number(1, 65536));
        } else if (key == "--clusters") {
          SAEDICT_ASSIGN_OR_RETURN(f.clusters, number(1, int64_t{1} << 24));
        } else if (key == "--spread") {
          if (!absl::SimpleAtod(value, &f.spread) || !(f.spread >= 0) || f.spread > 100) {
            return absl::InvalidArgumentError(
                absl::StrCat("--spread must be a number in [0, 100], got '", value, "'"));
          }
        } else if (key == "--approx_factory") {
          f.approx_factory = value;
        } else if (key == "--ivf_nprobe") {
          f.nprobe.clear();
          for (absl::string_view part : absl::StrSplit(value, ',', absl::SkipEmpty())) {
            int p = 0;
            if (!absl::SimpleAtoi(part, &p) || p < 0 || p > (1 << 20)) {
              return absl::InvalidArgumentError(
                  absl::StrCat("--ivf_nprobe: integers >= 0, got '", value, "'"));
            }
            f.nprobe.push_back(p);
          }
          if (f.nprobe.empty()) return absl::InvalidArgumentError("--ivf_nprobe: empty list");
        } else if (key == "--tmp_dir") {
          f.tmp_dir = value;
        } else if (key == "--json") {
          f.json_path = value;
        } else {
          return absl::InvalidArgumentError(absl::StrCat("unknown flag '", key, "'\n", kUsage));
        }
        return absl::OkStatus();
      }));
  if (f.precompute_rows < 0 || f.precompute_rows > f.flat_n) f.precompute_rows = f.flat_n;
  return f;
}

// ---------------------------------------------------------------------------
// Small helpers.

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

struct Stats {
  int n = 0;
  double p50 = 0, p99 = 0, mean = 0, max = 0, min = 0;
};

// Nearest-rank percentiles of `v` (any unit).
Stats Summarise(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = static_cast<int>(v.size());
  auto rank = [&](double p) {
    const int64_t r = static_cast<int64_t>(std::ceil(p * double(v.size())));
    return v[std::clamp<int64_t>(r - 1, 0, static_cast<int64_t>(v.size()) - 1)];
  };
  s.p50 = rank(0.5);
  s.p99 = rank(0.99);
  s.min = v.front();
  s.max = v.back();
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  return s;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 == 1 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}
double Best(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::min_element(v.begin(), v.end());
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

// A flat JSON object built in insertion order.
class JsonObject {
 public:
  void Num(const std::string& key, double v) {
    Raw(key, std::isfinite(v) ? absl::StrFormat("%.6g", v) : std::string("null"));
  }
  void Int(const std::string& key, int64_t v) { Raw(key, absl::StrCat(v)); }
  void Str(const std::string& key, const std::string& v) {
    Raw(key, absl::StrCat("\"", JsonEscape(v), "\""));
  }
  void Bool(const std::string& key, bool v) { Raw(key, v ? "true" : "false"); }
  void Obj(const std::string& key, const JsonObject& o) { Raw(key, o.ToString()); }
  void Raw(const std::string& key, const std::string& json) {
    parts_.push_back(absl::StrCat("\"", JsonEscape(key), "\":", json));
  }
  std::string ToString() const { return absl::StrCat("{", absl::StrJoin(parts_, ","), "}"); }

 private:
  std::vector<std::string> parts_;
};

JsonObject StatsJson(const Stats& s) {
  JsonObject o;
  o.Int("n", s.n);
  o.Num("p50", s.p50);
  o.Num("p99", s.p99);
  o.Num("mean", s.mean);
  o.Num("max", s.max);
  return o;
}

// A decoder-only dictionary holding `rows` ([n, d]) as W_dec (moved in; the
// decoder directions are all the index reads). Unlike
// testing::DirectionsDictionary, no W_enc is materialised: at 262144 x 768
// that transpose costs 0.8 GB and seconds for nothing.
std::shared_ptr<const engine::Dictionary> DecoderDictionary(std::vector<float> rows, int64_t n,
                                                            int64_t d) {
  auto dict = std::make_shared<engine::Dictionary>();
  dict->config.d_in = d;
  dict->config.d_sae = n;
  dict->config.architecture = engine::Architecture::kStandard;
  rows.resize(static_cast<size_t>(n * d));
  dict->w_dec = std::move(rows);
  dict->b_enc.assign(n, 0.0f);
  dict->b_dec.assign(d, 0.0f);
  return dict;
}

// Unit queries in float64 (UnitQuery) and float32 (the same, rounded).
struct Queries {
  int64_t n = 0, d = 0;
  std::vector<std::vector<double>> unit;
  std::vector<float> unit_f32;  // [n, d]
};

absl::StatusOr<Queries> MakeQueries(const float* raw, int64_t n, int64_t d) {
  Queries q;
  q.n = n;
  q.d = d;
  q.unit_f32.resize(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i) {
    SAEDICT_ASSIGN_OR_RETURN(
        std::vector<double> u,
        index::UnitQuery(absl::MakeConstSpan(raw + i * d, static_cast<size_t>(d)), d, "query"));
    for (int64_t j = 0; j < d; ++j) q.unit_f32[i * d + j] = static_cast<float>(u[j]);
    q.unit.push_back(std::move(u));
  }
  return q;
}

// Brute-force top `k` feature ids per query (float64 cosine, descending,
// then id), `exclude[q]` left out (or -1). Candidates: the top k + 22 by an
// sgemm of the float32 unit queries against the raw rows divided by their
// float64 norms; each rescored in float64 from the raw rows.
std::vector<std::vector<uint32_t>> BruteForceTop(const std::vector<float>& raw, int64_t n,
                                                 int64_t d, const Queries& q, int k,
                                                 const std::vector<int64_t>& exclude = {}) {
  std::vector<double> norms(n);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += double(raw[i * d + j]) * raw[i * d + j];
    norms[i] = std::sqrt(s);
  }
  const int64_t want = std::min<int64_t>(n, k + 22 + 1);
  const int64_t block = std::clamp<int64_t>((int64_t{1} << 24) / n, 1, 64);
  std::vector<std::vector<uint32_t>> out(q.n);
  std::vector<float> scores;
  for (int64_t first = 0; first < q.n; first += block) {
    const int64_t rows = std::min(block, q.n - first);
    scores.resize(static_cast<size_t>(rows * n));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                static_cast<int>(n), static_cast<int>(d), 1.0f, q.unit_f32.data() + first * d,
                static_cast<int>(d), raw.data(), static_cast<int>(d), 0.0f, scores.data(),
                static_cast<int>(n));
    engine::ParallelFor(rows, 1, [&](int64_t begin, int64_t end) {
      std::vector<uint32_t> ids(n);
      for (int64_t r = begin; r < end; ++r) {
        const float* s = scores.data() + r * n;
        auto approx = [&](uint32_t i) { return norms[i] == 0 ? 0.0 : double(s[i]) / norms[i]; };
        std::iota(ids.begin(), ids.end(), 0u);
        std::nth_element(ids.begin(), ids.begin() + (want - 1), ids.end(),
                         [&](uint32_t a, uint32_t b) { return approx(a) > approx(b); });
        std::vector<std::pair<double, uint32_t>> exact;
        const int64_t skip = exclude.empty() ? -1 : exclude[first + r];
        for (int64_t c = 0; c < want; ++c) {
          const uint32_t i = ids[c];
          if (static_cast<int64_t>(i) == skip) continue;
          double dot = 0;
          for (int64_t j = 0; j < d; ++j) dot += q.unit[first + r][j] * raw[i * d + j];
          exact.emplace_back(norms[i] == 0 ? 0.0 : dot / norms[i], i);
        }
        std::sort(exact.begin(), exact.end(), [](const auto& a, const auto& b) {
          return a.first > b.first || (a.first == b.first && a.second < b.second);
        });
        std::vector<uint32_t>& o = out[first + r];
        for (int64_t c = 0; c < k && c < static_cast<int64_t>(exact.size()); ++c) {
          o.push_back(exact[c].second);
        }
      }
    });
  }
  return out;
}

double Recall(const std::vector<std::vector<index::Hit>>& got,
              const std::vector<std::vector<uint32_t>>& truth, int k) {
  double sum = 0;
  for (size_t q = 0; q < truth.size(); ++q) {
    std::vector<uint32_t> a = truth[q], b;
    for (const index::Hit& h : got[q]) b.push_back(h.feature);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    std::vector<uint32_t> both;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
    sum += double(both.size()) / double(std::max<size_t>(1, std::min<size_t>(k, a.size())));
  }
  return truth.empty() ? 0 : sum / double(truth.size());
}

// Two-thread (ParallelFor) streaming read of `bytes` worth of floats: the
// memory bandwidth the scans compete with. Best of 5, GB/s.
double StreamReadGBs(const std::vector<float>& data) {
  const int64_t n = static_cast<int64_t>(data.size());
  constexpr int64_t kChunk = int64_t{1} << 20;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<float> sums(chunks);
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    engine::ParallelFor(chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const float* p = data.data() + c * kChunk;
        const int64_t len = std::min(kChunk, n - c * kChunk);
        float acc[32] = {};
        int64_t j = 0;
        for (; j + 32 <= len; j += 32) {
          for (int l = 0; l < 32; ++l) acc[l] += p[j + l];
        }
        for (; j < len; ++j) acc[0] += p[j];
        float s = 0;
        for (float a : acc) s += a;
        sums[c] = s;
      }
    });
    best = std::min(best, Seconds(t0, Clock::now()));
  }
  volatile float sink = std::accumulate(sums.begin(), sums.end(), 0.0f);
  (void)sink;
  return double(n) * sizeof(float) / best / 1e9;
}

// Evicts the caches: reads one byte per 64-byte line of a buffer of
// `bytes` (twice the last-level cache by default) on engine::ParallelFor.
class CacheFlusher {
 public:
  explicit CacheFlusher(int64_t bytes) : buf_(static_cast<size_t>(bytes), 1) {}
  int64_t bytes() const { return static_cast<int64_t>(buf_.size()); }
  void Flush() {
    constexpr int64_t kChunk = int64_t{1} << 22;
    const int64_t n = bytes(), chunks = (n + kChunk - 1) / kChunk;
    partial_.assign(chunks, 0);
    engine::ParallelFor(chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const uint8_t* p = buf_.data() + c * kChunk;
        const int64_t len = std::min(kChunk, n - c * kChunk);
        uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        int64_t j = 0;
        for (; j + 256 <= len; j += 256) {
          a0 += p[j];
          a1 += p[j + 64];
          a2 += p[j + 128];
          a3 += p[j + 192];
        }
        for (; j < len; j += 64) a0 += p[j];
        partial_[c] = a0 + a1 + a2 + a3;
      }
    });
    sink_ = sink_ + std::accumulate(partial_.begin(), partial_.end(), uint64_t{0});
  }

 private:
  std::vector<uint8_t> buf_;
  std::vector<uint64_t> partial_;
  volatile uint64_t sink_ = 0;
};

// The last-level cache size from sysfs (bytes), or 0.
int64_t LastLevelCacheBytes() {
  int64_t best = 0;
  for (int i = 0; i < 8; ++i) {
    std::ifstream in(absl::StrCat("/sys/devices/system/cpu/cpu0/cache/index", i, "/size"));
    std::string text;
    if (!(in >> text) || text.empty()) continue;
    int64_t scale = 1;
    const char unit = text.back();
    if (unit == 'K') scale = 1024;
    if (unit == 'M') scale = 1024 * 1024;
    if (scale != 1) text.pop_back();
    int64_t v = 0;
    if (absl::SimpleAtoi(text, &v)) best = std::max(best, v * scale);
  }
  return best;
}

// Per-query latency of FeatureIndex::Search (one query per call) and the
// references: one cblas_sgemv over `reference_rows` and (when `half` is
// given) HalfRows::Score alone, the exact index's scan without the
// selection, each for the first `reference_queries` queries. Two passes:
//   cold: the caches flushed (CacheFlusher) before every timed call, so
//         each call reads its matrix from DRAM;
//   warm: every call back to back, several of the same kind in a row, so a
//         matrix that fits the last-level cache is read from there.
// Milliseconds.
struct LatencyTimes {
  std::vector<double> search_ms, sgemv_ms, half_ms;
};
struct LatencyRun {
  LatencyTimes cold, warm;
  std::vector<std::vector<index::Hit>> hits;  // one list per query (cold pass)
};

absl::StatusOr<LatencyRun> MeasureLatency(const index::FeatureIndex& idx, const Queries& q,
                                          int top_n, int warmup,
                                          const std::vector<float>* reference_rows,
                                          int64_t reference_queries, const index::HalfRows* half,
                                          CacheFlusher* flusher) {
  const int64_t n = idx.size(), d = idx.dim();
  std::vector<float> y(n);
  auto sgemv = [&](int64_t i) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(n), static_cast<int>(d), 1.0f,
                reference_rows->data(), static_cast<int>(d), q.unit_f32.data() + i * d, 1, 0.0f,
                y.data(), 1);
  };
  auto score = [&](int64_t i) { half->Score(q.unit_f32.data() + i * d, y.data()); };
  const index::SearchOptions options{top_n};
  std::vector<std::vector<double>> one(1);
  auto search = [&](int64_t i) -> absl::StatusOr<std::vector<index::Hit>> {
    one[0] = q.unit[i];
    SAEDICT_ASSIGN_OR_RETURN(std::vector<std::vector<index::Hit>> hits, idx.Search(one, options));
    return std::move(hits[0]);
  };
  auto timed = [](auto&& fn) {
    const auto t0 = Clock::now();
    fn();
    return 1e3 * Seconds(t0, Clock::now());
  };
  const int64_t refs = std::min<int64_t>(reference_queries, q.n);
  for (int w = 0; w < warmup; ++w) {
    if (reference_rows != nullptr && w == 0) sgemv(0);
    if (half != nullptr && w == 0) score(0);
    SAEDICT_RETURN_IF_ERROR(search(w % q.n).status());
  }
  LatencyRun run;
  // Cold.
  for (int64_t i = 0; i < q.n; ++i) {
    if (reference_rows != nullptr && i < refs) {
      flusher->Flush();
      run.cold.sgemv_ms.push_back(timed([&] { sgemv(i); }));
    }
    if (half != nullptr && i < refs) {
      flusher->Flush();
      run.cold.half_ms.push_back(timed([&] { score(i); }));
    }
    flusher->Flush();
    absl::StatusOr<std::vector<index::Hit>> hits;
    run.cold.search_ms.push_back(timed([&] { hits = search(i); }));
    if (!hits.ok()) return hits.status();
    run.hits.push_back(std::move(*hits));
  }
  // Warm: each kind back to back (one untimed call first).
  if (reference_rows != nullptr) {
    sgemv(0);
    for (int64_t i = 0; i < refs; ++i) run.warm.sgemv_ms.push_back(timed([&] { sgemv(i); }));
  }
  if (half != nullptr) {
    score(0);
    for (int64_t i = 0; i < refs; ++i) run.warm.half_ms.push_back(timed([&] { score(i); }));
  }
  SAEDICT_RETURN_IF_ERROR(search(0).status());
  for (int64_t i = 0; i < q.n; ++i) {
    absl::Status status;
    run.warm.search_ms.push_back(timed([&] { status = search(i).status(); }));
    SAEDICT_RETURN_IF_ERROR(status);
  }
  return run;
}

// Build with per-phase times from the progress callback (Build reports 0.1
// after the unit rows, 0.5 after training, 1 at the end).
struct BuildResult {
  std::unique_ptr<index::FeatureIndex> index;
  double total_s = 0, prep_s = 0, train_s = 0, add_s = 0;
};

absl::StatusOr<BuildResult> TimedBuild(std::shared_ptr<const engine::Dictionary> dict,
                                       const index::IndexConfig& config) {
  BuildResult r;
  std::vector<std::pair<double, Clock::time_point>> marks;
  const auto t0 = Clock::now();
  SAEDICT_ASSIGN_OR_RETURN(
      r.index, index::FeatureIndex::Build(std::move(dict), index::DirectionKind::kDecoder, config,
                                          [&](double f) {
                                            marks.emplace_back(f, Clock::now());
                                            std::cerr << absl::StrFormat(
                                                "  build %.0f%% at %.1f s\n", 100 * f,
                                                Seconds(t0, marks.back().second));
                                          }));
  const auto t1 = Clock::now();
  r.total_s = Seconds(t0, t1);
  auto at = [&](double f) {
    for (const auto& m : marks) {
      if (m.first == f) return Seconds(t0, m.second);
    }
    return -1.0;
  };
  if (at(0.1) >= 0 && at(0.5) >= 0 && at(1) >= 0) {
    r.prep_s = at(0.1);
    r.train_s = at(0.5) - at(0.1);
    r.add_s = at(1) - at(0.5);
  }
  return r;
}

int64_t NlistOf(const std::string& factory) {
  if (factory.rfind("IVF", 0) != 0) return 0;
  int64_t nlist = 0;
  size_t i = 3;
  while (i < factory.size() && std::isdigit(static_cast<unsigned char>(factory[i]))) {
    nlist = nlist * 10 + (factory[i++] - '0');
  }
  return nlist;
}

int64_t FlushBytes(const Flags& flags) {
  if (flags.flush_mb > 0) return flags.flush_mb << 20;
  return std::max<int64_t>(int64_t{64} << 20, 2 * LastLevelCacheBytes());
}

// ---------------------------------------------------------------------------
// Cases.

struct FlatSet {
  std::vector<float> raw;  // [n, d] the dictionary's W_dec (a copy, for brute force)
  std::shared_ptr<const engine::Dictionary> dict;
  BuildResult build;
  double reference_prep_s = 0;  // Directions + UnitRows
  std::vector<float> unit;      // the float32 unit rows (== FAISS's stored vectors)
};

absl::Status MakeFlatSet(const Flags& flags, FlatSet* set) {
  const int64_t n = flags.flat_n, d = flags.flat_d;
  std::cerr << absl::StrFormat("flat set: %d x %d random-normal directions (seed 1)\n", n, d);
  set->raw = testing::RandomRows(n, d, 1);
  set->dict = DecoderDictionary(set->raw, n, d);
  {
    const auto t0 = Clock::now();
    index::Directions directions(set->dict, index::DirectionKind::kDecoder);
    set->unit = directions.UnitRows();
    set->reference_prep_s = Seconds(t0, Clock::now());
  }
  std::cerr << "building the Flat index\n";
  index::IndexConfig config;  // "auto": Flat at this size
  SAEDICT_ASSIGN_OR_RETURN(set->build, TimedBuild(set->dict, config));
  if (!set->build.index->exact()) {
    return absl::FailedPreconditionError(absl::StrCat("factory 'auto' resolved to '",
                                                      set->build.index->factory(),
                                                      "' at ", n, " x ", d, ", not Flat"));
  }
  return absl::OkStatus();
}

struct PrecomputeResult {
  bool ran = false;
  int64_t n = 0, d = 0, rows = 0, block = 0, blocks = 0;
  std::vector<double> precompute_s, gemm_s;
  double gemm_select_s = 0;  // GEMM + per-row top selection, no rescoring (first rep)
  int64_t lists = 0, short_lists = 0;
  double check_recall = 0;
  int64_t check_features = 0;
};

absl::StatusOr<PrecomputeResult> RunPrecompute(const Flags& flags, const FlatSet& set) {
  PrecomputeResult r;
  r.ran = true;
  r.n = flags.flat_n;
  r.d = flags.flat_d;
  const index::FeatureIndex& idx = *set.build.index;
  index::NeighbourOptions options;
  options.top_n = kPrecomputeTopN;
  // PrecomputeNeighbours searches options.block features at a time; the
  // exact index then runs one sgemm per min(block, clamp(2^24 / n, 1, 256))
  // of them (FeatureIndex::SearchExactGemm).
  r.block = std::min<int64_t>(options.block,
                              std::clamp<int64_t>((int64_t{1} << 24) / r.n, 1, 256));
  r.blocks = (flags.precompute_rows + options.block - 1) / options.block;
  r.rows = std::min<int64_t>(r.n, r.blocks * options.block);  // what both sides cover

  // The check: the first neighbour lists against brute force.
  r.check_features = std::min<int64_t>(64, r.rows);
  std::vector<std::vector<index::Hit>> first_lists;

  std::vector<float> c(static_cast<size_t>(r.block * r.n));
  auto gemm = [&] {
    for (int64_t first = 0; first < r.rows; first += r.block) {
      const int64_t m = std::min(r.block, r.rows - first);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m),
                  static_cast<int>(r.n), static_cast<int>(r.d), 1.0f,
                  set.unit.data() + first * r.d, static_cast<int>(r.d), set.unit.data(),
                  static_cast<int>(r.d), 0.0f, c.data(), static_cast<int>(r.n));
    }
  };
  // The breakdown: the same GEMM blocks, then what Rescore does before its
  // exact rescoring (copy the row of scores, nth_element for the top_n+1-th,
  // one pass for the rows above it), per row on engine::ParallelFor.
  auto gemm_select = [&] {
    const int64_t want = options.top_n + 1;
    int64_t kept = 0;
    std::vector<int64_t> kept_rows(r.block);
    for (int64_t first = 0; first < r.rows; first += r.block) {
      const int64_t m = std::min(r.block, r.rows - first);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m),
                  static_cast<int>(r.n), static_cast<int>(r.d), 1.0f,
                  set.unit.data() + first * r.d, static_cast<int>(r.d), set.unit.data(),
                  static_cast<int>(r.d), 0.0f, c.data(), static_cast<int>(r.n));
      engine::ParallelFor(m, 1, [&](int64_t begin, int64_t end) {
        std::vector<float> sorted;
        for (int64_t row = begin; row < end; ++row) {
          const float* sc = c.data() + row * r.n;
          sorted.assign(sc, sc + r.n);
          std::nth_element(sorted.begin(), sorted.begin() + (want - 1), sorted.end(),
                           std::greater<float>());
          const float t = sorted[want - 1];
          int64_t above = 0;
          for (int64_t i = 0; i < r.n; ++i) above += sc[i] >= t;
          kept_rows[row] = above;
        }
      });
      for (int64_t row = 0; row < m; ++row) kept += kept_rows[row];
    }
    return kept;
  };
  auto precompute = [&]() -> absl::Status {
    int64_t done = 0;
    r.lists = r.short_lists = 0;
    const absl::Status s = index::PrecomputeNeighbours(
        idx, options,
        [&](int64_t first, std::vector<std::vector<index::Hit>> lists) -> absl::Status {
          for (size_t k = 0; k < lists.size(); ++k) {
            ++r.lists;
            if (static_cast<int>(lists[k].size()) < options.top_n) ++r.short_lists;
            const bool checked = first + static_cast<int64_t>(k) < r.check_features;
            if (checked && static_cast<int64_t>(first_lists.size()) < r.check_features) {
              first_lists.push_back(lists[k]);  // first rep only
            }
          }
          done = first + static_cast<int64_t>(lists.size());
          return absl::OkStatus();
        },
        [&] { return done >= r.rows; });
    if (s.ok() || (absl::IsCancelled(s) && done >= r.rows)) return absl::OkStatus();
    return s;
  };
  for (int rep = 0; rep < flags.precompute_reps; ++rep) {
    std::cerr << absl::StrFormat("precompute rep %d/%d: GEMM alone\n", rep + 1,
                                 flags.precompute_reps);
    auto t0 = Clock::now();
    gemm();
    r.gemm_s.push_back(Seconds(t0, Clock::now()));
    if (rep == 0) {
      std::cerr << absl::StrFormat("  %.2f s; GEMM + selection (first rep only)\n",
                                   r.gemm_s.back());
      t0 = Clock::now();
      volatile int64_t kept = gemm_select();
      (void)kept;
      r.gemm_select_s = Seconds(t0, Clock::now());
    }
    std::cerr << absl::StrFormat("  %.2f s; PrecomputeNeighbours\n", rep == 0 ? r.gemm_select_s
                                                                          : r.gemm_s.back());
    t0 = Clock::now();
    SAEDICT_RETURN_IF_ERROR(precompute());
    r.precompute_s.push_back(Seconds(t0, Clock::now()));
    std::cerr << absl::StrFormat("  %.2f s\n", r.precompute_s.back());
  }
  // Brute force for the checked features (themselves excluded).
  std::vector<float> raw_q(set.raw.begin(), set.raw.begin() + r.check_features * r.d);
  SAEDICT_ASSIGN_OR_RETURN(Queries q, MakeQueries(raw_q.data(), r.check_features, r.d));
  std::vector<int64_t> exclude(r.check_features);
  std::iota(exclude.begin(), exclude.end(), 0);
  const auto truth = BruteForceTop(set.raw, r.n, r.d, q, options.top_n, exclude);
  r.check_recall = Recall(first_lists, truth, options.top_n);
  return r;
}

struct QueryCase {
  bool ran = false;
  std::string name, data_note, factory;
  std::string auto_factory;  // what "auto" resolves to at this size
  int64_t n = 0, d = 0, nlist = 0;
  BuildResult build;  // index released after the run; times kept
  std::string build_reference_name;
  double build_reference_s = 0;
  int64_t memory_bytes = 0;
  double stream_gbs = 0;
  Stats sgemv_ms, sgemv_warm_ms;  // cold (the headline) and warm
  Stats half_ms, half_warm_ms;    // exact: HalfRows::Score alone
  int64_t flush_bytes = 0;
  struct Point {
    int nprobe = 0;  // as asked (0: library default)
    int nprobe_effective = 0;
    Stats search_ms, search_warm_ms;
    double recall = 0;
    double load_s = 0;  // Save + Load to apply it (0 for the built one)
  };
  std::vector<Point> points;
  std::string half_kernel;
  int64_t half_bytes = 0;
};

absl::StatusOr<QueryCase> RunExact(const Flags& flags, const FlatSet& set) {
  QueryCase r;
  r.ran = true;
  r.name = "exact";
  r.n = flags.flat_n;
  r.d = flags.flat_d;
  r.factory = set.build.index->factory();
  r.data_note = absl::StrFormat(
      "%d x %d random-normal directions (seed 1); %d random-normal queries (seed 2)", r.n, r.d,
      flags.queries);
  r.build_reference_name = "Directions+UnitRows";
  r.build_reference_s = set.reference_prep_s;
  r.memory_bytes = set.build.index->memory_bytes();
  r.half_kernel = index::HalfRows::KernelName();
  r.half_bytes = r.n * ((r.d + 15) / 16 * 16) * 2;
  const std::vector<float> raw_q = testing::RandomRows(flags.queries, r.d, 2);
  SAEDICT_ASSIGN_OR_RETURN(Queries q, MakeQueries(raw_q.data(), flags.queries, r.d));
  std::cerr << "exact: streaming read reference\n";
  r.stream_gbs = StreamReadGBs(set.unit);
  std::cerr << "exact: latency (Search vs sgemv, interleaved)\n";
  // The scan alone: a HalfRows of the same unit rows (what the index holds).
  const index::HalfRows half(set.unit, r.n, r.d);
  CacheFlusher flusher(FlushBytes(flags));
  r.flush_bytes = flusher.bytes();
  SAEDICT_ASSIGN_OR_RETURN(LatencyRun run, MeasureLatency(*set.build.index, q, flags.top_n,
                                                          flags.warmup, &set.unit,
                                                          flags.reference_queries, &half,
                                                          &flusher));
  r.half_ms = Summarise(run.cold.half_ms);
  r.half_warm_ms = Summarise(run.warm.half_ms);
  r.sgemv_ms = Summarise(run.cold.sgemv_ms);
  r.sgemv_warm_ms = Summarise(run.warm.sgemv_ms);
  std::cerr << "exact: brute force\n";
  const auto truth = BruteForceTop(set.raw, r.n, r.d, q, flags.top_n);
  QueryCase::Point p;
  p.search_ms = Summarise(run.cold.search_ms);
  p.search_warm_ms = Summarise(run.warm.search_ms);
  p.recall = Recall(run.hits, truth, flags.top_n);
  r.points.push_back(p);
  return r;
}

absl::StatusOr<QueryCase> RunApprox(const Flags& flags) {
  QueryCase r;
  r.ran = true;
  r.name = "approx";
  r.n = flags.approx_n;
  r.d = flags.approx_d;
  const int64_t n = r.n, d = r.d;
  r.data_note = absl::StrFormat(
      "%d x %d STRUCTURED directions: %d random-normal centres, row = centre + %.2f x N(0,I) "
      "(ClusteredRows, seed 3); the %d queries are %d further rows of the same draw (same "
      "centres, not indexed)",
      n, d, flags.clusters, flags.spread, flags.queries, flags.queries);
  std::cerr << "approx set: " << r.data_note << "\n";
  std::vector<float> all = testing::ClusteredRows(n + flags.queries, d, flags.clusters,
                                                  static_cast<float>(flags.spread), 3);
  SAEDICT_ASSIGN_OR_RETURN(Queries q, MakeQueries(all.data() + n * d, flags.queries, d));
  all.resize(static_cast<size_t>(n * d));
  all.shrink_to_fit();
  auto dict = DecoderDictionary(all, n, d);  // `all` stays as the brute-force copy

  index::IndexConfig config;
  config.factory = flags.approx_factory;
  config.ivf_nprobe = flags.nprobe[0];
  r.factory = index::ResolveFactory(config, n, d);
  r.auto_factory = index::ResolveFactory(index::IndexConfig{}, n, d);
  r.nlist = NlistOf(r.factory);
  std::vector<float> unit;
  {
    index::Directions directions(dict, index::DirectionKind::kDecoder);
    unit = directions.UnitRows();
  }
  if (r.nlist > 0) {
    // One k-means assignment pass: all rows against nlist unit rows.
    r.build_reference_name = absl::StrCat("1 assignment pass (sgemm ", n, "x", r.nlist, "x", d,
                                          ")");
    const int64_t chunk = 16384;
    std::vector<float> c(static_cast<size_t>(chunk * r.nlist));
    const auto t0 = Clock::now();
    for (int64_t first = 0; first < n; first += chunk) {
      const int64_t m = std::min(chunk, n - first);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m),
                  static_cast<int>(r.nlist), static_cast<int>(d), 1.0f, unit.data() + first * d,
                  static_cast<int>(d), unit.data(), static_cast<int>(d), 0.0f, c.data(),
                  static_cast<int>(r.nlist));
    }
    r.build_reference_s = Seconds(t0, Clock::now());
    std::cerr << absl::StrFormat("  build reference (%s): %.2f s\n", r.build_reference_name,
                                 r.build_reference_s);
  }
  std::cerr << absl::StrFormat("building '%s' (factory flag '%s') on %d x %d\n", r.factory,
                               flags.approx_factory, n, d);
  SAEDICT_ASSIGN_OR_RETURN(r.build, TimedBuild(dict, config));
  r.memory_bytes = r.build.index->memory_bytes();

  std::cerr << "approx: streaming read reference\n";
  r.stream_gbs = StreamReadGBs(unit);
  std::cerr << "approx: brute force\n";
  const auto truth = BruteForceTop(all, n, d, q, flags.top_n);

  CacheFlusher flusher(FlushBytes(flags));
  r.flush_bytes = flusher.bytes();
  std::filesystem::path scratch;
  std::unique_ptr<index::FeatureIndex> idx = std::move(r.build.index);
  size_t sweep = flags.nprobe.size();
  if (idx->exact()) {  // a small --approx_n resolves "auto" to Flat: no nprobe
    sweep = 1;
    r.half_kernel = index::HalfRows::KernelName();
    r.half_bytes = n * ((d + 15) / 16 * 16) * 2;
  } else if (r.nlist == 0) {
    sweep = 1;  // not IVF: nprobe means nothing
  }
  for (size_t k = 0; k < sweep; ++k) {
    QueryCase::Point p;
    p.nprobe = flags.nprobe[k];
    if (k > 0) {
      if (scratch.empty()) {
        const std::filesystem::path parent = flags.tmp_dir.empty()
                                                 ? std::filesystem::temp_directory_path()
                                                 : std::filesystem::path(flags.tmp_dir);
        std::string tmpl = (parent / "saedict_index_bench.XXXXXX").string();
        if (mkdtemp(tmpl.data()) == nullptr) {
          return absl::UnavailableError(absl::StrCat("cannot create a dir in ", parent.string()));
        }
        scratch = tmpl;
        std::cerr << "saving the index to " << scratch << " for the nprobe sweep\n";
        SAEDICT_RETURN_IF_ERROR(idx->Save(scratch / "approx", "bench"));
      }
      idx.reset();
      index::IndexConfig c = config;
      c.ivf_nprobe = p.nprobe;
      const auto t0 = Clock::now();
      SAEDICT_ASSIGN_OR_RETURN(
          idx, index::FeatureIndex::Load(scratch / "approx", dict, index::DirectionKind::kDecoder,
                                         c, "bench"));
      p.load_s = Seconds(t0, Clock::now());
    }
    if (r.nlist > 0) {
      p.nprobe_effective = static_cast<int>(std::min<int64_t>(
          r.nlist, p.nprobe > 0 ? p.nprobe : std::max<int64_t>(16, r.nlist / 8)));
    }
    std::cerr << absl::StrFormat("approx: latency at nprobe %d%s\n", p.nprobe_effective,
                                 k == 0 ? " (with the sgemv reference, interleaved)" : "");
    SAEDICT_ASSIGN_OR_RETURN(
        LatencyRun run, MeasureLatency(*idx, q, flags.top_n, flags.warmup,
                                       k == 0 ? &unit : nullptr, flags.reference_queries,
                                       nullptr, &flusher));
    if (k == 0) {
      r.sgemv_ms = Summarise(run.cold.sgemv_ms);
      r.sgemv_warm_ms = Summarise(run.warm.sgemv_ms);
    }
    p.search_ms = Summarise(run.cold.search_ms);
    p.search_warm_ms = Summarise(run.warm.search_ms);
    p.recall = Recall(run.hits, truth, flags.top_n);
    std::cerr << absl::StrFormat("  p50 cold %.3f ms, warm %.3f ms, recall %.4f\n",
                                 p.search_ms.p50, p.search_warm_ms.p50, p.recall);
    r.points.push_back(p);
  }
  if (!scratch.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(scratch, ec);
  }
  return r;
}

// ---------------------------------------------------------------------------
// Report.

// The point the headline uses: of those meeting the recall target, the one
// of smallest p50; when none does, the one of best recall.
size_t Headline(const QueryCase& r) {
  size_t best = 0;
  bool found = false;
  for (size_t i = 0; i < r.points.size(); ++i) {
    const auto& p = r.points[i];
    if (p.recall >= kRecallTarget) {
      if (!found || p.search_ms.p50 < r.points[best].search_ms.p50) best = i;
      found = true;
    }
  }
  if (found) return best;
  for (size_t i = 0; i < r.points.size(); ++i) {
    if (r.points[i].recall > r.points[best].recall) best = i;
  }
  return best;
}

void PrintHeader(const std::string& cpu, const std::string& load_start,
                 const std::string& load_end) {
  const std::string core = openblas_get_corename();
  std::cout << "\nindex_bench  CPU: " << cpu << "; " << engine::HardwareThreads()
            << " hardware threads; half scan kernel " << index::HalfRows::KernelName() << "\n";
  std::cout << "OpenBLAS core " << core << " (" << openblas_get_num_threads()
            << " threads; OPENBLAS_CORETYPE="
            << (std::getenv("OPENBLAS_CORETYPE")
                    ? absl::StrCat("\"", std::getenv("OPENBLAS_CORETYPE"), "\"")
                    : std::string("unset"))
            << "): " << openblas_get_config() << "\n";
  if (core == "Prescott" || core == "prescott") {
    std::cout << "NOTE: OpenBLAS fell back to its SSE3 (Prescott) kernels on this CPU; the GEMM "
                 "and sgemv figures (and FAISS training, which calls sgemm) are those of that "
                 "kernel. OPENBLAS_CORETYPE=SkylakeX (AVX-512) or Haswell (AVX2) selects a "
                 "wider one.\n";
  }
  std::cout << "load average at start: " << load_start << "; at end: " << load_end << "\n";
}

void PrintPrecompute(const PrecomputeResult& r) {
  const double flop = 2.0 * double(r.rows) * double(r.n) * double(r.d);
  std::cout << absl::StrFormat(
      "\n1. Neighbour precompute, top_n=%d, exact Flat index over %d x %d random-normal "
      "directions\n",
      kPrecomputeTopN, r.n, r.d);
  if (r.rows < r.n) {
    std::cout << absl::StrFormat(
        "   SUBSET: the leading %d features (queries) against all %d rows (--precompute_rows); "
        "the full run is %.1fx this\n",
        r.rows, r.n, double(r.n) / double(r.rows));
  }
  std::cout << absl::StrFormat("   %d query blocks of %d, %.3f TFLOP per pass, %d reps "
                               "interleaved\n",
                               r.blocks, r.block, flop / 1e12, int(r.gemm_s.size()));
  std::cout << absl::StrFormat("%-28s %9s %9s %9s\n", "", "best_s", "median_s", "GFLOP/s");
  std::cout << absl::StrFormat("%-28s %9.3f %9.3f %9.1f\n", "GEMM alone (cblas_sgemm)",
                               Best(r.gemm_s), Median(r.gemm_s), flop / Best(r.gemm_s) / 1e9);
  std::cout << absl::StrFormat("%-28s %9.3f %9.3f %9.1f\n", "PrecomputeNeighbours",
                               Best(r.precompute_s), Median(r.precompute_s),
                               flop / Best(r.precompute_s) / 1e9);
  std::cout << absl::StrFormat("%-28s %9.3f %9s %9.1f   (first rep only)\n",
                               "GEMM + top-33 selection", r.gemm_select_s, "-",
                               flop / r.gemm_select_s / 1e9);
  const double ratio = Ratio(Best(r.precompute_s), Best(r.gemm_s));
  std::cout << absl::StrFormat(
      "   precompute / GEMM: %.3fx best, %.3fx median. target <= %.1fx: %s\n", ratio,
      Ratio(Median(r.precompute_s), Median(r.gemm_s)), kPrecomputeRatioTarget,
      ratio <= kPrecomputeRatioTarget ? "PASS" : "MISS");
  const double per_q = 1e3 / double(r.rows);
  std::cout << absl::StrFormat(
      "   per query, wall ms: GEMM %.4f + selection %.4f + rest %.4f = PrecomputeNeighbours "
      "%.4f\n"
      "   (selection: copy the score row, nth_element, one pass; rest: float64 rescoring of the\n"
      "   candidates, UnitDirection and float conversion of the queries, the lists. Selection\n"
      "   and rescoring run between the GEMMs, not overlapped with them.)\n",
      Best(r.gemm_s) * per_q, (r.gemm_select_s - Best(r.gemm_s)) * per_q,
      (Best(r.precompute_s) - r.gemm_select_s) * per_q, Best(r.precompute_s) * per_q);
  if (r.gemm_select_s < Best(r.gemm_s) || Best(r.precompute_s) < r.gemm_select_s) {
    std::cout << "   (a negative term: the run-to-run spread of the GEMM exceeds that overhead "
                 "here; see the load average)\n";
  }
  std::cout << absl::StrFormat(
      "   lists: %d (%d shorter than %d); check: the first %d lists against brute force "
      "(float64 cosine), recall@%d %.4f\n",
      r.lists, r.short_lists, kPrecomputeTopN, r.check_features, kPrecomputeTopN,
      r.check_recall);
}

void PrintQueryCase(const QueryCase& r, const std::string& title, int top_n, int warmup) {
  std::cout << "\n" << title << "\n   set: " << r.data_note << "\n";
  std::cout << absl::StrFormat("   factory '%s'", r.factory);
  if (r.nlist > 0) std::cout << absl::StrFormat(" (nlist %d)", r.nlist);
  if (!r.auto_factory.empty() && r.auto_factory != r.factory) {
    std::cout << absl::StrFormat("; IndexConfig factory \"auto\" would resolve to '%s' here",
                                 r.auto_factory);
  }
  std::cout << "\n";
  // Build.
  if (r.build_reference_s > 0) {
    std::cout << absl::StrFormat("   build: %.2f s (prep %.2f, train %.2f, add %.2f); reference %s "
                                 "%.2f s; ratio %.2fx\n",
                                 r.build.total_s, r.build.prep_s, r.build.train_s, r.build.add_s,
                                 r.build_reference_name, r.build_reference_s,
                                 Ratio(r.build.total_s, r.build_reference_s));
  } else {
    std::cout << absl::StrFormat("   build: %.2f s (prep %.2f, train %.2f, add %.2f)\n",
                                 r.build.total_s, r.build.prep_s, r.build.train_s, r.build.add_s);
  }
  const double raw = double(r.n) * double(r.d) * 4;
  std::cout << absl::StrFormat(
      "   memory_bytes(): %d (%.1f MB); raw float32 n x d x 4 = %.1f MB; ratio %.3fx\n",
      r.memory_bytes, r.memory_bytes / 1e6, raw / 1e6, Ratio(double(r.memory_bytes), raw));
  if (r.nlist > 0 && r.memory_bytes == 0) {
    const double est = raw + double(r.n) * 8 + double(r.nlist) * double(r.d) * 4;
    std::cout << absl::StrFormat(
        "   NOTE: memory_bytes() counts only the exact index's arrays and reports 0 for '%s'; "
        "FAISS actually holds ~%.1f MB (vectors + 8-byte ids + centroids)\n",
        r.factory, est / 1e6);
  }
  // Latency: a table per cache state.
  std::cout << absl::StrFormat(
      "   single-vector latency, %d queries (after %d warm-up), top_n=%d, ms; references on the "
      "first %d%s.\n"
      "   cold: %.0f MB read before every timed call (2x the %.0f MB last-level cache), so each\n"
      "   call reads its matrix from DRAM; warm: calls back to back (a matrix that fits the\n"
      "   last-level cache is served from it)\n",
      r.points[0].search_ms.n, warmup, top_n, r.sgemv_ms.n,
      r.nlist > 0 ? " queries, in the first nprobe run" : " queries", r.flush_bytes / 1e6,
      LastLevelCacheBytes() / 1e6);
  std::cout << absl::StrFormat("   %-5s %-30s %8s %8s %8s %8s %9s %8s %9s\n", "cache", "call",
                               "p50", "p99", "mean", "max", "p50/sgemv", "recall", "GB/s@p50");
  auto row = [&](const char* cache, const std::string& name, const Stats& st, const Stats& ref,
                 double recall, double bytes) {
    std::cout << absl::StrFormat("   %-5s %-30s %8.3f %8.3f %8.3f %8.3f %9.3f %8s %9.1f\n", cache,
                                 name, st.p50, st.p99, st.mean, st.max, Ratio(st.p50, ref.p50),
                                 recall < 0 ? std::string("-") : absl::StrFormat("%.4f", recall),
                                 st.p50 > 0 ? bytes / (st.p50 * 1e-3) / 1e9 : 0.0);
  };
  for (const bool cold : {true, false}) {
    const char* cache = cold ? "cold" : "warm";
    const Stats& ref = cold ? r.sgemv_ms : r.sgemv_warm_ms;
    row(cache, "cblas_sgemv (reference)", ref, ref, -1, raw);
    if (r.half_ms.n > 0) {
      row(cache, "HalfRows::Score alone (scan)", cold ? r.half_ms : r.half_warm_ms, ref, -1,
          double(r.half_bytes));
    }
    for (const auto& p : r.points) {
      std::string name = "Search";
      double bytes = 0;
      if (r.nlist > 0) {
        name = absl::StrFormat("Search nprobe=%d%s", p.nprobe_effective,
                               p.nprobe == 0 ? " (default)" : "");
        // Expected bytes scanned: the coarse centroids plus nprobe of nlist lists.
        bytes = double(r.nlist) * r.d * 4 + raw * p.nprobe_effective / double(r.nlist);
      } else if (r.half_bytes > 0) {
        bytes = double(r.half_bytes);
      }
      row(cache, name, cold ? p.search_ms : p.search_warm_ms, ref, p.recall, bytes);
    }
  }
  std::cout << absl::StrFormat(
      "   streaming read (2 threads, ParallelFor, SSE loads) of the float32 rows: %.1f GB/s\n",
      r.stream_gbs);
  if (r.nlist == 0) {
    std::cout << absl::StrFormat(
        "   GB/s@p50: Search and the scan = half rows (%.1f MB, kernel %s) / p50; sgemv = float32\n"
        "   rows (%.1f MB) / p50\n",
        r.half_bytes / 1e6, r.half_kernel, raw / 1e6);
  } else {
    std::cout << "   GB/s@p50: Search = (nlist centroids + nprobe/nlist of the float32 rows) / "
                 "p50, an estimate\n   (the list sizes are not exposed); sgemv = all float32 "
                 "rows / p50\n";
    for (const auto& p : r.points) {
      if (p.load_s > 0) {
        std::cout << absl::StrFormat("   nprobe=%d applied by Save + Load (%.2f s)\n",
                                     p.nprobe_effective, p.load_s);
      }
    }
  }
  const auto& h = r.points[Headline(r)];
  const bool recall_ok = r.nlist == 0 || h.recall >= kRecallTarget;
  auto verdict = [&](double p50) { return p50 <= kP50TargetMs && recall_ok ? "PASS" : "MISS"; };
  if (r.nlist > 0) {
    std::cout << absl::StrFormat(
        "   chosen nprobe=%d (recall@%d %.4f). target p50 <= %.0f ms at recall >= %.2f:\n"
        "     cold p50 %.3f ms (%.3fx sgemv): %s; warm p50 %.3f ms (%.3fx sgemv): %s\n",
        h.nprobe_effective, top_n, h.recall, kP50TargetMs, kRecallTarget, h.search_ms.p50,
        Ratio(h.search_ms.p50, r.sgemv_ms.p50), verdict(h.search_ms.p50), h.search_warm_ms.p50,
        Ratio(h.search_warm_ms.p50, r.sgemv_warm_ms.p50), verdict(h.search_warm_ms.p50));
  } else {
    std::cout << absl::StrFormat(
        "   recall@%d %.4f. target p50 <= %.0f ms:\n"
        "     cold p50 %.3f ms (%.3fx sgemv): %s; warm p50 %.3f ms (%.3fx sgemv): %s\n",
        top_n, h.recall, kP50TargetMs, h.search_ms.p50, Ratio(h.search_ms.p50, r.sgemv_ms.p50),
        verdict(h.search_ms.p50), h.search_warm_ms.p50,
        Ratio(h.search_warm_ms.p50, r.sgemv_warm_ms.p50), verdict(h.search_warm_ms.p50));
  }
}

std::string Json(const Flags& flags, const std::string& cpu, const std::string& load_start,
                 const std::string& load_end, const PrecomputeResult& pre, const QueryCase& exact,
                 const QueryCase& approx, double total_s) {
  JsonObject o;
  o.Str("bench", "index_bench");
  o.Str("cpu", cpu);
  o.Int("threads", engine::HardwareThreads());
  o.Str("openblas", openblas_get_config());
  o.Str("openblas_core", openblas_get_corename());
  o.Str("half_kernel", index::HalfRows::KernelName());
  o.Str("loadavg_start", load_start);
  o.Str("loadavg_end", load_end);
  o.Num("total_s", total_s);
  o.Int("queries", flags.queries);
  o.Int("top_n", flags.top_n);
  JsonObject cases;
  if (pre.ran) {
    JsonObject p;
    p.Int("n", pre.n);
    p.Int("d", pre.d);
    p.Int("rows", pre.rows);
    p.Bool("subset", pre.rows < pre.n);
    p.Int("block", pre.block);
    p.Int("top_n", kPrecomputeTopN);
    p.Num("gemm_best_s", Best(pre.gemm_s));
    p.Num("gemm_median_s", Median(pre.gemm_s));
    p.Num("precompute_best_s", Best(pre.precompute_s));
    p.Num("precompute_median_s", Median(pre.precompute_s));
    p.Num("gemm_select_s", pre.gemm_select_s);
    p.Num("ratio_best", Ratio(Best(pre.precompute_s), Best(pre.gemm_s)));
    p.Num("ratio_median", Ratio(Median(pre.precompute_s), Median(pre.gemm_s)));
    p.Num("target_ratio", kPrecomputeRatioTarget);
    p.Num("check_recall", pre.check_recall);
    cases.Obj("precompute", p);
  }
  for (const QueryCase* r : {&exact, &approx}) {
    if (!r->ran) continue;
    JsonObject c;
    c.Str("set", r->data_note);
    c.Str("factory", r->factory);
    c.Int("n", r->n);
    c.Int("d", r->d);
    c.Int("nlist", r->nlist);
    c.Num("build_s", r->build.total_s);
    c.Num("build_train_s", r->build.train_s);
    c.Num("build_add_s", r->build.add_s);
    c.Str("build_reference", r->build_reference_name);
    c.Num("build_reference_s", r->build_reference_s);
    c.Int("memory_bytes", r->memory_bytes);
    c.Int("raw_f32_bytes", r->n * r->d * 4);
    c.Num("stream_read_gbs", r->stream_gbs);
    c.Int("flush_bytes", r->flush_bytes);
    c.Obj("sgemv_ms", StatsJson(r->sgemv_ms));
    c.Obj("sgemv_warm_ms", StatsJson(r->sgemv_warm_ms));
    if (r->half_ms.n > 0) {
      c.Obj("half_score_ms", StatsJson(r->half_ms));
      c.Obj("half_score_warm_ms", StatsJson(r->half_warm_ms));
    }
    std::vector<std::string> pts;
    for (const auto& p : r->points) {
      JsonObject j;
      if (r->nlist > 0) {
        j.Int("nprobe", p.nprobe);
        j.Int("nprobe_effective", p.nprobe_effective);
      }
      j.Obj("search_ms", StatsJson(p.search_ms));
      j.Obj("search_warm_ms", StatsJson(p.search_warm_ms));
      j.Num("p50_over_sgemv", Ratio(p.search_ms.p50, r->sgemv_ms.p50));
      j.Num("warm_p50_over_sgemv", Ratio(p.search_warm_ms.p50, r->sgemv_warm_ms.p50));
      j.Num("recall", p.recall);
      pts.push_back(j.ToString());
    }
    c.Raw("points", absl::StrCat("[", absl::StrJoin(pts, ","), "]"));
    const auto& h = r->points[Headline(*r)];
    c.Num("p50_ms", h.search_ms.p50);  // cold
    c.Num("p99_ms", h.search_ms.p99);
    c.Num("warm_p50_ms", h.search_warm_ms.p50);
    c.Num("warm_p99_ms", h.search_warm_ms.p99);
    c.Num("recall", h.recall);
    if (r->nlist > 0) c.Int("chosen_nprobe", h.nprobe_effective);
    c.Num("target_p50_ms", kP50TargetMs);
    cases.Obj(r->name, c);
  }
  o.Obj("cases", cases);
  return o.ToString();
}

absl::Status Run(int argc, char** argv) {
  SAEDICT_ASSIGN_OR_RETURN(Flags flags, ParseIndexFlags(argc, argv));
  openblas_set_num_threads(engine::HardwareThreads());  // the references use every core
  const std::string cpu = CpuModel();
  const std::string load_start = LoadAverage();
  const auto t_start = Clock::now();
  std::cerr << "CPU: " << cpu << "; load average " << load_start << "\n";

  PrecomputeResult pre;
  QueryCase exact, approx;
  if (flags.Has("precompute") || flags.Has("exact")) {
    FlatSet set;
    SAEDICT_RETURN_IF_ERROR(MakeFlatSet(flags, &set));
    if (flags.Has("precompute")) {
      SAEDICT_ASSIGN_OR_RETURN(pre, RunPrecompute(flags, set));
    }
    if (flags.Has("exact")) {
      SAEDICT_ASSIGN_OR_RETURN(exact, RunExact(flags, set));
      exact.build = BuildResult{nullptr, set.build.total_s, set.build.prep_s, set.build.train_s,
                                set.build.add_s};
    }
  }
  if (flags.Has("approx")) {
    SAEDICT_ASSIGN_OR_RETURN(approx, RunApprox(flags));
  }
  const std::string load_end = LoadAverage();
  const double total_s = Seconds(t_start, Clock::now());

  PrintHeader(cpu, load_start, load_end);
  if (pre.ran) PrintPrecompute(pre);
  if (exact.ran) {
    PrintQueryCase(exact,
                   absl::StrFormat("2a. Exact index: single-vector Search (one unit query), %d x "
                                   "%d, target p50 <= %.0f ms",
                                   exact.n, exact.d, kP50TargetMs),
                   flags.top_n, flags.warmup);
  }
  if (approx.ran) {
    PrintQueryCase(approx,
                   absl::StrFormat("2b. Approximate index: single-vector Search, %d x %d, target "
                                   "p50 <= %.0f ms at recall@%d >= %.2f",
                                   approx.n, approx.d, kP50TargetMs, flags.top_n, kRecallTarget),
                   flags.top_n, flags.warmup);
  }
  std::cout << absl::StrFormat("\n(total %.0f s)\n", total_s);
  const std::string json = Json(flags, cpu, load_start, load_end, pre, exact, approx, total_s);
  return WriteJsonReport(json, flags.json_path);
}

}  // namespace
}  // namespace saedict::bench

int main(int argc, char** argv) {
  const absl::Status s = saedict::bench::Run(argc, argv);
  if (!s.ok()) {
    std::cerr << "index_bench: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}
