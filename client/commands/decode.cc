// `saedict decode ID CODES.npz OUTPUT.npy`: sparse codes (as written by
// `saedict encode`) → dense activations [n, d_in] float32. Large inputs are
// decoded in chunks of --batch_rows rows. Thread safety: see command.h.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands/array_files.h"
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

// Without --batch_rows, a chunk's reply stays under about this many bytes.
constexpr int64_t kAutoChunkBytes = int64_t{3} << 20;

absl::Status RunDecode(CommandEnv& env) {
  const std::string& id = env.positional(0);
  const std::string& output = env.positional(2);
  int64_t batch_rows = env.args().GetInt("batch_rows");
  if (batch_rows < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--batch_rows must be >= 0, got ", batch_rows));
  }
  SAEDICT_ASSIGN_OR_RETURN(wire::CsrCodes codes, ReadCodesNpz(env.positional(1)));
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());

  v1::GetDictionaryRequest get;
  get.set_id(id);
  SAEDICT_ASSIGN_OR_RETURN(v1::GetDictionaryResponse info, client->GetDictionary(get));
  // A decoded row has d_in values, or d_out for a transcoder (another hook).
  const int64_t d_in =
      info.dictionary().d_out() > 0 ? info.dictionary().d_out() : info.dictionary().d_in();
  const char* width_name = info.dictionary().d_out() > 0 ? "d_out" : "d_in";
  if (codes.num_features != info.dictionary().d_sae()) {
    return absl::InvalidArgumentError(absl::StrCat(env.positional(1), ": codes have ",
                                                   codes.num_features, " features but dictionary ",
                                                   id, " has d_sae ", info.dictionary().d_sae()));
  }
  if (batch_rows == 0)
    batch_rows = std::max<int64_t>(1, kAutoChunkBytes / std::max<int64_t>(1, d_in * 4));

  std::vector<float> dense;
  dense.reserve(static_cast<size_t>(codes.num_rows * d_in));
  for (int64_t begin = 0; begin < codes.num_rows || begin == 0; begin += batch_rows) {
    const int64_t end = std::min(codes.num_rows, begin + batch_rows);
    v1::DecodeRequest req;
    req.set_dictionary_id(id);
    SAEDICT_ASSIGN_OR_RETURN(*req.mutable_codes(), wire::CsrToProto(SliceRows(codes, begin, end)));
    SAEDICT_ASSIGN_OR_RETURN(v1::DecodeResponse resp, client->Decode(req));
    SAEDICT_ASSIGN_OR_RETURN(std::vector<float> chunk,
                             wire::TensorToFloats(resp.activations(), "activations"));
    if (static_cast<int64_t>(chunk.size()) != (end - begin) * d_in) {
      return absl::InternalError(absl::StrCat("server returned ", chunk.size(), " values for ",
                                              end - begin, " rows of ", width_name, " ", d_in));
    }
    dense.insert(dense.end(), chunk.begin(), chunk.end());
    if (end == codes.num_rows) break;
  }
  SAEDICT_RETURN_IF_ERROR(WriteMatrixNpy(output, codes.num_rows, d_in, dense));

  if (env.global().json) {
    env.out() << absl::StrFormat("{\"dictionary_id\":%s,\"rows\":%d,\"%s\":%d,\"output\":%s}\n",
                                 JsonQuote(id), codes.num_rows, width_name, d_in,
                                 JsonQuote(output));
  } else {
    env.out() << absl::StrFormat("decoded %d rows with %s: [%d, %d] float32 -> %s\n",
                                 codes.num_rows, id, codes.num_rows, d_in, output);
  }
  return absl::OkStatus();
}

}  // namespace

const Command& DecodeCommand() {
  static const Command* const kCommand = new Command{
      .name = "decode",
      .positional = {"ID", "CODES.npz", "OUTPUT.npy"},
      .summary = "decode sparse codes back into activations",
      .details =
          "CODES.npz holds row_offsets, indices, values and shape as written by\n"
          "`saedict encode`. OUTPUT.npy gets the activations [n, d_in] as float32\n"
          "([n, d_out] at the output hook for a transcoder; without its skip term).",
      .flags = {ValueFlag("batch_rows", FlagKind::kInt, "0", "N",
                          "decode N rows per request; 0 = automatic (about 3 MiB per reply)")},
      .run = &RunDecode,
  };
  return *kCommand;
}

}  // namespace saedict::client
