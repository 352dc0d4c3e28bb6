// ingest_bench: the corpus path end to end through a real in-process
// SaedictServer on 127.0.0.1:0 with a fresh data directory per case.
//
// Cases (each its own server and data dir, removed at the end):
//   small_<prec>  the stories260k SAE topk_l2_a (64x512, k=16) on
//                 acts_layer2.npy / tokens.npy / docs.jsonl, repeated
//                 --repeat times under other doc ids; without the shared data
//                 a random 64x512 k=16 TopK SAE on synthetic 256-token docs.
//                 One case per --precisions entry (value_precision f32 / f16).
//   large_f32     a random 768x24576 k=32 TopK SAE (written in SAELens layout
//                 and loaded through LoadDictionary) on N(0,1) F16 activations.
//   query         ~--query_tokens tokens into the small SAE, then sequential
//                 GetFeature / TopActivations latency on random features.
// Per ingest case:
//   ingest tok/s  one Ingest stream (Client::Ingest: a writer thread sends
//                 batches of ~--batch_tokens tokens as fast as flow control
//                 lets it, so several batches are in flight) from the first
//                 request to the last ack (= durably written, synced WAL);
//   encode tok/s  the reference: unary Encode calls, one per batch of the same
//                 documents, sequential, no storage; run before and after the
//                 ingest, the faster pass counts; ratio ingest / encode;
//   bytes         (a) the db/ directory as the server leaves it (SST + WAL)
//                 and (b) after reopening it with RocksDB directly (the
//                 Store's own options, storage/column_families.h) and a forced
//                 full compaction, per column family; both against the raw
//                 sparse size nnz x (4 + 2) bytes, nnz counted from the Encode
//                 replies (and, for small dictionaries, as the sum of the
//                 stored GetFeature counts).
// Output: tables on stdout, then one JSON line (also to --json=PATH).
// Progress and server logs go to stderr.
//
// Single-threaded driver apart from Client::Ingest's writer thread; the server
// runs its own threads.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/bench_common.h"
#include "client/saedict_client.h"
#include "wire/tensor_wire.h"
#include "formats/codecs/file_io.h"
#include "formats/codecs/json.h"
#include "formats/codecs/npy.h"
#include "rocksdb/db.h"
#include "rocksdb/metadata.h"
#include "rocksdb/options.h"
#include "server/server.h"
#include "storage/column_families.h"
#include "tests/formats/sae_fixtures.h"
#include "util/half.h"
#include "util/status_macros.h"

namespace saedict::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kUsage[] = R"(ingest_bench: corpus ingest throughput, bytes on disk, query latency.
  --shared_data=DIR     shared test data (default $SAEDICT_SHARED_DATA or ../shared/data);
                        uses DIR/stories260k, falls back to a random SAE when absent
  --data_dir=DIR        parent of the scratch dir (default: the system temp dir);
                        only the fresh subdirectory the bench makes is removed
  --batch_tokens=8192   tokens per IngestRequest / Encode call (whole documents)
  --repeat=4            stories passes in the small cases (other doc ids each pass)
  --large_tokens=16384  tokens for the 768x24576 k=32 case
  --query_tokens=1000000  tokens stored before the query-latency run
  --queries=2000        GetFeature calls and TopActivations calls (each)
  --quantile_queries=500  TopActivations calls with quantile_bins=4
  --precisions=f32,f16  value precisions of the small cases
  --cases=small,large,query  which parts to run
  --token_strings=1     send display strings with the stories tokens (vocab.json)
  --json=PATH           also write the JSON report there
)";

struct Flags {
  std::string shared_data;
  std::string data_dir;
  int64_t batch_tokens = 8192;
  int repeat = 4;
  int64_t large_tokens = 16384;
  int64_t query_tokens = 1000000;
  int queries = 2000;
  int quantile_queries = 500;
  std::vector<std::string> precisions = {"f32", "f16"};
  std::vector<std::string> cases = {"small", "large", "query"};
  bool token_strings = true;
  std::string json_path;
  bool Has(const std::string& c) const {
    return std::find(cases.begin(), cases.end(), c) != cases.end();
  }
};

absl::StatusOr<Flags> ParseIngestFlags(int argc, char** argv) {
  Flags f;
  const char* env = std::getenv("SAEDICT_SHARED_DATA");
  f.shared_data = env != nullptr && *env != '\0' ? env : "../shared/data";
  SAEDICT_RETURN_IF_ERROR(ForEachFlag(
      argc, argv, kUsage, [&](const std::string& key, const std::string& value) -> absl::Status {
        auto number = [&](int64_t min, int64_t max) { return IntFlag(key, value, min, max); };
        if (key == "--shared_data") {
          f.shared_data = value;
        } else if (key == "--data_dir") {
          f.data_dir = value;
        } else if (key == "--batch_tokens") {
          SAEDICT_ASSIGN_OR_RETURN(f.batch_tokens, number(1, int64_t{1} << 22));
        } else if (key == "--repeat") {
          SAEDICT_ASSIGN_OR_RETURN(int64_t n, number(1, 1000));
          f.repeat = static_cast<int>(n);
        } else if (key == "--large_tokens") {
          SAEDICT_ASSIGN_OR_RETURN(f.large_tokens, number(256, int64_t{1} << 24));
        } else if (key == "--query_tokens") {
          SAEDICT_ASSIGN_OR_RETURN(f.query_tokens, number(256, int64_t{1} << 30));
        } else if (key == "--queries") {
          SAEDICT_ASSIGN_OR_RETURN(int64_t n, number(1, 10000000));
          f.queries = static_cast<int>(n);
        } else if (key == "--quantile_queries") {
          SAEDICT_ASSIGN_OR_RETURN(int64_t n, number(0, 10000000));
          f.quantile_queries = static_cast<int>(n);
        } else if (key == "--precisions") {
          f.precisions = absl::StrSplit(value, ',', absl::SkipEmpty());
          for (const std::string& p : f.precisions) {
            if (p != "f32" && p != "f16") {
              return absl::InvalidArgumentError(
                  absl::StrCat("--precisions: f32 or f16, got '", p, "'"));
            }
          }
        } else if (key == "--cases") {
          f.cases = absl::StrSplit(value, ',', absl::SkipEmpty());
          for (const std::string& c : f.cases) {
            if (c != "small" && c != "large" && c != "query") {
              return absl::InvalidArgumentError(
                  absl::StrCat("--cases: small, large or query, got '", c, "'"));
            }
          }
        } else if (key == "--token_strings") {
          SAEDICT_ASSIGN_OR_RETURN(int64_t n, number(0, 1));
          f.token_strings = n != 0;
        } else if (key == "--json") {
          f.json_path = value;
        } else {
          return absl::InvalidArgumentError(absl::StrCat("unknown flag '", key, "'\n", kUsage));
        }
        return absl::OkStatus();
      }));
  return f;
}

// ---------------------------------------------------------------------------
// Corpora: documents as row ranges of one token array and one F16 activation
// buffer.

struct BaseDoc {
  uint64_t id = 0;
  int64_t start = 0;  // row in tokens / acts
  int64_t length = 0;
};

struct Corpus {
  std::string description;
  int64_t d_in = 0;
  std::vector<int32_t> tokens;
  std::string acts_f16;  // [tokens.size(), d_in] little-endian F16
  std::vector<BaseDoc> docs;
  std::vector<std::string> vocab;  // display strings by token id; empty: none sent
  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  uint64_t max_id() const {
    uint64_t m = 0;
    for (const BaseDoc& d : docs) m = std::max(m, d.id);
    return m;
  }
};

absl::StatusOr<Corpus> LoadStories(const std::filesystem::path& dir, bool token_strings) {
  Corpus c;
  c.description = absl::StrCat("stories260k (", dir.string(), ")");
  SAEDICT_ASSIGN_OR_RETURN(formats::NpyArray acts, formats::ReadNpyFile(dir / "acts_layer2.npy"));
  if (acts.dtype != formats::NpyDType::kF16 || acts.shape.size() != 2) {
    return absl::InvalidArgumentError("acts_layer2.npy: expected a 2-d float16 array");
  }
  c.d_in = acts.shape[1];
  c.acts_f16 = std::move(acts.data);
  SAEDICT_ASSIGN_OR_RETURN(formats::NpyArray tok, formats::ReadNpyFile(dir / "tokens.npy"));
  SAEDICT_ASSIGN_OR_RETURN(std::vector<int64_t> ids, formats::NpyToInt64(tok, "tokens.npy"));
  c.tokens.assign(ids.begin(), ids.end());
  if (c.num_tokens() != acts.shape[0]) {
    return absl::InvalidArgumentError(absl::StrCat("tokens.npy has ", c.num_tokens(),
                                                   " tokens, acts_layer2.npy ", acts.shape[0]));
  }
  SAEDICT_ASSIGN_OR_RETURN(std::string jsonl, formats::ReadFileToString(dir / "docs.jsonl"));
  for (absl::string_view line : absl::StrSplit(jsonl, '\n', absl::SkipWhitespace())) {
    SAEDICT_ASSIGN_OR_RETURN(google::protobuf::Struct obj,
                             formats::ParseJsonObject(line, "docs.jsonl"));
    BaseDoc d;
    SAEDICT_ASSIGN_OR_RETURN(std::optional<int64_t> id,
                             formats::GetJsonInt(obj, "doc_id", "docs.jsonl", 0, INT64_MAX));
    SAEDICT_ASSIGN_OR_RETURN(std::optional<int64_t> start,
                             formats::GetJsonInt(obj, "start", "docs.jsonl", 0, c.num_tokens()));
    SAEDICT_ASSIGN_OR_RETURN(std::optional<int64_t> length,
                             formats::GetJsonInt(obj, "length", "docs.jsonl", 1, c.num_tokens()));
    if (!id || !start || !length || *start + *length > c.num_tokens()) {
      return absl::InvalidArgumentError(absl::StrCat("docs.jsonl: bad line '", line, "'"));
    }
    d.id = static_cast<uint64_t>(*id);
    d.start = *start;
    d.length = *length;
    c.docs.push_back(d);
  }
  if (token_strings) {
    SAEDICT_ASSIGN_OR_RETURN(std::string vocab, formats::ReadFileToString(dir / "vocab.json"));
    SAEDICT_ASSIGN_OR_RETURN(
        google::protobuf::Struct obj,
        formats::ParseJsonObject(absl::StrCat("{\"v\":", vocab, "}"), "vocab.json"));
    for (const google::protobuf::Value& v : obj.fields().at("v").list_value().values()) {
      c.vocab.push_back(v.string_value());
    }
    for (int32_t t : c.tokens) {
      if (t < 0 || t >= static_cast<int32_t>(c.vocab.size())) {
        return absl::InvalidArgumentError(absl::StrCat("token id ", t, " not in vocab.json"));
      }
    }
  }
  return c;
}

// `docs` documents of `doc_len` tokens, token ids < 512, N(0,1) activations.
Corpus SyntheticCorpus(int64_t docs, int64_t doc_len, int64_t d_in, uint32_t seed) {
  Corpus c;
  c.description = absl::StrCat("synthetic: ", docs, " docs x ", doc_len, " tokens, N(0,1) F16");
  c.d_in = d_in;
  const int64_t n = docs * doc_len;
  const std::vector<float> x = MakeActivations(n, d_in, seed);
  c.acts_f16.resize(x.size() * 2);
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t h = FloatToF16(x[i]);
    c.acts_f16[2 * i] = static_cast<char>(h & 0xff);
    c.acts_f16[2 * i + 1] = static_cast<char>(h >> 8);
  }
  std::mt19937 gen(seed + 1);
  c.tokens.resize(n);
  for (int32_t& t : c.tokens) t = static_cast<int32_t>(gen() % 512);
  for (int64_t d = 0; d < docs; ++d)
    c.docs.push_back({static_cast<uint64_t>(d), d * doc_len, doc_len});
  return c;
}

// Consecutive documents of ~batch_tokens tokens (at least one document).
std::vector<std::pair<size_t, size_t>> MakeBatches(const Corpus& c, int64_t batch_tokens) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t begin = 0;
  int64_t tokens = 0;
  for (size_t i = 0; i < c.docs.size(); ++i) {
    if (i > begin && tokens + c.docs[i].length > batch_tokens) {
      out.push_back({begin, i});
      begin = i;
      tokens = 0;
    }
    tokens += c.docs[i].length;
  }
  if (begin < c.docs.size()) out.push_back({begin, c.docs.size()});
  return out;
}

absl::string_view DocActs(const Corpus& c, const BaseDoc& d) {
  return absl::string_view(c.acts_f16).substr(d.start * c.d_in * 2, d.length * c.d_in * 2);
}

absl::StatusOr<v1::IngestRequest> MakeIngestRequest(const Corpus& c,
                                                    std::pair<size_t, size_t> range,
                                                    uint64_t id_offset, const std::string& dict,
                                                    const std::string& corpus,
                                                    v1::ValuePrecision precision) {
  v1::IngestRequest req;
  req.set_dictionary_id(dict);
  req.set_corpus(corpus);
  req.set_value_precision(precision);
  for (size_t i = range.first; i < range.second; ++i) {
    const BaseDoc& d = c.docs[i];
    v1::IngestDocument* doc = req.add_documents();
    doc->set_doc_id(id_offset + d.id);
    // int32 little-endian on every platform this builds on (x86-64 / arm64).
    doc->set_token_ids(reinterpret_cast<const char*>(c.tokens.data() + d.start),
                       d.length * sizeof(int32_t));
    if (!c.vocab.empty()) {
      for (int64_t t = d.start; t < d.start + d.length; ++t)
        doc->add_token_strings(c.vocab[c.tokens[t]]);
    }
    const std::vector<int64_t> shape = {d.length, c.d_in};
    SAEDICT_ASSIGN_OR_RETURN(*doc->mutable_activations(),
                             wire::RawToTensor(DocActs(c, d), shape, v1::DTYPE_F16));
  }
  return req;
}

absl::StatusOr<v1::EncodeRequest> MakeEncodeRequest(const Corpus& c,
                                                    std::pair<size_t, size_t> range,
                                                    const std::string& dict) {
  std::string bytes;
  int64_t rows = 0;
  for (size_t i = range.first; i < range.second; ++i) {
    absl::StrAppend(&bytes, DocActs(c, c.docs[i]));
    rows += c.docs[i].length;
  }
  v1::EncodeRequest req;
  req.set_dictionary_id(dict);
  const std::vector<int64_t> shape = {rows, c.d_in};
  SAEDICT_ASSIGN_OR_RETURN(*req.mutable_activations(),
                           wire::RawToTensor(bytes, shape, v1::DTYPE_F16));
  return req;
}

// ---------------------------------------------------------------------------
// Bytes on disk.

struct DirUsage {
  int64_t sst = 0, wal = 0, other = 0;
};

DirUsage MeasureDir(const std::filesystem::path& dir) {
  DirUsage u;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (!e.is_regular_file(ec)) continue;
    const int64_t size = static_cast<int64_t>(e.file_size(ec));
    const std::string name = e.path().filename().string();
    if (absl::EndsWith(name, ".sst")) {
      u.sst += size;
    } else if (absl::EndsWith(name, ".log")) {  // WAL; the info log is "LOG"
      u.wal += size;
    } else {
      u.other += size;
    }
  }
  return u;
}

struct FamilyBytes {
  std::string name;
  int64_t bytes = 0;
};

// Opens `db_dir` with the Store's options, forces a full compaction of every
// column family and returns their SST sizes (live files only).
absl::StatusOr<std::vector<FamilyBytes>> CompactAndMeasure(const std::filesystem::path& db_dir) {
  rocksdb::DBOptions db_options = storage::StoreDbOptions();
  db_options.create_if_missing = false;
  const std::vector<rocksdb::ColumnFamilyDescriptor> families = storage::StoreColumnFamilies();
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, db_dir.string(), families, &handles, &raw);
  if (!s.ok())
    return absl::UnavailableError(absl::StrCat("reopen ", db_dir.string(), ": ", s.ToString()));
  std::unique_ptr<rocksdb::DB> db(raw);
  std::vector<FamilyBytes> out;
  absl::Status status;
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    rocksdb::CompactRangeOptions opts;
    opts.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    s = db->CompactRange(opts, h, nullptr, nullptr);
    if (!s.ok() && status.ok()) {
      status = absl::InternalError(absl::StrCat("compact ", h->GetName(), ": ", s.ToString()));
    }
    rocksdb::ColumnFamilyMetaData meta;
    db->GetColumnFamilyMetaData(h, &meta);
    out.push_back({h->GetName(), static_cast<int64_t>(meta.size)});
  }
  for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
  db->Close();
  SAEDICT_RETURN_IF_ERROR(status);
  return out;
}

// ---------------------------------------------------------------------------
// One ingest case.

struct Percentiles {
  int64_t n = 0;
  double p50 = 0, p99 = 0, max = 0, mean = 0;
};

Percentiles Summarize(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  p.n = static_cast<int64_t>(v.size());
  p.p50 = v[(v.size() - 1) / 2];
  const size_t i99 = static_cast<size_t>(std::ceil(0.99 * double(v.size()))) - 1;
  p.p99 = v[std::min(i99, v.size() - 1)];
  p.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  p.mean = sum / double(v.size());
  return p;
}

struct QueryResult {
  std::string name;
  Percentiles ms;
  int64_t empty = 0;  // replies without examples (feature never active)
};

struct CaseResult {
  std::string name;
  std::string dictionary;  // description
  int64_t d_in = 0, d_sae = 0, k = 0;
  std::string precision;
  int64_t tokens = 0, documents = 0, batches = 0;
  double ingest_s = 0;
  int64_t max_in_flight = 0;
  Percentiles ack_ms;            // request handed to the stream -> its ack (includes queueing)
  Percentiles ack_gap_ms;        // between consecutive acks: steady-state time per batch
  std::vector<double> encode_s;  // per reference pass (each over `tokens`)
  int64_t nnz_encode = -1;       // from Encode replies (scaled to all passes)
  int64_t nnz_stored = -1;       // sum of GetFeature counts
  int64_t stored_total_tokens = -1;
  DirUsage at_close;
  std::vector<FamilyBytes> compacted;
  std::vector<QueryResult> queries;

  double IngestTokS() const { return ingest_s > 0 ? double(tokens) / ingest_s : 0; }
  double EncodeTokS() const {
    if (encode_s.empty()) return 0;
    return double(tokens) / *std::min_element(encode_s.begin(), encode_s.end());
  }
  int64_t Nnz() const { return nnz_stored >= 0 ? nnz_stored : nnz_encode; }
  int64_t Family(const std::string& n) const {
    for (const FamilyBytes& f : compacted) {
      if (f.name == n) return f.bytes;
    }
    return 0;
  }
  int64_t CompactedTotal() const {
    int64_t t = 0;
    for (const FamilyBytes& f : compacted) t += f.bytes;
    return t;
  }
  // Latents: forward + inverted + stats (documents belong to the corpus).
  int64_t CompactedLatents() const {
    return Family("forward") + Family("inverted") + Family("stats");
  }
};

struct DictSpec {
  std::string description;
  std::filesystem::path root;  // dictionary_root
  std::string path;            // LoadDictionary path under root
};

struct CaseSpec {
  std::string name;
  DictSpec dict;
  const Corpus* corpus = nullptr;
  int repeat = 1;
  v1::ValuePrecision precision = v1::VALUE_PRECISION_F32;
  bool encode_reference = true;
  bool stats_sum = true;  // sum GetFeature counts over all features (small d_sae only)
  bool queries = false;
};

class Bench {
 public:
  Bench(Flags flags, std::filesystem::path scratch)
      : flags_(std::move(flags)), scratch_(std::move(scratch)) {}

  absl::StatusOr<CaseResult> Run(const CaseSpec& spec) {
    CaseResult r;
    r.name = spec.name;
    r.dictionary = spec.dict.description;
    r.precision = spec.precision == v1::VALUE_PRECISION_F16 ? "f16" : "f32";
    const Corpus& c = *spec.corpus;
    const std::filesystem::path data_dir = scratch_ / spec.name;
    std::cerr << "== " << spec.name << ": starting server, data_dir " << data_dir << "\n";

    server::ServerOptions options;
    options.port = 0;
    options.data_dir = data_dir;
    options.dictionary_root = spec.dict.root;
    options.max_message_bytes = 1 << 30;
    options.batcher.max_batch_tokens = flags_.batch_tokens;
    SAEDICT_ASSIGN_OR_RETURN(std::unique_ptr<server::SaedictServer> srv,
                             server::SaedictServer::Start(options));
    client::ClientOptions client_options;
    client_options.max_message_bytes = 1 << 30;
    client_options.timeout = absl::Hours(2);
    SAEDICT_ASSIGN_OR_RETURN(
        std::unique_ptr<client::Client> client,
        client::Client::Connect(absl::StrCat("127.0.0.1:", srv->port()), client_options));
    const std::string dict_id = "bench";
    v1::LoadDictionaryRequest load;
    load.set_id(dict_id);
    load.set_path(spec.dict.path);
    SAEDICT_ASSIGN_OR_RETURN(v1::LoadDictionaryResponse loaded, client->LoadDictionary(load));
    r.d_in = loaded.dictionary().d_in();
    r.d_sae = loaded.dictionary().d_sae();
    r.k = loaded.dictionary().k();
    if (r.d_in != c.d_in) {
      return absl::InvalidArgumentError(
          absl::StrCat("dictionary d_in ", r.d_in, " but activations have ", c.d_in));
    }

    const std::vector<std::pair<size_t, size_t>> batches = MakeBatches(c, flags_.batch_tokens);
    const uint64_t id_stride = std::max<uint64_t>(1000000, c.max_id() + 1);
    r.tokens = c.num_tokens() * spec.repeat;
    r.documents = static_cast<int64_t>(c.docs.size()) * spec.repeat;
    r.batches = static_cast<int64_t>(batches.size()) * spec.repeat;

    // Encode reference requests (one per batch; reused for every pass).
    std::vector<v1::EncodeRequest> encode_requests;
    auto encode_pass = [&]() -> absl::StatusOr<double> {
      int64_t nnz = 0;
      const auto t0 = Clock::now();
      for (int rep = 0; rep < spec.repeat; ++rep) {
        for (const v1::EncodeRequest& req : encode_requests) {
          SAEDICT_ASSIGN_OR_RETURN(v1::EncodeResponse resp, client->Encode(req));
          const std::string& off = resp.codes().row_offsets();
          if (off.size() < 8) return absl::InternalError("Encode reply without row_offsets");
          uint64_t last = 0;
          std::memcpy(&last, off.data() + off.size() - 8, 8);
          nnz += static_cast<int64_t>(last);
        }
      }
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      r.nnz_encode = nnz;
      return s;
    };
    if (spec.encode_reference) {
      for (const auto& b : batches) {
        SAEDICT_ASSIGN_OR_RETURN(v1::EncodeRequest req, MakeEncodeRequest(c, b, dict_id));
        encode_requests.push_back(std::move(req));
      }
      SAEDICT_RETURN_IF_ERROR(client->Encode(encode_requests.front()).status());  // warm-up
      std::cerr << "   encode reference pass 1 (" << r.tokens << " tokens)\n";
      SAEDICT_ASSIGN_OR_RETURN(double s, encode_pass());
      r.encode_s.push_back(s);
    }

    // The ingest stream.
    std::cerr << "   ingest: " << r.tokens << " tokens in " << r.batches << " batches\n";
    std::mutex mu;
    std::vector<Clock::time_point> handed_out;  // guarded by mu
    std::vector<double> ack_ms;                 // guarded by mu
    std::vector<double> ack_gap_ms;             // guarded by mu
    std::optional<Clock::time_point> last_ack;  // guarded by mu
    int64_t next = 0;                           // writer thread only
    int64_t acked = 0;
    int64_t max_in_flight = 0;
    const std::string corpus_name = "bench";
    const auto t0 = Clock::now();
    absl::Status ingest = client->Ingest(
        [&]() -> absl::StatusOr<std::optional<v1::IngestRequest>> {
          if (next >= r.batches) return std::optional<v1::IngestRequest>();
          const int64_t rep = next / static_cast<int64_t>(batches.size());
          const auto& range = batches[next % batches.size()];
          SAEDICT_ASSIGN_OR_RETURN(
              v1::IngestRequest req,
              MakeIngestRequest(c, range, static_cast<uint64_t>(rep) * id_stride, dict_id,
                                corpus_name, spec.precision));
          ++next;
          std::lock_guard<std::mutex> lock(mu);
          handed_out.push_back(Clock::now());
          max_in_flight = std::max(max_in_flight, static_cast<int64_t>(handed_out.size()) - acked);
          return std::optional<v1::IngestRequest>(std::move(req));
        },
        [&](const v1::IngestAck& ack) -> absl::Status {
          const auto now = Clock::now();
          std::lock_guard<std::mutex> lock(mu);
          ++acked;
          if (last_ack) {
            ack_gap_ms.push_back(
                std::chrono::duration<double, std::milli>(now - *last_ack).count());
          }
          last_ack = now;
          if (ack.batch() < static_cast<int64_t>(handed_out.size())) {
            ack_ms.push_back(
                std::chrono::duration<double, std::milli>(now - handed_out[ack.batch()]).count());
          }
          return absl::OkStatus();
        });
    r.ingest_s = std::chrono::duration<double>(Clock::now() - t0).count();
    SAEDICT_RETURN_IF_ERROR(ingest);
    r.max_in_flight = max_in_flight;
    r.ack_ms = Summarize(ack_ms);
    r.ack_gap_ms = Summarize(ack_gap_ms);
    std::cerr << absl::StrFormat("   ingest: %.2f s, %.0f tok/s\n", r.ingest_s, r.IngestTokS());

    if (spec.encode_reference) {
      std::cerr << "   encode reference pass 2\n";
      SAEDICT_ASSIGN_OR_RETURN(double s, encode_pass());
      r.encode_s.push_back(s);
    }

    if (spec.stats_sum) {
      int64_t nnz = 0;
      for (int64_t f = 0; f < r.d_sae; ++f) {
        v1::GetFeatureRequest req;
        req.set_dictionary_id(dict_id);
        req.set_feature(static_cast<uint32_t>(f));
        req.set_top_n(1);
        req.set_context_window(0);
        SAEDICT_ASSIGN_OR_RETURN(v1::GetFeatureResponse resp, client->GetFeature(req));
        nnz += resp.stats().count();
        r.stored_total_tokens = resp.stats().total_tokens();
      }
      r.nnz_stored = nnz;
    }

    if (spec.queries) SAEDICT_RETURN_IF_ERROR(RunQueries(*client, dict_id, r));

    client.reset();
    srv->Shutdown(absl::Seconds(5));
    srv.reset();  // closes the store
    r.at_close = MeasureDir(data_dir / "db");
    std::cerr << "   reopening db/ for a full compaction\n";
    SAEDICT_ASSIGN_OR_RETURN(r.compacted, CompactAndMeasure(data_dir / "db"));
    std::error_code ec;
    std::filesystem::remove_all(data_dir, ec);
    return r;
  }

 private:
  absl::Status RunQueries(client::Client& client, const std::string& dict_id, CaseResult& r) {
    std::mt19937 gen(7);
    std::uniform_int_distribution<uint32_t> feature(0, static_cast<uint32_t>(r.d_sae - 1));
    auto time_calls =
        [&](const std::string& name, int n,
            const std::function<absl::StatusOr<bool>(uint32_t)>& call) -> absl::Status {
      std::cerr << "   queries: " << n << " x " << name << "\n";
      for (int w = 0; w < 20; ++w) SAEDICT_RETURN_IF_ERROR(call(feature(gen)).status());  // warm-up
      QueryResult q;
      q.name = name;
      std::vector<double> ms;
      for (int i = 0; i < n; ++i) {
        const uint32_t f = feature(gen);
        const auto t0 = Clock::now();
        SAEDICT_ASSIGN_OR_RETURN(bool has_examples, call(f));
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (!has_examples) ++q.empty;
      }
      q.ms = Summarize(ms);
      r.queries.push_back(q);
      return absl::OkStatus();
    };
    SAEDICT_RETURN_IF_ERROR(time_calls(
        "GetFeature(top_n=10,ctx=8)", flags_.queries, [&](uint32_t f) -> absl::StatusOr<bool> {
          v1::GetFeatureRequest req;
          req.set_dictionary_id(dict_id);
          req.set_feature(f);
          req.set_top_n(10);
          req.set_context_window(8);
          SAEDICT_ASSIGN_OR_RETURN(v1::GetFeatureResponse resp, client.GetFeature(req));
          return resp.top_examples_size() > 0;
        }));
    SAEDICT_RETURN_IF_ERROR(time_calls(
        "TopActivations(n=10,ctx=8)", flags_.queries, [&](uint32_t f) -> absl::StatusOr<bool> {
          v1::TopActivationsRequest req;
          req.set_dictionary_id(dict_id);
          req.set_feature(f);
          req.set_n(10);
          req.set_context_window(8);
          SAEDICT_ASSIGN_OR_RETURN(v1::TopActivationsResponse resp, client.TopActivations(req));
          return resp.top_size() > 0;
        }));
    if (flags_.quantile_queries > 0) {
      SAEDICT_RETURN_IF_ERROR(time_calls(
          "TopActivations(n=10,ctx=8,bins=4)", flags_.quantile_queries,
          [&](uint32_t f) -> absl::StatusOr<bool> {
            v1::TopActivationsRequest req;
            req.set_dictionary_id(dict_id);
            req.set_feature(f);
            req.set_n(10);
            req.set_context_window(8);
            req.set_quantile_bins(4);
            SAEDICT_ASSIGN_OR_RETURN(v1::TopActivationsResponse resp, client.TopActivations(req));
            return resp.top_size() > 0;
          }));
    }
    return absl::OkStatus();
  }

  const Flags flags_;
  const std::filesystem::path scratch_;
};

// ---------------------------------------------------------------------------
// Report.

constexpr double kSmallTargetTokS = 150000;
constexpr double kBytesRatioTarget = 1.3;
// p99 targets at ~1M stored tokens (issue 7): GetFeature and TopActivations
// 3 ms each, TopActivations with 4 quantile bins 5 ms.
struct QueryTarget {
  const char* call;
  double p99_ms;
};
constexpr QueryTarget kQueryTargets[] = {
    {"GetFeature(top_n=10,ctx=8)", 3},
    {"TopActivations(n=10,ctx=8)", 3},
    {"TopActivations(n=10,ctx=8,bins=4)", 5},
};

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

void PrintTables(const std::vector<CaseResult>& results, const std::string& loadavg_start,
                 const std::string& loadavg_end, const std::string& data_note) {
  std::cout << "\ningest_bench  (machine load average at start: " << loadavg_start
            << "; at end: " << loadavg_end << ")\n";
  std::cout << data_note << "\n";
  std::cout << "\n1. Ingest throughput end to end (client -> gRPC -> encode -> RocksDB, synced)\n";
  std::cout << absl::StrFormat("%-10s %-14s %-4s %8s %6s %8s %12s %12s %7s %9s %9s %6s\n", "case",
                               "shape", "prec", "tokens", "batchs", "ingest_s", "ingest_tok/s",
                               "encode_tok/s", "ing/enc", "batch_ms", "ack_p50ms", "flight");
  for (const CaseResult& r : results) {
    std::cout << absl::StrFormat(
        "%-10s %-14s %-4s %8d %6d %8.2f %12.0f %12s %7s %9.1f %9.1f %6d\n", r.name,
        absl::StrCat(r.d_in, "x", r.d_sae, "_k", r.k), r.precision, r.tokens, r.batches, r.ingest_s,
        r.IngestTokS(), r.encode_s.empty() ? "-" : absl::StrFormat("%.0f", r.EncodeTokS()),
        r.encode_s.empty() ? "-" : absl::StrFormat("%.2f", Ratio(r.IngestTokS(), r.EncodeTokS())),
        r.ack_gap_ms.p50, r.ack_ms.p50, r.max_in_flight);
  }
  for (const CaseResult& r : results) {
    if (absl::StartsWith(r.name, "small") && r.precision == "f32") {
      std::cout << absl::StrFormat(
          "  target: small SAE ingest >= %.0f tok/s: %s (%.0f)\n", kSmallTargetTokS,
          r.IngestTokS() >= kSmallTargetTokS ? "PASS" : "MISS", r.IngestTokS());
    }
  }
  std::cout << "  encode: unary Encode RPCs of the same batches, sequential, no storage; the\n"
               "  faster of a pass before and one after the ingest. batch_ms: median time between\n"
               "  consecutive acks (steady-state time per batch); ack_p50ms: median time from\n"
               "  handing a batch to the stream to its ack (includes queueing behind the batches\n"
               "  in flight); flight: most batches sent and not yet acknowledged.\n";

  std::cout << "\n2. Bytes on disk per stored token (raw sparse = nnz x (4 B index + 2 B value))\n";
  std::cout << absl::StrFormat("%-10s %-4s %9s %7s %9s %9s %9s %9s %9s %9s %8s %8s\n", "case",
                               "prec", "tokens", "nnz/tok", "raw_B/tok", "close_B/t", "fwd_B/t",
                               "inv_B/t", "stats_B/t", "docs_B/t", "lat/raw", "all/raw");
  for (const CaseResult& r : results) {
    const double t = double(r.tokens);
    const double raw = double(r.Nnz()) * 6.0 / t;
    const double close = double(r.at_close.sst + r.at_close.wal) / t;
    std::cout << absl::StrFormat(
        "%-10s %-4s %9d %7.2f %9.1f %9.1f %9.1f %9.1f %9.2f %9.1f %8.2f %8.2f\n", r.name,
        r.precision, r.tokens, double(r.Nnz()) / t, raw, close, r.Family("forward") / t,
        r.Family("inverted") / t, r.Family("stats") / t, r.Family("docs") / t,
        Ratio(r.CompactedLatents() / t, raw), Ratio(r.CompactedTotal() / t, raw));
  }
  std::cout << "  close_B/t: *.sst + WAL *.log of db/ as the server left it (uncompacted).\n"
               "  fwd/inv/stats/docs: per column family after reopening db/ and a forced full\n"
               "  compaction. lat/raw = (forward+inverted+stats)/raw; all/raw adds docs, names,\n"
               "  dictionaries. ";
  std::cout << absl::StrFormat("Target: <= %.1fx.\n", kBytesRatioTarget);
  for (const CaseResult& r : results) {
    if (r.nnz_stored >= 0 && r.nnz_encode >= 0 && r.nnz_stored != r.nnz_encode) {
      std::cout << absl::StrFormat("  note %s: nnz from GetFeature counts %d, from Encode %d\n",
                                   r.name, r.nnz_stored, r.nnz_encode);
    }
    if (r.stored_total_tokens >= 0 && r.stored_total_tokens != r.tokens) {
      std::cout << absl::StrFormat("  note %s: stats total_tokens %d, ingested %d\n", r.name,
                                   r.stored_total_tokens, r.tokens);
    }
  }

  for (const CaseResult& r : results) {
    if (r.queries.empty()) continue;
    std::cout << absl::StrFormat(
        "\n3. Query latency at %d stored tokens (%s, %dx%d k=%d), sequential, one client\n",
        r.tokens, r.precision, r.d_in, r.d_sae, r.k);
    std::cout << absl::StrFormat("%-36s %6s %8s %8s %8s %8s %6s\n", "call", "n", "p50_ms", "p99_ms",
                                 "max_ms", "mean_ms", "empty");
    for (const QueryResult& q : r.queries) {
      std::cout << absl::StrFormat("%-36s %6d %8.3f %8.3f %8.3f %8.3f %6d\n", q.name, q.ms.n,
                                   q.ms.p50, q.ms.p99, q.ms.max, q.ms.mean, q.empty);
    }
    for (const QueryTarget& target : kQueryTargets) {
      for (const QueryResult& q : r.queries) {
        if (q.name != target.call) continue;
        std::cout << absl::StrFormat("  target: %s p99 <= %.0f ms: %s (%.3f ms)\n", target.call,
                                     target.p99_ms, q.ms.p99 <= target.p99_ms ? "PASS" : "MISS",
                                     q.ms.p99);
      }
    }
  }
}

std::string Json(const std::vector<CaseResult>& results, const std::string& loadavg_start,
                 const std::string& loadavg_end, const std::string& data_note, const Flags& flags) {
  auto pct = [](const Percentiles& p) {
    return absl::StrFormat("{\"n\":%d,\"p50\":%.4f,\"p99\":%.4f,\"max\":%.4f,\"mean\":%.4f}", p.n,
                           p.p50, p.p99, p.max, p.mean);
  };
  std::vector<std::string> cases;
  for (const CaseResult& r : results) {
    std::vector<std::string> fams;
    for (const FamilyBytes& f : r.compacted) {
      fams.push_back(absl::StrFormat("\"%s\":%d", f.name, f.bytes));
    }
    std::vector<std::string> queries;
    for (const QueryResult& q : r.queries) {
      queries.push_back(absl::StrFormat("{\"call\":%s,\"ms\":%s,\"empty\":%d}",
                                        formats::JsonQuote(q.name), pct(q.ms), q.empty));
    }
    const double raw = double(r.Nnz()) * 6.0;
    cases.push_back(absl::StrFormat(
        "{\"case\":\"%s\",\"dictionary\":%s,\"d_in\":%d,\"d_sae\":%d,\"k\":%d,"
        "\"precision\":\"%s\",\"tokens\":%d,\"documents\":%d,\"batches\":%d,"
        "\"ingest_s\":%.4f,\"ingest_tok_s\":%.1f,\"encode_tok_s\":%.1f,"
        "\"ingest_over_encode\":%.4f,\"max_in_flight\":%d,\"ack_ms\":%s,\"ack_gap_ms\":%s,"
        "\"nnz\":%d,\"nnz_encode\":%d,\"nnz_stored\":%d,"
        "\"db_at_close\":{\"sst\":%d,\"wal\":%d,\"other\":%d},\"compacted\":{%s},"
        "\"raw_sparse_bytes\":%.0f,\"bytes_per_token_at_close\":%.3f,"
        "\"latent_bytes_per_token\":%.3f,\"latents_over_raw\":%.4f,\"all_over_raw\":%.4f,"
        "\"queries\":[%s]}",
        r.name, formats::JsonQuote(r.dictionary), r.d_in, r.d_sae, r.k, r.precision, r.tokens,
        r.documents, r.batches, r.ingest_s, r.IngestTokS(), r.EncodeTokS(),
        Ratio(r.IngestTokS(), r.EncodeTokS()), r.max_in_flight, pct(r.ack_ms), pct(r.ack_gap_ms),
        r.Nnz(), r.nnz_encode, r.nnz_stored, r.at_close.sst, r.at_close.wal, r.at_close.other,
        absl::StrJoin(fams, ","), raw, Ratio(double(r.at_close.sst + r.at_close.wal), r.tokens),
        Ratio(double(r.CompactedLatents()), r.tokens), Ratio(r.CompactedLatents(), raw),
        Ratio(r.CompactedTotal(), raw), absl::StrJoin(queries, ",")));
  }
  return absl::StrFormat(
      "{\"bench\":\"ingest_bench\",\"loadavg_start\":%s,\"loadavg_end\":%s,\"data\":%s,"
      "\"batch_tokens\":%d,\"targets\":{\"small_ingest_tok_s\":%.0f,\"bytes_over_raw\":%.2f,"
      "\"get_feature_p99_ms\":%.1f,\"top_activations_p99_ms\":%.1f,"
      "\"top_activations_4_bins_p99_ms\":%.1f},\"cases\":[%s]}",
      formats::JsonQuote(loadavg_start), formats::JsonQuote(loadavg_end),
      formats::JsonQuote(data_note), flags.batch_tokens, kSmallTargetTokS, kBytesRatioTarget,
      kQueryTargets[0].p99_ms, kQueryTargets[1].p99_ms, kQueryTargets[2].p99_ms,
      absl::StrJoin(cases, ","));
}

// ---------------------------------------------------------------------------

// Removes the scratch directory however Main returns.
struct ScratchDir {
  std::filesystem::path path;
  ~ScratchDir() {
    if (path.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

absl::Status Main(int argc, char** argv) {
  SAEDICT_ASSIGN_OR_RETURN(Flags flags, ParseIngestFlags(argc, argv));
  const std::string loadavg_start = LoadAverage();

  std::filesystem::path parent = flags.data_dir.empty() ? std::filesystem::temp_directory_path()
                                                        : std::filesystem::path(flags.data_dir);
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  std::string tmpl = (parent / "saedict_ingest_bench.XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot create a scratch dir in ", parent.string()));
  }
  ScratchDir scratch{tmpl};
  std::cerr << "scratch dir " << scratch.path << " (removed at exit)\n";

  // The small SAE and its corpus.
  const std::filesystem::path stories = std::filesystem::path(flags.shared_data) / "stories260k";
  const bool have_stories = std::filesystem::exists(stories / "topk_l2_a" / "cfg.json") &&
                            std::filesystem::exists(stories / "acts_layer2.npy");
  Corpus small_corpus;
  DictSpec small_dict;
  std::string data_note;
  if (have_stories) {
    SAEDICT_ASSIGN_OR_RETURN(small_corpus, LoadStories(stories, flags.token_strings));
    small_dict = {"stories260k topk_l2_a", stories, "topk_l2_a"};
    data_note =
        absl::StrCat("small SAE: stories260k topk_l2_a on acts_layer2.npy, ",
                     small_corpus.docs.size(), " docs, ", small_corpus.num_tokens(),
                     " tokens per pass", small_corpus.vocab.empty() ? "" : ", with token strings");
  } else {
    const BenchShape shape{64, 512, 16};
    const std::filesystem::path root = scratch.path / "dicts";
    SAEDICT_RETURN_IF_ERROR(
        testing::WriteSaeLensFolder(root / "small", *MakeRandomTopKDictionary(shape, 1)));
    small_corpus = SyntheticCorpus(294, 256, 64, 3);  // ~ the stories token count
    small_dict = {"random 64x512 k=16 TopK", root, "small"};
    data_note = absl::StrCat("small SAE: ", stories.string(),
                             " not found: FALLBACK to a random 64x512 k=16 TopK SAE on ",
                             small_corpus.description);
  }
  std::cerr << data_note << "\n";

  Bench bench(flags, scratch.path);
  std::vector<CaseResult> results;
  if (flags.Has("small")) {
    for (const std::string& p : flags.precisions) {
      CaseSpec spec;
      spec.name = "small_" + p;
      spec.dict = small_dict;
      spec.corpus = &small_corpus;
      spec.repeat = flags.repeat;
      spec.precision = p == "f16" ? v1::VALUE_PRECISION_F16 : v1::VALUE_PRECISION_F32;
      SAEDICT_ASSIGN_OR_RETURN(CaseResult r, bench.Run(spec));
      results.push_back(std::move(r));
    }
  }
  if (flags.Has("large")) {
    const BenchShape shape{768, 24576, 32};
    const std::filesystem::path root = scratch.path / "dicts";
    std::cerr << "writing a random " << shape.Name() << " SAE (SAELens layout)\n";
    SAEDICT_RETURN_IF_ERROR(
        testing::WriteSaeLensFolder(root / "large", *MakeRandomTopKDictionary(shape, 1)));
    const int64_t docs = std::max<int64_t>(1, flags.large_tokens / 256);
    const Corpus large_corpus = SyntheticCorpus(docs, 256, shape.d_in, 5);
    CaseSpec spec;
    spec.name = "large_f32";
    spec.dict = {"random 768x24576 k=32 TopK", root, "large"};
    spec.corpus = &large_corpus;
    spec.repeat = 1;
    spec.stats_sum = false;
    SAEDICT_ASSIGN_OR_RETURN(CaseResult r, bench.Run(spec));
    results.push_back(std::move(r));
    std::filesystem::remove_all(root / "large", ec);
  }
  if (flags.Has("query")) {
    CaseSpec spec;
    spec.name = "query";
    spec.dict = small_dict;
    spec.corpus = &small_corpus;
    spec.repeat = static_cast<int>(std::max<int64_t>(
        1, (flags.query_tokens + small_corpus.num_tokens() / 2) / small_corpus.num_tokens()));
    spec.encode_reference = false;
    spec.queries = true;
    SAEDICT_ASSIGN_OR_RETURN(CaseResult r, bench.Run(spec));
    results.push_back(std::move(r));
  }

  const std::string loadavg_end = LoadAverage();
  PrintTables(results, loadavg_start, loadavg_end, data_note);
  const std::string json = Json(results, loadavg_start, loadavg_end, data_note, flags);
  return WriteJsonReport(json, flags.json_path);
}

}  // namespace
}  // namespace saedict::bench

int main(int argc, char** argv) {
  absl::Status s = saedict::bench::Main(argc, argv);
  if (!s.ok()) {
    std::cerr << "ingest_bench: " << s << "\n";
    return 1;
  }
  return 0;
}
