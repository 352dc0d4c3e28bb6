// activation_compare_bench: the activation method of CompareDictionaries on
// a real RocksDB store with ~1M stored tokens under each of two dictionaries:
// the read of both dictionaries' forward records alone (ScanCodePairs, one
// pass) next to compare::CompareActivations end to end over the same source
// (passes, tokens/s, SVCCA), as the service runs it.
//
// The corpus is synthetic: A's codes are k of d_sae features per token
// (Zipf-like feature frequencies), B's are A's features relabelled by a
// fixed permutation with values x 2.5 plus noise, and one of the k swapped
// for a random feature — so the right partner is known and the correlation
// is high but not 1.
//
// Usage: activation_compare_bench [--tokens=1000000] [--d_sae=512] [--k=16]
//          [--doc_tokens=256] [--data_dir=DIR] [--json=PATH]
// The last line of stdout is the JSON report.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/bench_common.h"
#include "compare/activation_matching.h"
#include "saedict/records/v1/records.pb.h"
#include "service/comparisons.h"
#include "storage/store.h"

namespace saedict::bench {
namespace {

struct Flags {
  int64_t tokens = 1000000;
  int64_t d_sae = 512;
  int64_t k = 16;
  int64_t doc_tokens = 256;
  std::string data_dir;
  std::string json;
};

constexpr char kUsage[] =
    "activation_compare_bench [--tokens=1000000] [--d_sae=512] [--k=16] [--doc_tokens=256]\n"
    "  [--data_dir=DIR (parent of the scratch dir; default: the temp dir)] [--json=PATH]\n";

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

records::v1::DictionaryRecord Record(const std::string& id, int64_t d_sae) {
  records::v1::DictionaryRecord r;
  r.mutable_info()->set_id(id);
  r.mutable_info()->set_d_sae(d_sae);
  r.set_weights_file(id + ".safetensors");
  return r;
}

// One document's codes under A and B (see the header).
void MakeDocument(const Flags& f, const std::vector<int64_t>& perm, std::mt19937_64& rng,
                  storage::DocumentCodes* a, storage::DocumentCodes* b) {
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<float> noise(0, 0.05f);
  a->num_features = b->num_features = f.d_sae;
  a->row_offsets.assign(1, 0);
  b->row_offsets.assign(1, 0);
  for (int64_t t = 0; t < f.doc_tokens; ++t) {
    std::vector<std::pair<uint32_t, float>> ra, rb;
    while (static_cast<int64_t>(ra.size()) < f.k) {
      // Zipf-like: feature ~ d_sae * u^2.
      const uint32_t feature = static_cast<uint32_t>(f.d_sae * u(rng) * u(rng));
      if (std::any_of(ra.begin(), ra.end(), [&](auto& p) { return p.first == feature; })) continue;
      ra.emplace_back(feature, static_cast<float>(0.1 + 3 * u(rng)));
    }
    for (size_t i = 0; i < ra.size(); ++i) {
      uint32_t partner = static_cast<uint32_t>(perm[ra[i].first]);
      if (i == 0) partner = static_cast<uint32_t>(rng() % f.d_sae);  // one swapped per token
      if (std::any_of(rb.begin(), rb.end(), [&](auto& p) { return p.first == partner; })) continue;
      rb.emplace_back(partner, std::max(0.01f, 2.5f * ra[i].second + noise(rng)));
    }
    std::sort(ra.begin(), ra.end());
    std::sort(rb.begin(), rb.end());
    for (auto& [i, v] : ra) {
      a->indices.push_back(i);
      a->values.push_back(v);
    }
    for (auto& [i, v] : rb) {
      b->indices.push_back(i);
      b->values.push_back(v);
    }
    a->row_offsets.push_back(a->indices.size());
    b->row_offsets.push_back(b->indices.size());
  }
  a->num_rows = b->num_rows = f.doc_tokens;
}

absl::Status Run(const Flags& f) {
  const std::filesystem::path parent = f.data_dir.empty() ? std::filesystem::temp_directory_path()
                                                          : std::filesystem::path(f.data_dir);
  const std::filesystem::path dir =
      parent / absl::StrFormat("saedict-actbench-%d", static_cast<int64_t>(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  absl::StatusOr<std::unique_ptr<storage::Store>> store = storage::Store::Open({dir / "db"});
  if (!store.ok()) return store.status();
  storage::CorpusStore* corpus = (*store)->corpus();
  for (const char* id : {"a", "b"}) {
    if (absl::Status s = (*store)->PutDictionary(Record(id, f.d_sae)); !s.ok()) return s;
  }
  std::vector<int64_t> perm(f.d_sae);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937(7));
  std::mt19937_64 rng(11);
  const int64_t docs = std::max<int64_t>(1, f.tokens / f.doc_tokens);
  auto start = std::chrono::steady_clock::now();
  constexpr int64_t kDocsPerBatch = 32;
  for (int64_t first = 0; first < docs; first += kDocsPerBatch) {
    storage::IngestBatch ba, bb;
    ba.dictionary_id = "a";
    bb.dictionary_id = "b";
    ba.corpus = bb.corpus = "bench";
    ba.d_sae = bb.d_sae = f.d_sae;
    for (int64_t d = first; d < std::min(docs, first + kDocsPerBatch); ++d) {
      storage::IngestDocument da, db;
      da.doc_id = db.doc_id = static_cast<uint64_t>(d);
      da.token_ids.assign(f.doc_tokens, 1);
      db.token_ids = da.token_ids;
      MakeDocument(f, perm, rng, &da.codes, &db.codes);
      ba.documents.push_back(std::move(da));
      bb.documents.push_back(std::move(db));
    }
    if (auto r = corpus->WriteIngestBatch(ba); !r.ok()) return r.status();
    if (auto r = corpus->WriteIngestBatch(bb); !r.ok()) return r.status();
  }
  const double store_s = Seconds(start);
  const int64_t tokens = docs * f.doc_tokens;

  // The source the service builds (service/comparisons.h).
  const compare::TokenPairSource source = service::StoredTokenPairs(corpus, "a", "b", "bench");
  start = std::chrono::steady_clock::now();
  int64_t scanned = 0;
  if (absl::Status s = source([&](const compare::SparseRowView&, const compare::SparseRowView&) {
        ++scanned;
        return absl::OkStatus();
      });
      !s.ok()) {
    return s;
  }
  const double scan_s = Seconds(start);
  start = std::chrono::steady_clock::now();
  absl::StatusOr<compare::ActivationComparison> c =
      compare::CompareActivations(source, f.d_sae, f.d_sae, {});
  if (!c.ok()) return c.status();
  const double compare_s = Seconds(start);
  int64_t recovered = 0;
  for (int64_t i = 0; i < f.d_sae; ++i) recovered += c->a_to_b[i].partner == perm[i];

  std::cout << absl::StrFormat(
      "activation method on %d stored tokens x 2 dictionaries (d_sae %d, k %d), CPU %s\n"
      "  store (synthetic ingest)          %8.2f s\n"
      "  one read pass (ScanCodePairs)     %8.2f s  %10.0f tokens/s\n"
      "  CompareActivations end to end     %8.2f s  %10.0f tokens/s  (%d passes, %.1f x one read)\n"
      "  partners recovered %d / %d; mean max corr A->B %.4f; SVCCA %.4f over %d pairs\n",
      tokens, f.d_sae, f.k, CpuModel(), store_s, scan_s, scanned / scan_s, compare_s,
      tokens / compare_s, c->passes, compare_s / scan_s, recovered, f.d_sae,
      c->mean_max_corr_a_to_b, c->svcca, c->svcca_pairs);
  const std::string json = absl::StrFormat(
      "{\"bench\":\"activation_compare_bench\",\"cpu\":\"%s\",\"tokens\":%d,\"d_sae\":%d,\"k\":%d,"
      "\"scan_s\":%.4f,\"compare_s\":%.4f,\"passes\":%d,\"recovered\":%d,\"mean_max_corr\":%.6f,"
      "\"svcca\":%.6f}",
      CpuModel(), tokens, f.d_sae, f.k, scan_s, compare_s, c->passes, recovered,
      c->mean_max_corr_a_to_b, c->svcca);
  store->reset();
  std::filesystem::remove_all(dir);
  return WriteJsonReport(json, f.json);
}

}  // namespace
}  // namespace saedict::bench

int main(int argc, char** argv) {
  using namespace saedict::bench;
  Flags f;
  absl::Status s = ForEachFlag(
      argc, argv, kUsage, [&](const std::string& key, const std::string& value) -> absl::Status {
        if (key == "--data_dir") {
          f.data_dir = value;
          return absl::OkStatus();
        }
        if (key == "--json") {
          f.json = value;
          return absl::OkStatus();
        }
        int64_t* target = key == "--tokens"       ? &f.tokens
                          : key == "--d_sae"      ? &f.d_sae
                          : key == "--k"          ? &f.k
                          : key == "--doc_tokens" ? &f.doc_tokens
                                                : nullptr;
        if (target == nullptr) return absl::InvalidArgumentError("unknown flag " + key);
        absl::StatusOr<int64_t> v = IntFlag(key, value, 1, int64_t{1} << 32);
        if (!v.ok()) return v.status();
        *target = *v;
        return absl::OkStatus();
      });
  if (s.ok() && f.k > f.d_sae) s = absl::InvalidArgumentError("--k must be <= --d_sae");
  if (s.ok()) s = Run(f);
  if (!s.ok()) {
    std::cerr << "activation_compare_bench: " << s << "\n";
    return 1;
  }
  return 0;
}
