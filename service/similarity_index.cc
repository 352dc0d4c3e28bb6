// SimilarityIndex (see similarity_index.h).
#include "service/similarity_index.h"

#include <algorithm>
#include <cmath>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "index/directions.h"
#include "index/neighbours.h"
#include "util/log.h"
#include "util/status_macros.h"
#include "wire/wire_codec.h"

namespace saedict::service {
namespace {

constexpr int kDefaultTopN = 10;
constexpr int kMaxTopN = 1000;
constexpr int kMaxAgainst = 64;

bool Settled(v1::IndexState s) {
  return s == v1::INDEX_STATE_READY || s == v1::INDEX_STATE_FAILED;
}

std::shared_ptr<const engine::Dictionary> DictionaryOf(
    const std::shared_ptr<const engine::Encoder>& encoder) {
  // Aliasing: the dictionary lives as long as its encoder.
  return std::shared_ptr<const engine::Dictionary>(encoder, &encoder->dictionary());
}

double SecondsSince(absl::Time start) { return absl::ToDoubleSeconds(absl::Now() - start); }

}  // namespace

std::string DescribeIndexState(v1::IndexState state, double progress, const std::string& error) {
  switch (state) {
    case v1::INDEX_STATE_QUEUED:
      return "QUEUED";
    case v1::INDEX_STATE_BUILDING:
      return absl::StrCat("BUILDING (", static_cast<int>(std::floor(progress * 100)), "%)");
    case v1::INDEX_STATE_READY:
      return "READY";
    case v1::INDEX_STATE_FAILED:
      return absl::StrCat("FAILED: ", error);
    default:
      return "not built (UNSPECIFIED)";
  }
}

SimilarityIndex::SimilarityIndex(DictionaryRegistry* registry, storage::CorpusStore* store,
                                 SimilarityOptions options)
    : registry_(registry), store_(store), options_(std::move(options)) {
  builder_ = std::thread([this] { BuilderLoop(); });
}

SimilarityIndex::~SimilarityIndex() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  builder_.join();
}

SimilarityIndex::Stage* SimilarityIndex::StageOf(Entry& entry, index::DirectionKind kind) {
  return kind == index::DirectionKind::kDecoder ? &entry.decoder : &entry.encoder;
}

std::filesystem::path SimilarityIndex::IndexPrefix(const std::string& id,
                                                   index::DirectionKind kind) const {
  return options_.index_dir / absl::StrCat(id, ".", index::DirectionKindName(kind));
}

void SimilarityIndex::Schedule(const std::string& id, bool force) {
  absl::StatusOr<std::shared_ptr<const engine::Encoder>> encoder = registry_->GetEncoder(id);
  if (!encoder.ok()) return;
  absl::MutexLock lock(&mu_);
  Entry& entry = entries_[id];
  if (!force && entry.weights_sha256 == (*encoder)->content_sha256() &&
      entry.decoder.state != v1::INDEX_STATE_UNSPECIFIED &&
      entry.decoder.state != v1::INDEX_STATE_FAILED) {
    return;
  }
  const uint64_t generation = entry.generation + 1;
  entry = Entry{};
  entry.weights_sha256 = (*encoder)->content_sha256();
  entry.generation = generation;
  entry.decoder.state = v1::INDEX_STATE_QUEUED;
  entry.neighbours.state = v1::INDEX_STATE_QUEUED;
  jobs_.push_back({id, generation, index::DirectionKind::kDecoder});
}

void SimilarityIndex::Forget(const std::string& id) {
  {
    absl::MutexLock lock(&mu_);
    entries_.erase(id);
  }
  for (index::DirectionKind kind : {index::DirectionKind::kDecoder, index::DirectionKind::kEncoder}) {
    for (const char* suffix : {".faiss", ".manifest"}) {
      std::error_code ec;
      std::filesystem::remove(IndexPrefix(id, kind).string() + suffix, ec);
    }
  }
}

bool SimilarityIndex::Current(const Job& job) const {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  auto it = entries_.find(job.id);
  return it != entries_.end() && it->second.generation == job.generation;
}

void SimilarityIndex::BuilderLoop() {
  while (true) {
    Job job;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !jobs_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      job = jobs_.front();
      jobs_.pop_front();
    }
    RunJob(job);
  }
}

void SimilarityIndex::RunJob(const Job& job) {
  absl::StatusOr<std::shared_ptr<const engine::Encoder>> encoder = registry_->GetEncoder(job.id);
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(job.id);
    if (it == entries_.end() || it->second.generation != job.generation) return;
    if (!encoder.ok() || (*encoder)->content_sha256() != it->second.weights_sha256) return;
    *StageOf(it->second, job.kind) = Stage{v1::INDEX_STATE_BUILDING, 0, "", 0};
  }
  const absl::Time start = absl::Now();
  bool loaded = false;
  absl::StatusOr<std::shared_ptr<const index::FeatureIndex>> built =
      MakeIndex(job, *encoder, &loaded);
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(job.id);
    if (it == entries_.end() || it->second.generation != job.generation) return;
    Entry& entry = it->second;
    Stage* stage = StageOf(entry, job.kind);
    if (!built.ok()) {
      *stage = Stage{v1::INDEX_STATE_FAILED, 0, std::string(built.status().message()),
                     SecondsSince(start)};
      if (job.kind == index::DirectionKind::kDecoder) {
        entry.neighbours = Stage{v1::INDEX_STATE_FAILED, 0, "the decoder index failed", 0};
      }
      LogWarning(absl::StrCat("index of dictionary '", job.id, "' failed: ",
                              built.status().ToString()));
      return;
    }
    *stage = Stage{v1::INDEX_STATE_READY, 1, "", SecondsSince(start)};
    if (job.kind == index::DirectionKind::kEncoder) {
      entry.encoder_index = *built;
      return;
    }
    entry.decoder_index = *built;
    entry.loaded_from_disk = loaded;
    entry.neighbours = Stage{v1::INDEX_STATE_BUILDING, 0, "", 0};
  }
  const absl::Time neighbours_start = absl::Now();
  const absl::Status made = MakeNeighbours(job, **built);
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(job.id);
  if (it == entries_.end() || it->second.generation != job.generation) return;
  if (made.ok()) {
    it->second.neighbours = Stage{v1::INDEX_STATE_READY, 1, "", SecondsSince(neighbours_start)};
  } else {
    it->second.neighbours = Stage{v1::INDEX_STATE_FAILED, 0, std::string(made.message()),
                                  SecondsSince(neighbours_start)};
    LogWarning(absl::StrCat("neighbours of dictionary '", job.id, "' failed: ", made.ToString()));
  }
}

absl::StatusOr<std::shared_ptr<const index::FeatureIndex>> SimilarityIndex::MakeIndex(
    const Job& job, std::shared_ptr<const engine::Encoder> encoder, bool* loaded_from_disk) {
  const std::filesystem::path prefix = IndexPrefix(job.id, job.kind);
  const std::string sha = encoder->content_sha256();
  absl::StatusOr<std::unique_ptr<index::FeatureIndex>> loaded =
      index::FeatureIndex::Load(prefix, DictionaryOf(encoder), job.kind, options_.config, sha);
  if (loaded.ok()) {
    *loaded_from_disk = true;
    return std::shared_ptr<const index::FeatureIndex>(std::move(*loaded));
  }
  if (!absl::IsNotFound(loaded.status())) {
    LogInfo(absl::StrCat("rebuilding the ", index::DirectionKindName(job.kind),
                         " index of dictionary '", job.id, "': ", loaded.status().message()));
  }
  auto progress = [&](double fraction) {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(job.id);
    if (it != entries_.end() && it->second.generation == job.generation) {
      StageOf(it->second, job.kind)->progress = fraction;
    }
  };
  SAEDICT_ASSIGN_OR_RETURN(
      std::unique_ptr<index::FeatureIndex> built,
      index::FeatureIndex::Build(DictionaryOf(encoder), job.kind, options_.config, progress));
  if (Current(job)) {
    if (absl::Status saved = built->Save(prefix, sha); !saved.ok()) {
      LogWarning(absl::StrCat("index of dictionary '", job.id,
                              "' not saved (rebuilt at the next start): ", saved.ToString()));
    }
  }
  return std::shared_ptr<const index::FeatureIndex>(std::move(built));
}

absl::Status SimilarityIndex::MakeNeighbours(const Job& job, const index::FeatureIndex& decoder) {
  const int per_feature = options_.neighbours_per_feature;
  const std::string sha = [&] {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(job.id);
    return it == entries_.end() ? std::string() : it->second.weights_sha256;
  }();
  SAEDICT_ASSIGN_OR_RETURN(std::optional<records::v1::NeighboursManifest> manifest,
                           store_->GetNeighboursManifest(job.id));
  if (manifest && manifest->weights_sha256() == sha && manifest->per_feature() == per_feature &&
      manifest->features() == decoder.size()) {
    // Trust the manifest only when every record it promises is there: a
    // builder of an earlier load of this id can have written the manifest
    // after a delete removed its records.
    SAEDICT_ASSIGN_OR_RETURN(const bool complete, NeighboursComplete(job.id, sha, decoder.size()));
    if (complete) {
      absl::MutexLock lock(&mu_);
      auto it = entries_.find(job.id);
      if (it != entries_.end()) it->second.neighbours_done = decoder.size();
      return absl::OkStatus();
    }
    LogInfo(absl::StrCat("recomputing the neighbours of dictionary '", job.id,
                         "': the stored ones are incomplete"));
  }
  SAEDICT_RETURN_IF_ERROR(store_->DeleteNeighbours(job.id));
  const absl::Time start = absl::Now();
  const int64_t total = decoder.size();
  auto sink = [&](int64_t first, std::vector<std::vector<index::Hit>> lists) -> absl::Status {
    if (!Current(job)) return absl::CancelledError("the dictionary changed");
    std::vector<records::v1::NeighboursRecord> records(lists.size());
    for (size_t i = 0; i < lists.size(); ++i) {
      records[i].set_weights_sha256(sha);
      records[i].set_exact(decoder.exact());
      for (const index::Hit& h : lists[i]) {
        records[i].add_features(h.feature);
        records[i].add_cosines(h.cosine);
      }
    }
    SAEDICT_RETURN_IF_ERROR(
        store_->PutNeighbours(job.id, static_cast<uint32_t>(first), records));
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(job.id);
    if (it != entries_.end() && it->second.generation == job.generation) {
      it->second.neighbours_done = first + static_cast<int64_t>(lists.size());
      it->second.neighbours.progress =
          static_cast<double>(it->second.neighbours_done) / std::max<int64_t>(1, total);
    }
    return absl::OkStatus();
  };
  SAEDICT_RETURN_IF_ERROR(index::PrecomputeNeighbours(decoder, {per_feature}, sink,
                                                      [&] { return !Current(job); }));
  records::v1::NeighboursManifest done;
  done.set_weights_sha256(sha);
  done.set_per_feature(per_feature);
  done.set_features(total);
  done.set_seconds(SecondsSince(start));
  if (!Current(job)) return absl::CancelledError("the dictionary changed");
  return store_->PutNeighboursManifest(job.id, done);
}

absl::StatusOr<bool> SimilarityIndex::NeighboursComplete(const std::string& id,
                                                        const std::string& sha,
                                                        int64_t features) const {
  for (int64_t f = 0; f < features; ++f) {
    SAEDICT_ASSIGN_OR_RETURN(std::optional<records::v1::NeighboursRecord> record,
                             store_->GetNeighbours(id, static_cast<uint32_t>(f)));
    if (!record || record->weights_sha256() != sha) return false;
  }
  return true;
}

v1::IndexStatus SimilarityIndex::Status(const std::string& id) const {
  v1::IndexStatus out;
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return out;
  const Entry& e = it->second;
  out.set_state(e.decoder.state);
  out.set_progress(e.decoder.progress);
  out.set_error(e.decoder.error);
  out.set_build_seconds(e.decoder.seconds);
  out.set_loaded_from_disk(e.loaded_from_disk);
  if (e.decoder_index) {
    out.set_factory(e.decoder_index->factory());
    out.set_exact(e.decoder_index->exact());
    out.set_memory_bytes(e.decoder_index->memory_bytes() +
                         (e.encoder_index ? e.encoder_index->memory_bytes() : 0));
  }
  out.set_neighbours_state(e.neighbours.state);
  out.set_neighbours_per_feature(options_.neighbours_per_feature);
  out.set_neighbours_done(e.neighbours_done);
  out.set_neighbours_seconds(e.neighbours.seconds);
  if (e.neighbours.state == v1::INDEX_STATE_FAILED && out.error().empty()) {
    out.set_error(absl::StrCat("neighbours: ", e.neighbours.error));
  }
  out.set_encoder_state(e.encoder.state);
  return out;
}

std::vector<IndexSize> SimilarityIndex::Sizes() const {
  std::vector<IndexSize> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, e] : entries_) {
    auto add = [&](const char* kind, const Stage& stage,
                   const std::shared_ptr<const index::FeatureIndex>& index) {
      IndexSize& size = out.emplace_back();
      size.dictionary = id;
      size.kind = kind;
      size.state = stage.state;
      size.build_seconds = stage.seconds;
      if (index != nullptr) {
        size.vectors = index->size();
        size.memory_bytes = index->memory_bytes();
      }
    };
    add("decoder", e.decoder, e.decoder_index);
    add("encoder", e.encoder, e.encoder_index);
    add("neighbours", e.neighbours, nullptr);
    out.back().vectors = e.neighbours_done;
  }
  return out;
}

absl::Status SimilarityIndex::WaitUntilReady(const std::string& id, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = entries_.find(id);
    return it == entries_.end() || Settled(it->second.neighbours.state);
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&settled), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("index of dictionary '", id, "' not ready after ", absl::FormatDuration(timeout)));
  }
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("dictionary '", id, "' has no index"));
  }
  if (it->second.neighbours.state == v1::INDEX_STATE_FAILED) {
    return absl::InternalError(absl::StrCat("index of dictionary '", id, "' failed: ",
                                            it->second.decoder.error, it->second.neighbours.error));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const index::FeatureIndex>> SimilarityIndex::ReadyIndex(
    const std::string& id, index::DirectionKind kind) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the decoder index of dictionary '", id, "' is not built (UNSPECIFIED)"));
  }
  Entry& entry = it->second;
  if (kind == index::DirectionKind::kEncoder && entry.encoder.state == v1::INDEX_STATE_UNSPECIFIED) {
    entry.encoder.state = v1::INDEX_STATE_QUEUED;
    jobs_.push_back({id, entry.generation, kind});
  }
  const Stage& stage = kind == index::DirectionKind::kDecoder ? entry.decoder : entry.encoder;
  const auto& ready = kind == index::DirectionKind::kDecoder ? entry.decoder_index : entry.encoder_index;
  if (stage.state != v1::INDEX_STATE_READY || ready == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the ", index::DirectionKindName(kind), " index of dictionary '", id, "' is ",
        DescribeIndexState(stage.state, stage.progress, stage.error),
        "; retry when it is READY (GetDictionary shows the state)"));
  }
  return ready;
}

absl::StatusOr<v1::SearchSimilarResponse> SimilarityIndex::SearchSimilar(
    const v1::SearchSimilarRequest& r) {
  if (r.dictionary_id().empty()) {
    return absl::InvalidArgumentError("dictionary_id: empty; expected the dictionary to search");
  }
  SAEDICT_ASSIGN_OR_RETURN(std::shared_ptr<const engine::Encoder> source,
                           registry_->GetEncoder(r.dictionary_id()));
  const engine::Dictionary& dictionary = source->dictionary();
  index::DirectionKind kind;
  switch (r.directions()) {
    case v1::DIRECTION_KIND_DECODER:
      kind = index::DirectionKind::kDecoder;
      break;
    case v1::DIRECTION_KIND_ENCODER:
      kind = index::DirectionKind::kEncoder;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "directions: ", r.directions(), " is not a DirectionKind; expected DECODER or ENCODER"));
  }
  // The directions' length: d_in, or d_out for a transcoder's decoder rows.
  const int64_t d_in = index::DirectionDim(dictionary.config, kind);
  auto dim_name = [kind](const engine::DictionaryConfig& c) {
    return kind == index::DirectionKind::kDecoder && c.is_transcoder() ? "d_out" : "d_in";
  };
  const char* const name = dim_name(dictionary.config);
  if (r.top_n() < 0 || r.top_n() > kMaxTopN) {
    return absl::InvalidArgumentError(absl::StrCat("top_n: ", r.top_n(),
                                                   " is out of range; expected 0 (default ",
                                                   kDefaultTopN, ") or 1..", kMaxTopN));
  }
  index::SearchOptions search;
  search.top_n = r.top_n() == 0 ? kDefaultTopN : r.top_n();
  if (r.has_min_cosine()) {
    if (!std::isfinite(r.min_cosine()) || r.min_cosine() < -1 || r.min_cosine() > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("min_cosine: ", r.min_cosine(), " is not in [-1, 1]"));
    }
    search.min_cosine = r.min_cosine();
  }
  std::vector<double> query;
  int64_t query_feature = -1;
  switch (r.query_case()) {
    case v1::SearchSimilarRequest::kFeature: {
      absl::StatusOr<std::vector<double>> unit =
          index::UnitFeatureDirection(dictionary, kind, r.feature());
      if (!unit.ok()) {
        return absl::Status(unit.status().code(), absl::StrCat("dictionary '", r.dictionary_id(),
                                                               "' ", unit.status().message()));
      }
      query = *std::move(unit);
      query_feature = r.feature();
      break;
    }
    case v1::SearchSimilarRequest::kVector: {
      v1::Tensor matrix = r.vector();
      if (matrix.shape_size() == 1) {
        matrix.clear_shape();
        matrix.add_shape(1);
        matrix.add_shape(r.vector().shape(0));
      }
      if (matrix.shape_size() != 2 || matrix.shape(0) != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("vector: shape has ", r.vector().shape_size(), " dimensions; expected [",
                         name, "] or [1, ", name, "] with ", name, " = ", d_in));
      }
      SAEDICT_ASSIGN_OR_RETURN(wire::DenseRows rows, wire::DecodeMatrix(matrix, d_in, "vector"));
      SAEDICT_ASSIGN_OR_RETURN(query, index::UnitQuery(rows.values, d_in, "vector"));
      break;
    }
    default:
      return absl::InvalidArgumentError("query: empty; set feature or vector");
  }
  std::vector<std::string> targets(r.against().begin(), r.against().end());
  if (targets.empty()) targets.push_back(r.dictionary_id());
  if (targets.size() > static_cast<size_t>(kMaxAgainst)) {
    return absl::InvalidArgumentError(
        absl::StrCat("against: ", targets.size(), " dictionaries; at most ", kMaxAgainst));
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (targets[i] == targets[j]) {
        return absl::InvalidArgumentError(absl::StrCat("against[", i, "]: '", targets[i],
                                                       "' is listed twice (also against[", j, "])"));
      }
    }
    absl::StatusOr<std::shared_ptr<const engine::Encoder>> target = registry_->GetEncoder(targets[i]);
    if (!target.ok()) {
      return absl::Status(target.status().code(),
                          absl::StrCat("against[", i, "]: ", target.status().message()));
    }
    const engine::DictionaryConfig& other_config = (*target)->dictionary().config;
    const int64_t other = index::DirectionDim(other_config, kind);
    if (other != d_in) {
      return absl::InvalidArgumentError(absl::StrCat(
          "against[", i, "]: dictionary '", targets[i], "' has ", dim_name(other_config), " ",
          other, ", the query has ", d_in, "; directions must share their length (",
          index::DirectionKindName(kind), " directions: d_in, or d_out for a transcoder)"));
    }
  }
  v1::SearchSimilarResponse out;
  for (const std::string& target : targets) {
    SAEDICT_ASSIGN_OR_RETURN(std::shared_ptr<const index::FeatureIndex> idx,
                             ReadyIndex(target, kind));
    const int64_t exclude = target == r.dictionary_id() ? query_feature : -1;
    SAEDICT_ASSIGN_OR_RETURN(std::vector<std::vector<index::Hit>> hits,
                             idx->Search({query}, search, {exclude}));
    v1::SimilarResult* result = out.add_results();
    result->set_dictionary_id(target);
    result->set_exact(idx->exact());
    result->set_index_factory(idx->factory());
    for (const index::Hit& h : hits[0]) {
      v1::Neighbour* n = result->add_neighbours();
      n->set_dictionary_id(target);
      n->set_feature(h.feature);
      n->set_cosine(h.cosine);
    }
  }
  return out;
}

absl::StatusOr<std::string> SimilarityIndex::NeighboursReadyFor(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.neighbours.state != v1::INDEX_STATE_READY) {
    const Stage stage = it == entries_.end() ? Stage{} : it->second.neighbours;
    return absl::FailedPreconditionError(
        absl::StrCat("the neighbours of dictionary '", id, "' are ",
                     DescribeIndexState(stage.state, stage.progress, stage.error),
                     "; retry when they are READY (GetDictionary shows the state)"));
  }
  return it->second.weights_sha256;
}

absl::StatusOr<records::v1::NeighboursRecord> SimilarityIndex::StoredNeighbours(
    const std::string& id, uint32_t feature) const {
  SAEDICT_ASSIGN_OR_RETURN(std::shared_ptr<const engine::Encoder> encoder,
                           registry_->GetEncoder(id));
  if (feature >= encoder->dictionary().config.d_sae) {
    return absl::NotFoundError(absl::StrCat("feature: ", feature, " is not below d_sae = ",
                                            encoder->dictionary().config.d_sae,
                                            " of dictionary '", id, "'"));
  }
  SAEDICT_ASSIGN_OR_RETURN(std::string sha, NeighboursReadyFor(id));
  SAEDICT_ASSIGN_OR_RETURN(std::optional<records::v1::NeighboursRecord> record,
                           store_->GetNeighbours(id, feature));
  if (!record || record->weights_sha256() != sha) {
    SAEDICT_ASSIGN_OR_RETURN(std::optional<records::v1::NeighboursManifest> manifest,
                             store_->GetNeighboursManifest(id));
    if (!manifest || manifest->weights_sha256() != sha) {  // dropped by a replace just now
      return absl::FailedPreconditionError(absl::StrCat(
          "the neighbours of dictionary '", id, "' are being recomputed; retry"));
    }
    return absl::InternalError(absl::StrCat("neighbours of dictionary '", id, "' feature ", feature,
                                            " are missing from the store although marked READY"));
  }
  return *std::move(record);
}

}  // namespace saedict::service
