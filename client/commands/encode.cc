// `saedict encode ID INPUT.npy OUTPUT.npz`: activations → sparse codes (and
// optionally reconstruction and per-row error), written as a CSR .npz (see
// array_files.h). Inputs too big for one message go through EncodeStream in
// chunks of --batch_rows rows. Thread safety: see command.h.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands/array_files.h"
#include "client/commands/cli_util.h"
#include "client/commands/command.h"
#include "client/commands/output.h"
#include "util/status_macros.h"

namespace saedict::client {
namespace {

// Without --batch_rows, inputs above this many bytes are streamed in chunks
// of about this size (gRPC servers accept 4 MiB messages by default).
constexpr int64_t kAutoChunkBytes = int64_t{3} << 20;

// Collects the responses of one or more encode calls, checking each.
class EncodeResults {
 public:
  EncodeResults(int64_t d_in, bool want_reconstruction, bool want_error)
      : want_reconstruction_(want_reconstruction), want_error_(want_error) {
    extras_.d_in = d_in;
  }

  absl::Status Add(const v1::EncodeResponse& resp, int64_t rows) {
    SAEDICT_ASSIGN_OR_RETURN(wire::CsrCodes chunk, wire::CsrFromProto(resp.codes()));
    if (chunk.num_rows != rows) {
      return absl::InternalError(
          absl::StrCat("server returned codes for ", chunk.num_rows, " rows, sent ", rows));
    }
    SAEDICT_RETURN_IF_ERROR(wire::AppendRows(codes_, chunk));
    if (want_reconstruction_) {
      SAEDICT_RETURN_IF_ERROR(AddDense(resp.reconstruction(), rows * extras_.d_in, "reconstruction",
                                       extras_.reconstruction));
    }
    if (want_error_) {
      SAEDICT_RETURN_IF_ERROR(AddDense(resp.row_error(), rows, "row_error", extras_.row_error));
    }
    return absl::OkStatus();
  }

  const wire::CsrCodes& codes() const { return codes_; }
  const EncodeExtras& extras() const { return extras_; }

 private:
  static absl::Status AddDense(const v1::Tensor& t, int64_t want, absl::string_view field,
                               std::vector<float>& dst) {
    SAEDICT_ASSIGN_OR_RETURN(std::vector<float> v, wire::TensorToFloats(t, field));
    if (static_cast<int64_t>(v.size()) != want) {
      return absl::InternalError(
          absl::StrCat("server returned ", v.size(), " ", field, " values, want ", want));
    }
    dst.insert(dst.end(), v.begin(), v.end());
    return absl::OkStatus();
  }

  const bool want_reconstruction_;
  const bool want_error_;
  wire::CsrCodes codes_;
  EncodeExtras extras_;
};

absl::Status RunEncode(CommandEnv& env) {
  const std::string& id = env.positional(0);
  const std::string& output = env.positional(2);
  const ParsedArgs& args = env.args();
  const int64_t top_k = args.GetInt("top_k");
  int64_t batch_rows = args.GetInt("batch_rows");
  if (top_k < 0 || top_k > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("--top_k must be >= 0, got ", top_k));
  }
  if (batch_rows < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--batch_rows must be >= 0, got ", batch_rows));
  }
  SAEDICT_ASSIGN_OR_RETURN(Activations input, ReadActivationsNpy(env.positional(1)));

  v1::EncodeRequest base;
  base.set_dictionary_id(id);
  v1::EncodeOptions& options = *base.mutable_options();
  options.set_top_k(static_cast<int32_t>(top_k));
  options.set_return_reconstruction(args.GetBool("reconstruction"));
  options.set_return_error(args.GetBool("error"));
  SAEDICT_ASSIGN_OR_RETURN(std::optional<v1::ComputeMode> mode,
                           ComputeModeArg(args.GetString("compute_mode"), args.GetBool("bf16")));
  if (mode.has_value()) options.set_compute_mode(*mode);

  const int64_t row_bytes = input.cols * wire::DTypeSize(input.dtype);
  if (batch_rows == 0 && input.rows * row_bytes > kAutoChunkBytes) {
    batch_rows = std::max<int64_t>(1, kAutoChunkBytes / std::max<int64_t>(1, input.cols * 4));
  }
  // A request of rows [begin, begin + n).
  auto make_request = [&](int64_t begin, int64_t n) -> absl::StatusOr<v1::EncodeRequest> {
    v1::EncodeRequest req = base;
    const int64_t shape[2] = {n, input.cols};
    SAEDICT_ASSIGN_OR_RETURN(
        *req.mutable_activations(),
        wire::RawToTensor(absl::string_view(input.data).substr(begin * row_bytes, n * row_bytes), shape,
                    input.dtype));
    return req;
  };

  EncodeResults results(input.cols, options.return_reconstruction(), options.return_error());
  SAEDICT_ASSIGN_OR_RETURN(Client * client, env.client());
  if (batch_rows == 0 || batch_rows >= input.rows) {
    SAEDICT_ASSIGN_OR_RETURN(v1::EncodeRequest req, make_request(0, input.rows));
    SAEDICT_ASSIGN_OR_RETURN(v1::EncodeResponse resp, client->Encode(req));
    SAEDICT_RETURN_IF_ERROR(results.Add(resp, input.rows));
  } else {
    int64_t next_row = 0;      // advanced by the writer thread
    int64_t received_row = 0;  // advanced by this thread
    // --timeout bounds each message; the stream as a whole gets one per message.
    CallOptions call;
    call.timeout = env.global().timeout * ((input.rows + batch_rows - 1) / batch_rows);
    SAEDICT_RETURN_IF_ERROR(client->EncodeStream(
        [&]() -> absl::StatusOr<std::optional<v1::EncodeRequest>> {
          if (next_row >= input.rows) return std::nullopt;
          const int64_t n = std::min(batch_rows, input.rows - next_row);
          SAEDICT_ASSIGN_OR_RETURN(v1::EncodeRequest req, make_request(next_row, n));
          next_row += n;
          return req;
        },
        [&](v1::EncodeResponse&& resp) -> absl::Status {
          const int64_t n = std::min(batch_rows, input.rows - received_row);
          received_row += n;
          return results.Add(resp, n);
        },
        call));
  }

  const wire::CsrCodes& codes = results.codes();
  SAEDICT_RETURN_IF_ERROR(WriteCodesNpz(output, codes, results.extras()));
  const double mean_l0 =
      input.rows > 0 ? static_cast<double>(codes.nnz()) / static_cast<double>(input.rows) : 0.0;
  double mean_error = 0;
  for (float e : results.extras().row_error) mean_error += e;
  if (input.rows > 0) mean_error /= static_cast<double>(input.rows);

  if (env.global().json) {
    env.out() << absl::StrFormat(
        "{\"dictionary_id\":%s,\"rows\":%d,\"d_in\":%d,\"d_sae\":%d,\"nnz\":%d,"
        "\"mean_l0\":%.6g,",
        JsonQuote(id), input.rows, input.cols, codes.num_features, codes.nnz(), mean_l0);
    if (options.return_error())
      env.out() << absl::StrFormat("\"mean_row_error\":%.6g,", mean_error);
    env.out() << "\"output\":" << JsonQuote(output) << "}\n";
  } else {
    env.out() << absl::StrFormat("encoded %d rows with %s: d_sae %d, nnz %d, mean L0 %.2f",
                                 input.rows, id, codes.num_features, codes.nnz(), mean_l0);
    if (options.return_error()) env.out() << absl::StrFormat(", mean row error %.6g", mean_error);
    env.out() << " -> " << output << "\n";
  }
  return absl::OkStatus();
}

}  // namespace

const Command& EncodeCommand() {
  static const Command* const kCommand = new Command{
      .name = "encode",
      .positional = {"ID", "INPUT.npy", "OUTPUT.npz"},
      .summary = "encode activations into sparse codes",
      .details =
          "INPUT.npy holds activations [n, d_in] as float32 or float16 (sent as is) or\n"
          "float64 (converted to float32). OUTPUT.npz gets row_offsets (uint64 [n+1]),\n"
          "indices (uint32 [nnz]), values (float32 [nnz]) and shape (int64 [n, d_sae]):\n"
          "scipy.sparse.csr_matrix((values, indices, row_offsets), shape=shape); plus\n"
          "reconstruction (float32 [n, d_in]) and row_error (float32 [n]) when asked.",
      .flags = {ValueFlag("top_k", FlagKind::kInt, "0", "N",
                          "keep the N largest latents per row; 0 = the dictionary's own k"),
                BoolFlag("reconstruction", "also write the reconstruction x_hat"),
                BoolFlag("error", "also write each row's squared error |x - x_hat|^2"),
                ValueFlag("compute_mode", FlagKind::kString, "", "MODE",
                          "f32 (exact), fast_exact (the f32 codes bit for bit, faster where "
                          "the server has AMX) or bf16 (approximate); default: "
                          "the dictionary's default_compute_mode"),
                BoolFlag("bf16", "same as --compute_mode=bf16"),
                ValueFlag("batch_rows", FlagKind::kInt, "0", "N",
                          "stream through EncodeStream, N rows per message; "
                          "0 = automatic (about 3 MiB per message)")},
      .run = &RunEncode,
  };
  return *kCommand;
}

}  // namespace saedict::client
