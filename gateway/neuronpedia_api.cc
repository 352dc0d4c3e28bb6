#include "gateway/neuronpedia_api.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "util/status_macros.h"
#include "wire/wire_codec.h"

namespace saedict::gateway {
namespace {

namespace pb = google::protobuf;

// ---- small JSON builders over google.protobuf.Value -----------------------

pb::Value Str(absl::string_view s) {
  pb::Value v;
  v.set_string_value(std::string(s));
  return v;
}
pb::Value Num(double d) {
  pb::Value v;
  if (std::isfinite(d)) {
    v.set_number_value(d);
  } else {
    v.set_null_value(pb::NULL_VALUE);
  }
  return v;
}
pb::Value Null() {
  pb::Value v;
  v.set_null_value(pb::NULL_VALUE);
  return v;
}
template <typename T, typename F>
pb::Value List(const T& items, F to_value) {
  pb::Value v;
  pb::ListValue* list = v.mutable_list_value();
  for (const auto& item : items) *list->add_values() = to_value(item);
  return v;
}
pb::Value& Field(pb::Struct& object, const std::string& name) {
  return (*object.mutable_fields())[name];
}
std::string Print(const pb::Struct& object) {
  std::string out;
  (void)pb::util::MessageToJsonString(object, &out);
  return out;
}

// ---- request bodies -------------------------------------------------------

absl::StatusOr<pb::Struct> ParseBody(absl::string_view body) {
  pb::Struct object;
  if (body.empty()) return object;
  auto s = pb::util::JsonStringToMessage(pb::StringPiece(body.data(), body.size()), &object);
  if (!s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request body: not a JSON object: ", std::string(s.message().data(), s.message().size())));
  }
  return object;
}

const pb::Value* Find(const pb::Struct& object, const std::string& name) {
  auto it = object.fields().find(name);
  if (it == object.fields().end() || it->second.kind_case() == pb::Value::kNullValue) {
    return nullptr;
  }
  return &it->second;
}

absl::StatusOr<std::string> GetString(const pb::Struct& object, const std::string& name,
                                      bool required) {
  const pb::Value* v = Find(object, name);
  if (v == nullptr) {
    if (!required) return std::string();
    return absl::InvalidArgumentError(absl::StrCat(name, ": missing; expected a string"));
  }
  if (v->kind_case() != pb::Value::kStringValue) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": expected a string"));
  }
  return v->string_value();
}

absl::StatusOr<std::vector<std::string>> GetStrings(const pb::Struct& object,
                                                    const std::string& name) {
  std::vector<std::string> out;
  const pb::Value* v = Find(object, name);
  if (v == nullptr) return out;
  if (v->kind_case() != pb::Value::kListValue) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": expected a list of strings"));
  }
  for (int i = 0; i < v->list_value().values_size(); ++i) {
    const pb::Value& item = v->list_value().values(i);
    if (item.kind_case() != pb::Value::kStringValue) {
      return absl::InvalidArgumentError(absl::StrCat(name, "[", i, "]: expected a string"));
    }
    out.push_back(item.string_value());
  }
  return out;
}

// A whole number in [lo, hi]; `fallback` when absent.
absl::StatusOr<int64_t> GetInt(const pb::Struct& object, const std::string& name, int64_t fallback,
                               int64_t lo, int64_t hi) {
  const pb::Value* v = Find(object, name);
  if (v == nullptr) return fallback;
  double d = 0;
  if (v->kind_case() == pb::Value::kNumberValue) {
    d = v->number_value();
  } else if (v->kind_case() != pb::Value::kStringValue ||
             !absl::SimpleAtod(v->string_value(), &d)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": expected a whole number"));
  }
  if (d != std::floor(d) || d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": ", d, "; expected a whole number in [", lo, ", ", hi, "]"));
  }
  return static_cast<int64_t>(d);
}

// ---- dictionaries by {modelId, layer} -------------------------------------

struct Source {
  v1::DictionaryInfo info;
  std::string layer;  // how Neuronpedia URLs name it: the alias, else the id
};

std::string LayerOf(const v1::DictionaryInfo& info) {
  return info.alias().empty() ? info.id() : info.alias();
}

absl::StatusOr<std::vector<v1::DictionaryInfo>> ModelDictionaries(service::ServiceCore& core,
                                                                  absl::string_view model_id) {
  SAEDICT_ASSIGN_OR_RETURN(v1::ListDictionariesResponse all,
                           core.ListDictionaries(v1::ListDictionariesRequest()));
  std::vector<v1::DictionaryInfo> out;
  std::set<std::string> models;
  for (const v1::DictionaryInfo& info : all.dictionaries()) {
    models.insert(info.model_name());
    if (info.model_name() == model_id) out.push_back(info);
  }
  if (out.empty()) {
    return absl::NotFoundError(
        absl::StrCat("modelId: no dictionary of model '", model_id,
                     "'; the models here are: ", absl::StrJoin(models, ", ")));
  }
  return out;
}

absl::StatusOr<Source> Resolve(service::ServiceCore& core, absl::string_view model_id,
                               absl::string_view layer) {
  SAEDICT_ASSIGN_OR_RETURN(std::vector<v1::DictionaryInfo> model,
                           ModelDictionaries(core, model_id));
  for (const auto& info : model) {  // an alias wins over an id
    if (!info.alias().empty() && info.alias() == layer) return Source{info, LayerOf(info)};
  }
  std::vector<std::string> layers;
  for (const auto& info : model) {
    if (info.id() == layer) return Source{info, LayerOf(info)};
    layers.push_back(LayerOf(info));
  }
  return absl::NotFoundError(absl::StrCat("layer: model '", model_id,
                                          "' has no dictionary with alias or id '", layer,
                                          "'; its layers are: ", absl::StrJoin(layers, ", ")));
}

pb::Value ExplanationJson(const v1::Explanation& e, const std::string& model_id,
                          const std::string& layer) {
  pb::Value v;
  pb::Struct& o = *v.mutable_struct_value();
  Field(o, "id") = Str(e.id());
  Field(o, "modelId") = Str(model_id);
  Field(o, "layer") = Str(layer);
  Field(o, "index") = Str(absl::StrCat(e.feature()));
  Field(o, "description") = Str(e.text());
  Field(o, "typeName") = Str(e.source());
  Field(o, "explanationModelName") = Str(e.explainer_model());
  Field(o, "scoreV1") = e.has_score() ? Num(e.score()) : Null();
  Field(o, "authorId") = Str(e.author());
  return v;
}

// One Neuronpedia activation record from a saedict example.
pb::Value ActivationJson(const v1::Example& ex, double bin_min, double bin_max) {
  pb::Value v;
  pb::Struct& o = *v.mutable_struct_value();
  std::vector<std::string> tokens;
  std::vector<double> values;
  double min_value = 0;
  for (const v1::ContextToken& t : ex.context()) {
    tokens.push_back(t.token().empty() ? absl::StrCat("<", t.token_id(), ">") : t.token());
    values.push_back(t.value());
    min_value = values.size() == 1 ? t.value() : std::min<double>(min_value, t.value());
  }
  Field(o, "tokens") = List(tokens, [](const std::string& s) { return Str(s); });
  Field(o, "values") = List(values, [](double d) { return Num(d); });
  Field(o, "maxValue") = Num(ex.value());
  Field(o, "maxValueTokenIndex") = Num(ex.peak_index());
  Field(o, "minValue") = Num(min_value);
  Field(o, "binMin") = Num(bin_min);
  Field(o, "binMax") = Num(bin_max);
  Field(o, "dataIndex") = Str(absl::StrCat(ex.doc_id()));
  Field(o, "dataSource") = Str(ex.corpus());
  return v;
}

}  // namespace

absl::StatusOr<std::string> NeuronpediaFeature(service::ServiceCore& core,
                                               absl::string_view model_id, absl::string_view layer,
                                               absl::string_view index) {
  uint32_t feature = 0;
  if (!absl::SimpleAtoi(index, &feature)) {
    return absl::InvalidArgumentError(
        absl::StrCat("index: '", index, "' is not a feature number (a whole number >= 0)"));
  }
  SAEDICT_ASSIGN_OR_RETURN(Source source, Resolve(core, model_id, layer));
  const v1::DictionaryInfo& info = source.info;
  if (feature >= info.d_sae()) {
    return absl::OutOfRangeError(absl::StrCat("index: ", feature, " is not a feature of ",
                                              info.id(), " (d_sae ", info.d_sae(), ")"));
  }
  v1::GetFeatureRequest get;
  get.set_dictionary_id(info.id());
  get.set_feature(feature);
  get.set_top_n(20);
  get.set_context_window(24);
  get.set_neighbours(25);
  get.set_skip_family(true);
  SAEDICT_ASSIGN_OR_RETURN(v1::GetFeatureResponse f, core.GetFeature(get));
  v1::TopActivationsRequest quantiles;
  quantiles.set_dictionary_id(info.id());
  quantiles.set_feature(feature);
  quantiles.set_n(1);
  quantiles.set_context_window(24);
  quantiles.set_quantile_bins(5);
  quantiles.set_per_bin(3);
  SAEDICT_ASSIGN_OR_RETURN(v1::TopActivationsResponse bins, core.TopActivations(quantiles));

  pb::Struct o;
  Field(o, "modelId") = Str(model_id);
  Field(o, "layer") = Str(source.layer);
  Field(o, "index") = Str(absl::StrCat(feature));
  Field(o, "hookName") = Str(info.hook_name());
  Field(o, "maxActApprox") = Num(f.stats().max());
  Field(o, "frac_nonzero") = Num(f.stats().density());
  Field(o, "freq_hist_data_bar_heights") =
      List(f.stats().histogram(), [](const v1::HistogramBin& b) { return Num(b.count()); });
  Field(o, "freq_hist_data_bar_values") =
      List(f.stats().histogram(), [](const v1::HistogramBin& b) {
        return Num((static_cast<double>(b.lower()) + b.upper()) / 2);
      });
  // Neuronpedia's list starts with the feature itself (cosine 1).
  std::vector<std::pair<uint32_t, double>> cos = {{feature, 1.0}};
  for (const v1::Neighbour& n : f.neighbours()) cos.emplace_back(n.feature(), n.cosine());
  Field(o, "topkCosSimIndices") = List(cos, [](const auto& p) { return Num(p.first); });
  Field(o, "topkCosSimValues") = List(cos, [](const auto& p) { return Num(p.second); });
  const std::string model(model_id);
  Field(o, "explanations") = List(f.explanations(), [&](const v1::Explanation& e) {
    return ExplanationJson(e, model, source.layer);
  });
  // Top examples (bin: their own value range), then the quantile samples
  // (bin: the quantile's value range), each example once, by maxValue
  // descending as Neuronpedia sorts them.
  struct Item {
    const v1::Example* example;
    double bin_min, bin_max;
  };
  std::vector<Item> items;
  std::set<std::tuple<std::string, uint64_t, int64_t>> seen;
  const double top_min =
      f.top_examples().empty() ? 0 : f.top_examples(f.top_examples_size() - 1).value();
  for (const v1::Example& ex : f.top_examples()) {
    if (seen.insert({ex.corpus(), ex.doc_id(), ex.position()}).second) {
      items.push_back({&ex, top_min, f.stats().max()});
    }
  }
  for (const v1::QuantileBin& bin : bins.bins()) {
    for (const v1::Example& ex : bin.examples()) {
      if (seen.insert({ex.corpus(), ex.doc_id(), ex.position()}).second) {
        items.push_back({&ex, bin.value_lower(), bin.value_upper()});
      }
    }
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return a.example->value() > b.example->value();
  });
  Field(o, "activations") = List(
      items, [](const Item& it) { return ActivationJson(*it.example, it.bin_min, it.bin_max); });
  return Print(o);
}

absl::StatusOr<std::string> NeuronpediaExplanationSearch(service::ServiceCore& core,
                                                         absl::string_view body) {
  SAEDICT_ASSIGN_OR_RETURN(pb::Struct request, ParseBody(body));
  SAEDICT_ASSIGN_OR_RETURN(std::string model_id, GetString(request, "modelId", true));
  SAEDICT_ASSIGN_OR_RETURN(std::vector<std::string> layers, GetStrings(request, "layers"));
  SAEDICT_ASSIGN_OR_RETURN(std::string query, GetString(request, "query", true));
  constexpr int64_t kMaxHits = 1000;  // SearchExplanations' top_n cap
  SAEDICT_ASSIGN_OR_RETURN(int64_t offset,
                           GetInt(request, "offset", 0, 0, kMaxHits - kNeuronpediaSearchPage));
  v1::SearchExplanationsRequest search;
  search.set_query(query);
  search.set_top_n(static_cast<int32_t>(offset + kNeuronpediaSearchPage));
  std::map<std::string, std::string> layer_of;  // dictionary id -> layer name
  if (layers.empty()) {
    SAEDICT_ASSIGN_OR_RETURN(std::vector<v1::DictionaryInfo> model,
                             ModelDictionaries(core, model_id));
    for (const auto& info : model) layer_of[info.id()] = LayerOf(info);
  } else {
    for (const std::string& layer : layers) {
      SAEDICT_ASSIGN_OR_RETURN(Source source, Resolve(core, model_id, layer));
      layer_of[source.info.id()] = source.layer;
    }
  }
  for (const auto& [id, layer] : layer_of) search.add_dictionary_ids(id);
  SAEDICT_ASSIGN_OR_RETURN(v1::SearchExplanationsResponse found, core.SearchExplanations(search));
  pb::Struct o;
  pb::Struct& echo = *Field(o, "request").mutable_struct_value();
  Field(echo, "modelId") = Str(model_id);
  Field(echo, "layers") = List(layers, [](const std::string& s) { return Str(s); });
  Field(echo, "query") = Str(query);
  Field(echo, "offset") = Num(static_cast<double>(offset));
  pb::ListValue& results = *Field(o, "results").mutable_list_value();
  for (int i = static_cast<int>(offset); i < found.hits_size(); ++i) {
    const v1::ExplanationHit& hit = found.hits(i);
    pb::Value item =
        ExplanationJson(hit.explanation(), model_id, layer_of[hit.explanation().dictionary_id()]);
    Field(*item.mutable_struct_value(), "cosine_similarity") = Num(hit.score());  // BM25 here
    Field(*item.mutable_struct_value(), "snippet") = Str(hit.snippet());
    *results.add_values() = std::move(item);
  }
  const int64_t next = offset + results.values_size();
  const int64_t reachable = std::min<int64_t>(found.matching_explanations(), kMaxHits);
  Field(o, "resultsCount") = Num(static_cast<double>(found.matching_explanations()));
  Field(o, "hasMore") = [&] {
    pb::Value v;
    v.set_bool_value(next < reachable);
    return v;
  }();
  Field(o, "nextOffset") = Num(static_cast<double>(next));
  return Print(o);
}

absl::StatusOr<std::string> NeuronpediaSearchAll(service::ServiceCore& core, absl::string_view body,
                                                 absl::Time deadline) {
  SAEDICT_ASSIGN_OR_RETURN(pb::Struct request, ParseBody(body));
  SAEDICT_ASSIGN_OR_RETURN(std::string model_id, GetString(request, "modelId", true));
  if (Find(request, "text") != nullptr) {
    return absl::InvalidArgumentError(
        "text: saedict has no language model, so it cannot run text; send the model's "
        "activations instead as `activations`: [[d_in numbers] per token] (and `tokens` for "
        "display)");
  }
  SAEDICT_ASSIGN_OR_RETURN(std::vector<std::string> layers, GetStrings(request, "selectedLayers"));
  SAEDICT_ASSIGN_OR_RETURN(std::vector<std::string> tokens, GetStrings(request, "tokens"));
  SAEDICT_ASSIGN_OR_RETURN(int64_t num_results, GetInt(request, "numResults", 50, 1, 1000));
  bool ignore_bos = false;
  if (const pb::Value* v = Find(request, "ignoreBos")) {
    if (v->kind_case() != pb::Value::kBoolValue) {
      return absl::InvalidArgumentError("ignoreBos: expected true or false");
    }
    ignore_bos = v->bool_value();
  }
  const pb::Value* rows = Find(request, "activations");
  if (rows == nullptr || rows->kind_case() != pb::Value::kListValue ||
      rows->list_value().values_size() == 0) {
    return absl::InvalidArgumentError(
        "activations: missing or empty; expected [[d_in numbers] per token]");
  }
  const int64_t n = rows->list_value().values_size();
  if (!tokens.empty() && static_cast<int64_t>(tokens.size()) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokens: ", tokens.size(), " strings for ", n, " activation rows"));
  }
  std::vector<float> flat;
  int64_t d_in = -1;
  for (int64_t r = 0; r < n; ++r) {
    const pb::Value& row = rows->list_value().values(static_cast<int>(r));
    if (row.kind_case() != pb::Value::kListValue) {
      return absl::InvalidArgumentError(absl::StrCat("activations[", r, "]: expected a list"));
    }
    if (d_in < 0) d_in = row.list_value().values_size();
    if (row.list_value().values_size() != d_in || d_in == 0) {
      return absl::InvalidArgumentError(absl::StrCat("activations[", r,
                                                     "]: ", row.list_value().values_size(),
                                                     " numbers; every row needs ", d_in));
    }
    for (const pb::Value& x : row.list_value().values()) {
      if (x.kind_case() != pb::Value::kNumberValue) {
        return absl::InvalidArgumentError(absl::StrCat("activations[", r, "]: not a number"));
      }
      flat.push_back(static_cast<float>(x.number_value()));
    }
  }
  std::vector<Source> sources;
  if (layers.empty()) {
    SAEDICT_ASSIGN_OR_RETURN(std::vector<v1::DictionaryInfo> model,
                             ModelDictionaries(core, model_id));
    for (const auto& info : model) {
      if (info.d_in() == d_in) sources.push_back({info, LayerOf(info)});
    }
    if (sources.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("activations: rows of ", d_in,
                                                     " numbers, but no dictionary of model '",
                                                     model_id, "' has that d_in"));
    }
  } else {
    for (const std::string& layer : layers) {
      SAEDICT_ASSIGN_OR_RETURN(Source s, Resolve(core, model_id, layer));
      sources.push_back(std::move(s));
    }
  }
  struct Hit {
    const Source* source;
    uint32_t feature;
    std::vector<float> values;
    float max = 0;
    int64_t max_index = 0;
  };
  std::vector<Hit> hits;
  const int64_t first_row = ignore_bos && n > 1 ? 1 : 0;
  for (const Source& source : sources) {
    v1::EncodeRequest encode;
    encode.set_dictionary_id(source.info.id());
    *encode.mutable_activations() = wire::EncodeTensor(flat, {n, d_in});
    absl::StatusOr<v1::EncodeResponse> response = core.Encode(encode, deadline);
    if (!response.ok()) {
      return absl::Status(response.status().code(),
                          absl::StrCat("layer ", source.layer, ": ", response.status().message()));
    }
    SAEDICT_ASSIGN_OR_RETURN(SparseCodes codes,
                             wire::DecodeCodes(response->codes(), source.info.d_sae()));
    std::map<uint32_t, Hit> by_feature;
    for (int64_t r = 0; r < n; ++r) {
      for (uint64_t j = codes.row_offsets[r]; j < codes.row_offsets[r + 1]; ++j) {
        Hit& hit = by_feature[codes.indices[j]];
        if (hit.values.empty()) {
          hit.source = &source;
          hit.feature = codes.indices[j];
          hit.values.assign(n, 0.0f);
        }
        hit.values[r] = codes.values[j];
      }
    }
    for (auto& [feature, hit] : by_feature) {
      bool any = false;
      for (int64_t r = first_row; r < n; ++r) {
        if (!any || hit.values[r] > hit.max) {
          hit.max = hit.values[r];
          hit.max_index = r;
          any = true;
        }
      }
      if (hit.max > 0) hits.push_back(std::move(hit));
    }
  }
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
    if (a.max != b.max) return a.max > b.max;
    if (a.source->info.id() != b.source->info.id())
      return a.source->info.id() < b.source->info.id();
    return a.feature < b.feature;
  });
  if (static_cast<int64_t>(hits.size()) > num_results) hits.resize(num_results);
  pb::Struct o;
  Field(o, "tokens") = List(tokens, [](const std::string& s) { return Str(s); });
  pb::ListValue& result = *Field(o, "result").mutable_list_value();
  for (const Hit& hit : hits) {
    pb::Struct& item = *result.add_values()->mutable_struct_value();
    Field(item, "modelId") = Str(model_id);
    Field(item, "layer") = Str(hit.source->layer);
    Field(item, "index") = Str(absl::StrCat(hit.feature));
    Field(item, "values") = List(hit.values, [](float f) { return Num(f); });
    Field(item, "maxValue") = Num(hit.max);
    Field(item, "maxValueIndex") = Num(static_cast<double>(hit.max_index));
  }
  return Print(o);
}

}  // namespace saedict::gateway
