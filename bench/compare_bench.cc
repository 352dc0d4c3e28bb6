// compare_bench: compare::CompareDecoders on two SAE-sized dictionaries,
// the GEMM phase and the exact assignment timed separately, plus the
// assignment alone on a purely random matrix (no best matches for the JV
// initialisation to find).
//
// Dictionaries (fixed seeds): A = --size random-normal decoder rows of
// --d_in. B (--size_b rows, default --size) = a perturbed permutation of a
// --shared fraction of A's features (B[perm[i]] = A[i] + sigma_i N(0, I),
// sigma_i uniform in [0.3, 1.2], so the pair's cosine is ~0.64 .. 0.96)
// plus fresh random-normal rows: a clear best match for the shared
// features, only noise-level cosines (~1/sqrt(d_in)) among the rest, whose
// assignment is a random sub-problem (the expensive part).
//
// Reported: the GEMM phase (unit rows, the blocked cblas_sgemm A x B^T and
// the best partners with their float64 rescoring) next to the sgemm alone
// (--reference=full: the same blocks into one reused buffer, no selection;
// block: the first block scaled), the assignment, their sum against the
// target (<= 60 s in all at 16384 x 16384 x 2304), MMCS, the fraction
// matched, the Hungarian mean and how many planted pairs the assignment and
// the best partners recover; then MaxSimilarityAssignment alone on a
// --random_n square matrix of i.i.d. U(0, 1) entries.
//
// Output: a table on stdout, then one JSON line (also to --json=PATH);
// progress on stderr. OpenBLAS and the best-partner passes use all hardware
// threads; the assignment is single-threaded.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_common.h"
#include "compare/decoder_matching.h"
#include "compare/linear_assignment.h"
#include "engine/dictionary.h"
#include "index/directions.h"
#include "tests/index/index_test_util.h"
#include "util/status_macros.h"

namespace saedict::bench {
namespace {

constexpr char kUsage[] = R"(compare_bench: decoder comparison (GEMM + exact assignment) of two dictionaries.
  --size=16384      features of A
  --size_b=0        features of B (0: --size)
  --d_in=2304       decoder width
  --shared=0.75     fraction of A's features planted in B (perturbed, permuted)
  --block_rows=1024 rows of A per GEMM block
  --random_n=4096   side of the purely random assignment case (0: skip)
  --reference=full  the sgemm-alone reference: full (every block, as many flops
                    as the comparison) or block (the first block, scaled)
  --target_s=60     the target for GEMM + assignment at full size
  --json=PATH       also write the JSON report there
)";

struct Flags {
  int64_t size = 16384, size_b = 0, d_in = 2304, block_rows = 1024, random_n = 4096;
  double shared = 0.75, target_s = 60;
  std::string reference = "full";
  std::string json_path;
};

absl::StatusOr<Flags> ParseCompareFlags(int argc, char** argv) {
  Flags f;
  SAEDICT_RETURN_IF_ERROR(ForEachFlag(
      argc, argv, kUsage, [&](const std::string& key, const std::string& value) -> absl::Status {
        auto number = [&](int64_t min, int64_t max) { return IntFlag(key, value, min, max); };
        auto real = [&](double min, double max, double* out) -> absl::Status {
          if (!absl::SimpleAtod(value, out) || !(*out >= min) || *out > max) {
            return absl::InvalidArgumentError(absl::StrCat(key, " must be a number in [", min,
                                                           ", ", max, "], got '", value, "'"));
          }
          return absl::OkStatus();
        };
        if (key == "--size") {
          SAEDICT_ASSIGN_OR_RETURN(f.size, number(1, int64_t{1} << 20));
        } else if (key == "--size_b") {
          SAEDICT_ASSIGN_OR_RETURN(f.size_b, number(0, int64_t{1} << 20));
        } else if (key == "--d_in") {
          SAEDICT_ASSIGN_OR_RETURN(f.d_in, number(1, 65536));
        } else if (key == "--block_rows") {
          SAEDICT_ASSIGN_OR_RETURN(f.block_rows, number(1, int64_t{1} << 20));
        } else if (key == "--random_n") {
          SAEDICT_ASSIGN_OR_RETURN(f.random_n, number(0, 65536));
        } else if (key == "--shared") {
          return real(0, 1, &f.shared);
        } else if (key == "--target_s") {
          return real(0, 1e6, &f.target_s);
        } else if (key == "--reference") {
          if (value != "full" && value != "block") {
            return absl::InvalidArgumentError(
                absl::StrCat("--reference: full or block, got '", value, "'"));
          }
          f.reference = value;
        } else if (key == "--json") {
          f.json_path = value;
        } else {
          return absl::InvalidArgumentError(absl::StrCat("unknown flag ", key, "\n", kUsage));
        }
        return absl::OkStatus();
      }));
  if (f.size_b == 0) f.size_b = f.size;
  return f;
}

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

struct Planted {
  std::shared_ptr<engine::Dictionary> a, b;
  std::vector<int64_t> perm;  // A's feature i < perm.size() is B's perm[i]
};

Planted MakeDictionaries(const Flags& f) {
  const int64_t na = f.size, nb = f.size_b, d = f.d_in;
  const int64_t shared = std::min<int64_t>(std::llround(f.shared * double(na)), nb);
  std::vector<float> a_rows = testing::RandomRows(na, d, 101);
  std::vector<float> b_rows = testing::RandomRows(nb, d, 102);  // the fresh rows
  std::vector<int64_t> slots(nb);
  std::iota(slots.begin(), slots.end(), 0);
  std::mt19937 rng(103);
  std::shuffle(slots.begin(), slots.end(), rng);
  Planted p;
  p.perm.assign(slots.begin(), slots.begin() + shared);
  std::uniform_real_distribution<float> sigma(0.3f, 1.2f);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < shared; ++i) {
    const float s = sigma(rng);
    float* row = b_rows.data() + p.perm[i] * d;
    for (int64_t k = 0; k < d; ++k) row[k] = a_rows[i * d + k] + s * normal(rng);
  }
  p.a = testing::DirectionsDictionary(a_rows, na, d);
  p.b = testing::DirectionsDictionary(b_rows, nb, d);
  return p;
}

// The comparison's GEMM alone: the same blocks of A's unit rows against
// all of B's, each into one reused block buffer, no selection. With
// `all_blocks` false only the first block is timed (best of two) and scaled
// to the whole matrix.
double TimeGemmAlone(const engine::Dictionary& a, const engine::Dictionary& b, int64_t block,
                     bool all_blocks) {
  auto borrow = [](const engine::Dictionary& d) {
    return std::shared_ptr<const engine::Dictionary>(std::shared_ptr<const engine::Dictionary>(),
                                                     &d);
  };
  const index::Directions da(borrow(a), index::DirectionKind::kDecoder);
  const index::Directions db(borrow(b), index::DirectionKind::kDecoder);
  const int64_t d = da.dim(), na = da.size(), nb = db.size();
  block = std::min(block, na);
  const std::vector<float> ua = da.UnitRows(), ub = db.UnitRows();
  std::vector<float> c(static_cast<size_t>(block * nb));
  auto gemm = [&](int64_t r0) {
    const int64_t rows = std::min(block, na - r0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(nb), int(d), 1.0f,
                ua.data() + r0 * d, int(d), ub.data(), int(d), 0.0f, c.data(), int(nb));
  };
  if (all_blocks) {
    gemm(0);  // warm-up (OpenBLAS threads, page faults of c)
    const auto t = std::chrono::steady_clock::now();
    for (int64_t r0 = 0; r0 < na; r0 += block) gemm(r0);
    return Since(t);
  }
  double best = 1e30;
  for (int rep = 0; rep < 2; ++rep) {
    const auto t = std::chrono::steady_clock::now();
    gemm(0);
    best = std::min(best, Since(t));
  }
  return best * double(na) / double(block);
}

absl::Status Run(int argc, char** argv) {
  SAEDICT_ASSIGN_OR_RETURN(const Flags f, ParseCompareFlags(argc, argv));
  const std::string cpu = CpuModel();
  const std::string core = openblas_get_corename();
  const std::string load_start = LoadAverage();
  std::cerr << "compare_bench: building " << f.size << " + " << f.size_b << " x " << f.d_in
            << " dictionaries\n";
  const Planted p = MakeDictionaries(f);

  std::cerr << "compare_bench: sgemm alone (" << f.reference << ")\n";
  const double sgemm_alone = TimeGemmAlone(*p.a, *p.b, f.block_rows, f.reference == "full");

  std::cerr << "compare_bench: CompareDecoders\n";
  double last = -1;
  const auto t = std::chrono::steady_clock::now();
  SAEDICT_ASSIGN_OR_RETURN(
      const compare::DecoderComparison c,
      compare::CompareDecoders(
          *p.a, *p.b, {.one_to_one = true, .block_rows = f.block_rows},
          [&](const char* phase, double fraction) {
            if (fraction - last >= 0.25 || fraction == 1 || fraction == 0) {
              std::cerr << absl::StrFormat("  %s %.0f%% at %.1f s\n", phase, 100 * fraction,
                                           Since(t));
              last = fraction == 1 ? -1 : fraction;
            }
          }));
  const double wall = Since(t);
  int64_t assigned_ok = 0, best_ok = 0;
  for (size_t i = 0; i < p.perm.size(); ++i) {
    assigned_ok += c.assignment_a_to_b[i] == p.perm[i];
    best_ok += c.a_to_b[i].partner == p.perm[i];
  }
  const double total = c.gemm_seconds + c.assignment_seconds;
  const bool full = f.size >= 16384 && f.size_b >= 16384 && f.d_in >= 2304;
  const bool pass = total <= f.target_s;

  double random_s = 0, random_total = 0;
  if (f.random_n > 0) {
    std::cerr << "compare_bench: assignment on a random " << f.random_n << " x " << f.random_n
              << " matrix\n";
    std::mt19937 rng(104);
    std::uniform_real_distribution<float> uniform(0, 1);
    std::vector<float> s(static_cast<size_t>(f.random_n * f.random_n));
    for (float& v : s) v = uniform(rng);
    const auto tr = std::chrono::steady_clock::now();
    SAEDICT_ASSIGN_OR_RETURN(const compare::Assignment a,
                             compare::MaxSimilarityAssignment(s, f.random_n, f.random_n));
    random_s = Since(tr);
    random_total = a.total;
  }
  const std::string load_end = LoadAverage();

  std::cout << "\ncompare_bench  CPU: " << cpu << "; OpenBLAS core " << core << " ("
            << openblas_get_num_threads() << " threads; OPENBLAS_CORETYPE="
            << (std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "unset")
            << ")\n";
  if (core == "Prescott" || core == "prescott") {
    std::cout << "NOTE: OpenBLAS fell back to its SSE3 (Prescott) kernels on this CPU; "
                 "OPENBLAS_CORETYPE=SkylakeX (AVX-512) or Haswell (AVX2) selects a wider one.\n";
  }
  std::cout << "load average at start: " << load_start << "; at end: " << load_end << "\n";
  std::cout << absl::StrFormat(
      "\nA %d x %d vs B %d x %d; %d planted pairs (shared %.2f), block_rows %d\n", f.size, f.d_in,
      f.size_b, f.d_in, p.perm.size(), f.shared, f.block_rows);
  const double gflop = 2.0 * double(f.size) * double(f.size_b) * double(f.d_in) / 1e9;
  std::cout << absl::StrFormat(
      "  GEMM phase (unit rows, sgemm, best partners)  %8.2f s  (%.0f GFLOP/s)\n"
      "  reference: sgemm alone, %-20s  %8.2f s  (%.0f GFLOP/s)\n"
      "  exact assignment                              %8.2f s\n"
      "  in all (GEMM phase + assignment)              %8.2f s  target <= %.0f s: %s%s\n",
      c.gemm_seconds, gflop / c.gemm_seconds, f.reference == "full" ? "all blocks" : "1st block scaled",
      sgemm_alone, gflop / sgemm_alone, c.assignment_seconds, total, f.target_s,
      pass ? "PASS" : "MISS", full ? "" : " (not the full 16384 x 16384 x 2304 size)");
  std::cout << absl::StrFormat(
      "  CompareDecoders wall %.2f s\n"
      "  MMCS a->b %.4f, b->a %.4f; matched (>= %.1f) a %.4f, b %.4f; hungarian mean %.4f\n"
      "  planted pairs recovered: assignment %d / %d, best partner %d / %d\n",
      wall, c.mmcs_a_to_b, c.mmcs_b_to_a, 0.7, c.frac_matched_a, c.frac_matched_b,
      c.assignment_mean, assigned_ok, p.perm.size(), best_ok, p.perm.size());
  if (f.random_n > 0) {
    std::cout << absl::StrFormat(
        "\nMaxSimilarityAssignment alone, %d x %d i.i.d. U(0,1): %.3f s (total %.3f)\n",
        f.random_n, f.random_n, random_s, random_total);
  }
  const std::string json = absl::StrFormat(
      "{\"bench\": \"compare_bench\", \"cpu\": \"%s\", \"openblas_core\": \"%s\", "
      "\"loadavg\": \"%s\", \"size_a\": %d, \"size_b\": %d, \"d_in\": %d, \"shared\": %.3f, "
      "\"block_rows\": %d, \"gemm_s\": %.3f, \"sgemm_alone_s\": %.3f, \"sgemm_reference\": \"%s\", "
      "\"assignment_s\": %.3f, \"total_s\": %.3f, \"target_s\": %.1f, \"pass\": %s, "
      "\"full_size\": %s, \"mmcs_a_to_b\": %.6f, \"mmcs_b_to_a\": %.6f, "
      "\"frac_matched_a\": %.6f, \"frac_matched_b\": %.6f, \"assignment_mean\": %.6f, "
      "\"planted\": %d, \"planted_assigned\": %d, \"planted_best\": %d, \"random_n\": %d, "
      "\"random_assignment_s\": %.3f}",
      cpu, core, load_end, f.size, f.size_b, f.d_in, f.shared, f.block_rows, c.gemm_seconds,
      sgemm_alone, f.reference, c.assignment_seconds, total, f.target_s, pass ? "true" : "false",
      full ? "true" : "false", c.mmcs_a_to_b, c.mmcs_b_to_a, c.frac_matched_a, c.frac_matched_b,
      c.assignment_mean, p.perm.size(), assigned_ok, best_ok, f.random_n, random_s);
  return WriteJsonReport(json, f.json_path);
}

}  // namespace
}  // namespace saedict::bench

int main(int argc, char** argv) {
  const absl::Status s = saedict::bench::Run(argc, argv);
  if (!s.ok()) {
    std::cerr << "compare_bench: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}
