// `saedict similar DICT IDX` / `saedict similar DICT --vector FILE.npy`: the
// features whose decoder (or, with --encoder, encoder) directions are nearest
// by cosine to feature IDX of DICT or to a direction read from a .npy, in
// DICT or in the dictionaries of --against (SearchSimilar).
// Thread safety: see command.h.
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "formats/codecs/npy.h"
#include "util/status_macros.h"
#include "wire/tensor_wire.h"

namespace saedict::client {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// The direction in a .npy of shape [d] or [1, d], f32 / f16 as they are and
// f64 as f32; every problem is an InputError naming --vector and the file.
absl::StatusOr<v1::Tensor> ReadVectorNpy(const std::string& file, int64_t* d) {
  absl::StatusOr<formats::NpyArray> array = formats::ReadNpyFile(file);
  if (!array.ok()) {
    return InputError(
        absl::Status(array.status().code(), absl::StrCat("--vector: ", array.status().message())));
  }
  const std::vector<int64_t>& shape = array->shape;
  if (shape.size() == 1) {
    *d = shape[0];
  } else if (shape.size() == 2 && shape[0] == 1) {
    *d = shape[1];
  } else {
    return InputError(absl::StrCat("--vector ", file, " has shape ", ShapeString(shape),
                                   "; want one direction, shape [d_in] or [1, d_in]"));
  }
  if (*d == 0) return InputError(absl::StrCat("--vector ", file, " is empty"));
  const int64_t wire_shape[1] = {*d};
  switch (array->dtype) {
    case formats::NpyDType::kF32:
      return wire::RawToTensor(array->data, wire_shape, v1::DTYPE_F32);
    case formats::NpyDType::kF16:
      return wire::RawToTensor(array->data, wire_shape, v1::DTYPE_F16);
    case formats::NpyDType::kF64: {
      SAEDICT_ASSIGN_OR_RETURN(std::vector<float> f,
                               AsInputError(formats::NpyToFloat32(*array, file)));
      return wire::FloatsToTensor(f, wire_shape, v1::DTYPE_F32);
    }
    default:
      return InputError(absl::StrCat("--vector ", file, " has dtype ",
                                     formats::NpyDescr(array->dtype),
                                     "; want float32, float16 or float64"));
  }
}

// One table per searched dictionary.
void WriteText(std::ostream& out, const v1::SearchSimilarResponse& resp, const std::string& query,
               absl::string_view kind, int64_t top, const v1::SearchSimilarRequest& req) {
  out << kind << " directions nearest to " << query << " (top " << top;
  if (req.has_min_cosine()) out << ", cosine >= " << req.min_cosine();
  out << ")\n";
  for (const v1::SimilarResult& r : resp.results()) {
    out << "\n"
        << r.dictionary_id() << ": " << r.neighbours_size() << " neighbour"
        << (r.neighbours_size() == 1 ? "" : "s") << ", "
        << (r.exact() ? "exact search" : "approximate search") << " (index " << r.index_factory()
        << ")\n";
    if (r.neighbours_size() == 0) {
      out << "  no match" << (req.has_min_cosine() ? " at or above --min_cosine" : "") << "\n";
      continue;
    }
    std::vector<std::vector<std::string>> rows;
    int rank = 0;
    for (const v1::Neighbour& n : r.neighbours()) {
      rows.push_back(
          {absl::StrCat(++rank), absl::StrCat(n.feature()), absl::StrFormat("%.4f", n.cosine())});
    }
    WriteTable(out, {"RANK", "FEATURE", "COSINE"}, rows);
  }
}

absl::Status RunSimilar(CommandEnv& env) {
  const ParsedArgs& args = env.args();
  const std::string& dictionary = env.positional(0);
  const bool has_idx = env.num_positional() > 1;
  const std::string& vector_file = args.GetString("vector");
  const bool has_vector = args.IsSet("vector");
  if (has_idx == has_vector) {
    return InputError(has_idx ? "give IDX or --vector FILE.npy, not both"
                              : "give a feature IDX or --vector FILE.npy to search with");
  }
  if (has_vector && vector_file.empty()) return InputError("--vector is empty; want a .npy file");
  const int64_t top = args.GetInt("top");
  SAEDICT_RETURN_IF_ERROR(CheckRange("--top", top, 1, 1000));
  const bool encoder = args.GetBool("encoder");
  const absl::string_view kind = encoder ? "encoder" : "decoder";

  v1::SearchSimilarRequest req;
  req.set_dictionary_id(dictionary);
  req.set_top_n(static_cast<int32_t>(top));
  req.set_directions(encoder ? v1::DIRECTION_KIND_ENCODER : v1::DIRECTION_KIND_DECODER);
  if (args.IsSet("min_cosine")) {
    const double min_cosine = args.GetDouble("min_cosine");
    SAEDICT_RETURN_IF_ERROR(CheckRange("--min_cosine", min_cosine, -1.0, 1.0));
    req.set_min_cosine(min_cosine);
  }
  if (args.IsSet("against")) {
    SAEDICT_ASSIGN_OR_RETURN(std::vector<std::string> against,
                             ParseIdList("--against", args.GetString("against")));
    for (std::string& id : against) req.add_against(std::move(id));
  }

  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  std::string query;
  if (has_idx) {
    SAEDICT_ASSIGN_OR_RETURN(const int64_t feature,
                             ParseIntArg("IDX", env.positional(1), 0, UINT32_MAX));
    req.set_feature(static_cast<uint32_t>(feature));
    query = absl::StrCat("feature ", feature, " of ", dictionary);
  } else {
    int64_t d = 0;
    SAEDICT_ASSIGN_OR_RETURN(*req.mutable_vector(), ReadVectorNpy(vector_file, &d));
    // The dictionary's d_in, so that a wrong-sized vector is named as such.
    v1::GetDictionaryRequest get;
    get.set_id(dictionary);
    SAEDICT_ASSIGN_OR_RETURN(v1::GetDictionaryResponse info, client->GetDictionary(get));
    if (d != info.dictionary().d_in()) {
      return InputError(absl::StrCat("--vector ", vector_file, " has ", d, " values; dictionary '",
                                     dictionary, "' has d_in ", info.dictionary().d_in()));
    }
    query = absl::StrCat("the vector in ", vector_file);
  }

  SAEDICT_ASSIGN_OR_RETURN(
      const v1::SearchSimilarResponse resp,
      (RetryWhileNotReady<v1::SearchSimilarResponse>(
          WaitFlagValue(args), [&] { return client->SearchSimilar(req); },
          [&] {  // stop waiting when the index of DICT failed to build
            const std::optional<v1::IndexStatus> s = IndexStatusOf(*client, dictionary);
            return !s || (encoder ? s->encoder_state() : s->state()) == v1::INDEX_STATE_FAILED;
          })));

  if (env.global().json) {
    env.out() << MessageToJson(resp) << "\n";
  } else {
    WriteText(env.out(), resp, query, kind, top, req);
  }
  return absl::OkStatus();
}

}  // namespace

const Command& SimilarCommand() {
  static const Command* const kCommand = new Command{
      .name = "similar",
      .positional = {"DICT", "IDX"},
      .optional_positional = 1,
      .summary = "find the features whose directions are nearest to a feature or a vector",
      .details =
          "Give either a feature IDX of DICT (its decoder row; with --encoder its encoder\n"
          "column) or --vector FILE.npy instead of IDX: a direction of shape [d_in] or\n"
          "[1, d_in] (f32, f16 or f64), d_in that of DICT. Cosine similarity of the raw\n"
          "directions, computed in float64; a feature query never returns itself.\n"
          "DICT is searched, or with --against D2,D3 those dictionaries instead (list\n"
          "DICT too to include it); they must share DICT's d_in. One table per\n"
          "searched dictionary (RANK, FEATURE, COSINE), saying whether the search was\n"
          "exact and which FAISS index answered. The index is built in the background\n"
          "after a load ('saedict info DICT' shows its state; the encoder index on the\n"
          "first --encoder search): until it is ready the server answers\n"
          "FAILED_PRECONDITION, and --wait retries that long. --json prints the\n"
          "SearchSimilarResponse as JSON.",
      .flags = {ValueFlag("vector", FlagKind::kString, "", "FILE.npy",
                          "search with this direction instead of a feature IDX"),
                ValueFlag("against", FlagKind::kString, "", "D2,D3",
                          "search these dictionaries instead of DICT (comma-separated)"),
                ValueFlag("top", FlagKind::kInt, "10", "N", "neighbours per dictionary (1..1000)"),
                ValueFlag("min_cosine", FlagKind::kDouble, "", "X",
                          "leave out matches with cosine below X (-1..1)"),
                BoolFlag("encoder", "compare encoder directions instead of decoder ones"),
                WaitFlag()},
      .run = &RunSimilar,
  };
  return *kCommand;
}

}  // namespace saedict::client
