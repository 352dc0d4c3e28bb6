// Conversions between the saedict.v1 wire messages and the domain types of
// engine/, formats/ and storage/: enums, encode options, edits and the
// dictionary info derived from a loaded dictionary. The one place where a
// wire enum is mapped; every mapping from the wire validates the value and
// answers INVALID_ARGUMENT naming the field, the value and what was expected.
//
// Thread safety: pure functions.
#ifndef SAEDICT_SERVICE_PROTO_CONVERT_H_
#define SAEDICT_SERVICE_PROTO_CONVERT_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/dictionary.h"
#include "engine/encoder.h"
#include "formats/dictionary_loader.h"
#include "saedict/records/v1/records.pb.h"
#include "saedict/v1/saedict.pb.h"
#include "storage/corpus_store.h"

namespace saedict::service {

v1::Architecture ToProto(engine::Architecture a);
v1::Normalization ToProto(engine::Normalization n);
v1::SourceFormat ToProto(formats::SourceFormat f);
v1::DType ToProto(formats::DType d);
v1::ComputeMode ToProto(engine::ComputeMode m);
v1::ValuePrecision ToProto(storage::ValuePrecision p);

// Only the loadable formats (AUTO, SAELENS, SPARSIFY, GEMMA_SCOPE, GEMMA_SCOPE_2).
absl::StatusOr<formats::SourceFormat> FromProto(v1::SourceFormat f);
absl::StatusOr<engine::ComputeMode> ToEngine(v1::ComputeMode m, absl::string_view field);
absl::StatusOr<storage::ValuePrecision> ToStorage(v1::ValuePrecision p);
// top_k must be in [0, d_sae]; fields are named "options.<name>".
// An unset compute_mode becomes the encoder's default_compute_mode().
absl::StatusOr<engine::EncodeOptions> ToEngine(const v1::EncodeOptions& o,
                                               const engine::Encoder& encoder);
// `index` names the edit in messages ("edits[index].op").
absl::StatusOr<engine::FeatureEdit> ToEngine(const v1::FeatureEdit& e, int index);

// The stored dictionary metadata (saedict.records.v1) <-> the API's info:
// the same fields; enums are stored as their numbers.
records::v1::DictionaryMetadata ToRecord(const v1::DictionaryInfo& info);
v1::DictionaryInfo FromRecord(const records::v1::DictionaryMetadata& record);

// The info fields that derive from the dictionary's config and weights
// (shapes, architecture, normalization, weight bytes); id, source and
// timestamps are the caller's.
v1::DictionaryInfo InfoFromDictionary(const engine::Dictionary& d);

}  // namespace saedict::service

#endif  // SAEDICT_SERVICE_PROTO_CONVERT_H_
