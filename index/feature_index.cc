// FeatureIndex (see feature_index.h).
#include "index/feature_index.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/parallel.h"
#include "faiss/IVFlib.h"
#include "faiss/Index.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"
#include "faiss/IndexIVF.h"
#include "faiss/index_factory.h"
#include "faiss/index_io.h"
#include "faiss/impl/FaissException.h"
#include "index/file_sha256.h"
#include "index/half_rows.h"
#include "util/status_macros.h"

namespace saedict::index {
namespace {

constexpr char kManifestMagic[] = "saedict-feature-index 1";

// Runs fn, turning a FAISS (or any std) exception into INTERNAL/`code`.
template <typename Fn>
absl::Status CatchFaiss(absl::StatusCode code, const std::string& what, Fn fn) {
  try {
    fn();
    return absl::OkStatus();
  } catch (const faiss::FaissException& e) {
    return absl::Status(code, absl::StrCat(what, ": FAISS: ", e.what()));
  } catch (const std::exception& e) {
    return absl::Status(code, absl::StrCat(what, ": ", e.what()));
  }
}

std::filesystem::path WithSuffix(const std::filesystem::path& prefix, const char* suffix) {
  return std::filesystem::path(prefix.string() + suffix);
}

bool Before(const Hit& a, const Hit& b) {
  return a.cosine > b.cosine || (a.cosine == b.cosine && a.feature < b.feature);
}

absl::Status WriteFileAtomically(const std::filesystem::path& path, const std::string& bytes) {
  const std::filesystem::path tmp = WithSuffix(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", tmp.string()));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot rename ", tmp.string(), " to ", path.string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

std::string ResolveFactory(const IndexConfig& config, int64_t n, int64_t d) {
  if (config.factory != "auto") return config.factory;
  if (n * d <= config.auto_flat_max_elements) return "Flat";
  int64_t nlist = 1;
  while (nlist * nlist < 4 * n) nlist *= 2;  // ~ 2 sqrt(n), a power of two
  return absl::StrCat("IVF", nlist, ",Flat");
}

FeatureIndex::FeatureIndex(Directions directions, std::string factory,
                           std::unique_ptr<faiss::Index> index)
    : directions_(std::move(directions)), factory_(std::move(factory)), index_(std::move(index)) {
  auto* flat = dynamic_cast<faiss::IndexFlat*>(index_.get());
  exact_ = flat != nullptr;
  if (exact_) {
    const float* xb = flat->get_xb();
    half_ = std::make_unique<HalfRows>(std::vector<float>(xb, xb + size() * dim()), size(), dim());
  }
}

FeatureIndex::~FeatureIndex() = default;

void FeatureIndex::Configure(const IndexConfig& config) {
  if (auto* ivf = faiss::ivflib::try_extract_index_ivf(index_.get())) {
    const int nprobe = config.ivf_nprobe > 0
                           ? config.ivf_nprobe
                           : static_cast<int>(std::max<size_t>(8, ivf->nlist / 64));
    ivf->nprobe = std::min<size_t>(nprobe, ivf->nlist);
  }
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index_.get())) {
    hnsw->hnsw.efSearch = config.hnsw_ef_search > 0 ? config.hnsw_ef_search : 128;
  }
}

absl::StatusOr<std::unique_ptr<FeatureIndex>> FeatureIndex::Build(
    std::shared_ptr<const engine::Dictionary> dictionary, DirectionKind kind,
    const IndexConfig& config, const std::function<void(double)>& progress) {
  auto report = [&](double f) {
    if (progress) progress(f);
  };
  report(0);
  Directions directions(std::move(dictionary), kind);
  const int64_t n = directions.size(), d = directions.dim();
  const std::string factory = ResolveFactory(config, n, d);
  const std::vector<float> unit = directions.UnitRows();
  report(0.1);
  std::unique_ptr<faiss::Index> index;
  SAEDICT_RETURN_IF_ERROR(CatchFaiss(
      absl::StatusCode::kInvalidArgument, absl::StrCat("index factory string '", factory, "'"),
      [&] { index.reset(faiss::index_factory(static_cast<int>(d), factory.c_str(),
                                             faiss::METRIC_INNER_PRODUCT)); }));
  if (auto* ivf = faiss::ivflib::try_extract_index_ivf(index.get())) {
    // k-means on 64 points per list instead of FAISS's 256: 4x faster
    // training; the lists still see every direction when they are added.
    ivf->cp.max_points_per_centroid = 64;
  }
  SAEDICT_RETURN_IF_ERROR(CatchFaiss(
      absl::StatusCode::kInvalidArgument,
      absl::StrCat("training index '", factory, "' on ", n, " directions"), [&] {
        if (!index->is_trained) index->train(n, unit.data());
      }));
  report(0.5);
  SAEDICT_RETURN_IF_ERROR(CatchFaiss(absl::StatusCode::kInternal,
                                     absl::StrCat("adding ", n, " directions to '", factory, "'"),
                                     [&] { index->add(n, unit.data()); }));
  std::unique_ptr<FeatureIndex> out(
      new FeatureIndex(std::move(directions), factory, std::move(index)));
  out->Configure(config);
  report(1);
  return out;
}

absl::Status FeatureIndex::Save(const std::filesystem::path& path_prefix,
                                const std::string& weights_sha256) const {
  const std::filesystem::path faiss_path = WithSuffix(path_prefix, ".faiss");
  const std::filesystem::path tmp = WithSuffix(faiss_path, ".tmp");
  std::error_code ec;
  std::filesystem::create_directories(faiss_path.parent_path(), ec);
  SAEDICT_RETURN_IF_ERROR(CatchFaiss(absl::StatusCode::kUnavailable,
                                     absl::StrCat("writing ", tmp.string()),
                                     [&] { faiss::write_index(index_.get(), tmp.c_str()); }));
  SAEDICT_ASSIGN_OR_RETURN(std::string file_sha, FileSha256(tmp));
  file_bytes_ = static_cast<int64_t>(std::filesystem::file_size(tmp, ec));
  std::filesystem::rename(tmp, faiss_path, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot rename ", tmp.string(), ": ", ec.message()));
  }
  const std::string manifest =
      absl::StrCat(kManifestMagic, "\nweights_sha256 ", weights_sha256, "\nkind ",
                   DirectionKindName(directions_.kind()), "\nfactory ", factory_, "\nsize ",
                   size(), "\ndim ", dim(), "\nfaiss_sha256 ", file_sha, "\n");
  return WriteFileAtomically(WithSuffix(path_prefix, ".manifest"), manifest);
}

absl::StatusOr<std::unique_ptr<FeatureIndex>> FeatureIndex::Load(
    const std::filesystem::path& path_prefix, std::shared_ptr<const engine::Dictionary> dictionary,
    DirectionKind kind, const IndexConfig& config, const std::string& weights_sha256) {
  const std::filesystem::path manifest_path = WithSuffix(path_prefix, ".manifest");
  const std::filesystem::path faiss_path = WithSuffix(path_prefix, ".faiss");
  for (const auto& p : {manifest_path, faiss_path}) {
    if (!std::filesystem::exists(p)) return absl::NotFoundError(absl::StrCat(p.string(), ": missing"));
  }
  std::ifstream in(manifest_path);
  std::stringstream text;
  text << in.rdbuf();
  std::vector<std::string> lines = absl::StrSplit(text.str(), '\n', absl::SkipEmpty());
  if (lines.empty() || lines[0] != kManifestMagic) {
    return absl::DataLossError(absl::StrCat(manifest_path.string(), ": not a saedict index manifest"));
  }
  std::map<std::string, std::string> fields;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::pair<std::string, std::string> kv = absl::StrSplit(lines[i], absl::MaxSplits(' ', 1));
    fields[kv.first] = kv.second;
  }
  const int64_t n = dictionary->config.d_sae, d = DirectionDim(dictionary->config, kind);
  const std::string factory = ResolveFactory(config, n, d);
  auto expect = [&](const std::string& key, const std::string& want) -> absl::Status {
    if (fields[key] != want) {
      return absl::FailedPreconditionError(absl::StrCat(manifest_path.string(), ": ", key, " is '",
                                                        fields[key], "', expected '", want, "'"));
    }
    return absl::OkStatus();
  };
  SAEDICT_RETURN_IF_ERROR(expect("weights_sha256", weights_sha256));
  SAEDICT_RETURN_IF_ERROR(expect("kind", DirectionKindName(kind)));
  SAEDICT_RETURN_IF_ERROR(expect("factory", factory));
  SAEDICT_RETURN_IF_ERROR(expect("size", absl::StrCat(n)));
  SAEDICT_RETURN_IF_ERROR(expect("dim", absl::StrCat(d)));
  SAEDICT_ASSIGN_OR_RETURN(std::string file_sha, FileSha256(faiss_path));
  if (file_sha != fields["faiss_sha256"]) {
    return absl::DataLossError(absl::StrCat(faiss_path.string(), ": SHA-256 ", file_sha,
                                            " differs from the manifest's ", fields["faiss_sha256"]));
  }
  std::unique_ptr<faiss::Index> index;
  SAEDICT_RETURN_IF_ERROR(CatchFaiss(absl::StatusCode::kDataLoss,
                                     absl::StrCat("reading ", faiss_path.string()),
                                     [&] { index.reset(faiss::read_index(faiss_path.c_str())); }));
  if (index->ntotal != n || index->d != d || index->metric_type != faiss::METRIC_INNER_PRODUCT) {
    return absl::DataLossError(absl::StrCat(faiss_path.string(), ": holds ", index->ntotal,
                                            " vectors of ", index->d, " (metric ",
                                            static_cast<int>(index->metric_type), "), expected ", n,
                                            " of ", d, " with inner product"));
  }
  std::unique_ptr<FeatureIndex> out(
      new FeatureIndex(Directions(std::move(dictionary), kind), factory, std::move(index)));
  out->Configure(config);
  std::error_code size_error;
  out->file_bytes_ = static_cast<int64_t>(std::filesystem::file_size(faiss_path, size_error));
  return out;
}

int64_t FeatureIndex::memory_bytes() const {
  const int64_t saved = file_bytes_.load();
  const int64_t faiss_bytes =
      saved > 0 ? saved : size() * dim() * static_cast<int64_t>(sizeof(float));
  return faiss_bytes + (half_ ? half_->bytes() : 0);
}

// Float32 dot-product bound for unit vectors accumulated over d terms, plus
// the float32 rounding of both unit vectors.
double FeatureIndex::Float32Bound(int64_t d) {
  return (1.01 * static_cast<double>(d) + 4) * std::ldexp(1.0, -24);
}

std::vector<Hit> FeatureIndex::SelectExact(const std::vector<double>& unit_query, const float* scores,
                                       double bound, const SearchOptions& options,
                                       int64_t exclude) const {
  const int64_t n = size();
  const int64_t want = std::min<int64_t>(n, options.top_n + (exclude >= 0 ? 1 : 0));
  // A lower bound L of the want-th largest score, cheaply: the want-th
  // largest of the maxima of blocks of kBlock rows (want blocks hold a score
  // >= it). Rows >= L - 2 bound are a superset of the candidates; among them
  // the exact want-th largest score sets the real threshold.
  constexpr int64_t kBlock = 16;
  float lower = -std::numeric_limits<float>::infinity();
  if (n >= want * kBlock * 2) {
    std::vector<float> maxima(n / kBlock);
    for (size_t b = 0; b < maxima.size(); ++b) {
      const float* s = scores + b * kBlock;
      float m = s[0];
      for (int64_t k = 1; k < kBlock; ++k) m = std::max(m, s[k]);
      maxima[b] = m;
    }
    std::nth_element(maxima.begin(), maxima.begin() + (want - 1), maxima.end(),
                     std::greater<float>());
    lower = maxima[want - 1];
  }
  const double pre = static_cast<double>(lower) - 2 * bound;
  std::vector<uint32_t> rows;
  std::vector<float> kept;
  for (int64_t i = 0; i < n; ++i) {
    if (static_cast<double>(scores[i]) >= pre) {
      rows.push_back(static_cast<uint32_t>(i));
      kept.push_back(scores[i]);
    }
  }
  std::nth_element(kept.begin(), kept.begin() + (want - 1), kept.end(), std::greater<float>());
  // Any row of the exact top `want` scores >= (want-th approximate) - 2 bound.
  double threshold = static_cast<double>(kept[want - 1]) - 2 * bound;
  if (std::isfinite(options.min_cosine)) threshold = std::max(threshold, options.min_cosine - bound);
  std::vector<Hit> hits;
  for (uint32_t i : rows) {
    if (i == exclude || static_cast<double>(scores[i]) < threshold) continue;
    const double c = directions_.ExactCosine(unit_query.data(), i);
    if (c >= options.min_cosine) hits.push_back({i, c});
  }
  std::sort(hits.begin(), hits.end(), Before);
  if (static_cast<int64_t>(hits.size()) > options.top_n) hits.resize(options.top_n);
  return hits;
}

absl::StatusOr<std::vector<std::vector<Hit>>> FeatureIndex::Search(
    const std::vector<std::vector<double>>& unit_queries, const SearchOptions& options,
    const std::vector<int64_t>& exclude) const {
  if (options.top_n < 1) {
    return absl::InvalidArgumentError(absl::StrCat("top_n: ", options.top_n, "; expected >= 1"));
  }
  if (!exclude.empty() && exclude.size() != unit_queries.size()) {
    return absl::InvalidArgumentError("exclude: expected one entry per query");
  }
  for (size_t q = 0; q < unit_queries.size(); ++q) {
    if (static_cast<int64_t>(unit_queries[q].size()) != dim()) {
      return absl::InvalidArgumentError(absl::StrCat("query ", q, ": ", unit_queries[q].size(),
                                                     " components; expected ", dim()));
    }
  }
  if (!exact_) return SearchApproximate(unit_queries, options, exclude);
  if (unit_queries.size() >= static_cast<size_t>(kGemmMinQueries)) {
    return SearchExactGemm(unit_queries, options, exclude);
  }
  std::vector<std::vector<Hit>> out;
  std::vector<float> q(dim()), scores(size());
  for (size_t k = 0; k < unit_queries.size(); ++k) {
    for (int64_t j = 0; j < dim(); ++j) q[j] = static_cast<float>(unit_queries[k][j]);
    half_->Score(q.data(), scores.data());
    out.push_back(SelectExact(unit_queries[k], scores.data(), half_->ErrorBound(), options,
                          exclude.empty() ? -1 : exclude[k]));
  }
  return out;
}

absl::StatusOr<std::vector<std::vector<Hit>>> FeatureIndex::SearchExactGemm(
    const std::vector<std::vector<double>>& unit_queries, const SearchOptions& options,
    const std::vector<int64_t>& exclude) const {
  const int64_t n = size(), d = dim();
  const float* xb = static_cast<const faiss::IndexFlat*>(index_.get())->get_xb();
  const int64_t block = std::clamp<int64_t>((int64_t{1} << 24) / std::max<int64_t>(n, 1), 1, 256);
  std::vector<std::vector<Hit>> out(unit_queries.size());
  std::vector<float> q, scores;
  for (size_t first = 0; first < unit_queries.size(); first += block) {
    const int64_t rows = std::min<int64_t>(block, unit_queries.size() - first);
    q.assign(rows * d, 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < d; ++j) q[r * d + j] = static_cast<float>(unit_queries[first + r][j]);
    }
    scores.resize(rows * n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                static_cast<int>(n), static_cast<int>(d), 1.0f, q.data(), static_cast<int>(d), xb,
                static_cast<int>(d), 0.0f, scores.data(), static_cast<int>(n));
    engine::ParallelFor(rows, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const size_t k = first + r;
        out[k] = SelectExact(unit_queries[k], scores.data() + r * n, Float32Bound(d), options,
                         exclude.empty() ? -1 : exclude[k]);
      }
    });
  }
  return out;
}

absl::StatusOr<std::vector<std::vector<Hit>>> FeatureIndex::SearchApproximate(
    const std::vector<std::vector<double>>& unit_queries, const SearchOptions& options,
    const std::vector<int64_t>& exclude) const {
  const int64_t nq = static_cast<int64_t>(unit_queries.size()), d = dim();
  const int64_t k = std::min<int64_t>(size(), 2 * int64_t{options.top_n} + 8);
  std::vector<float> q(nq * d);
  for (int64_t r = 0; r < nq; ++r) {
    for (int64_t j = 0; j < d; ++j) q[r * d + j] = static_cast<float>(unit_queries[r][j]);
  }
  std::vector<float> distances(nq * k);
  std::vector<faiss::Index::idx_t> labels(nq * k);
  SAEDICT_RETURN_IF_ERROR(CatchFaiss(absl::StatusCode::kInternal,
                                     absl::StrCat("searching '", factory_, "'"), [&] {
                                       index_->search(nq, q.data(), k, distances.data(),
                                                      labels.data());
                                     }));
  std::vector<std::vector<Hit>> out(nq);
  for (int64_t r = 0; r < nq; ++r) {
    const int64_t skip = exclude.empty() ? -1 : exclude[r];
    for (int64_t c = 0; c < k; ++c) {
      const faiss::Index::idx_t label = labels[r * k + c];
      if (label < 0 || label == skip) continue;
      const double cosine = directions_.ExactCosine(unit_queries[r].data(), label);
      if (cosine >= options.min_cosine) out[r].push_back({static_cast<uint32_t>(label), cosine});
    }
    std::sort(out[r].begin(), out[r].end(), Before);
    if (static_cast<int64_t>(out[r].size()) > options.top_n) out[r].resize(options.top_n);
  }
  return out;
}

}  // namespace saedict::index
