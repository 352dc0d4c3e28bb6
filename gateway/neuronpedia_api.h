// Neuronpedia-compatible read endpoints, so a script written against
// Neuronpedia's public API can point at a saedict server:
//   GET  /api/feature/{modelId}/{layer}/{index}   Feature(...)
//   POST /api/explanation/search                   ExplanationSearch(body)
//   POST /api/search-all                           SearchAll(body)
// {modelId, layer} names a dictionary: modelId is its model_name, layer
// its alias, or its id. Field by field mapping (and the Neuronpedia fields
// saedict does not hold) is in the README, "Neuronpedia-compatible API".
// saedict has no language model: search-all takes activation rows
// (`activations`: [[d_in floats] per token]) where Neuronpedia takes text.
//
// Answers are JSON text; errors are the core's codes (NOT_FOUND for an
// unknown model/layer, INVALID_ARGUMENT naming the field).
//
// Thread safety: the functions may run on any number of threads at once.
#ifndef SAEDICT_GATEWAY_NEURONPEDIA_API_H_
#define SAEDICT_GATEWAY_NEURONPEDIA_API_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/service_core.h"

namespace saedict::gateway {

// Explanation search answers pages of this many results.
inline constexpr int kNeuronpediaSearchPage = 20;

absl::StatusOr<std::string> NeuronpediaFeature(service::ServiceCore& core,
                                               absl::string_view model_id, absl::string_view layer,
                                               absl::string_view index);
absl::StatusOr<std::string> NeuronpediaExplanationSearch(service::ServiceCore& core,
                                                         absl::string_view body);
absl::StatusOr<std::string> NeuronpediaSearchAll(service::ServiceCore& core, absl::string_view body,
                                                 absl::Time deadline);

}  // namespace saedict::gateway

#endif  // SAEDICT_GATEWAY_NEURONPEDIA_API_H_
