// encode_bench_grpc: encode throughput through gRPC on loopback next to the
// same encode in-process, in one run, per benchmark shape.
//
// For each shape a random top-k SAE is written in SAELens format to a temp
// directory, a real SaedictServer is started on 127.0.0.1:0 and loads it
// with LoadDictionary, and the modes below alternate (bench_common's
// TimeModes):
//   encode_f32       Encoder::Encode in this process (the reference);
//   grpc_encode_f32  client builds the F32 request, Encode RPC over loopback
//                    (server: decode, batcher, encode, CSR reply), client
//                    receives the reply;
//   grpc_encode_bf16 the same with compute_mode BF16 (when available).
// Metric grpc_over_inprocess = best grpc_encode_f32 / best encode_f32 tok/s.
//
// Single-threaded driver; the server runs its own threads.
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "bench/bench_common.h"
#include "client/saedict_client.h"
#include "wire/tensor_wire.h"
#include "engine/encoder.h"
#include "server/server.h"
#include "tests/formats/sae_fixtures.h"
#include "util/status_macros.h"

namespace saedict::bench {
namespace {

constexpr char kUsage[] =
    "encode_bench_grpc [--tokens=4096] [--warmup=1] [--reps=5] [--shape=2304x16384_k64]"
    " [--json=out.json]\n";

absl::Status RunShape(const BenchShape& shape, const BenchFlags& flags,
                      const std::filesystem::path& scratch, Report& report) {
  const std::filesystem::path root = scratch / shape.Name();
  std::shared_ptr<const engine::Dictionary> dict = MakeRandomTopKDictionary(shape, 1);
  SAEDICT_RETURN_IF_ERROR(testing::WriteSaeLensFolder(root / "sae", *dict));
  const std::vector<float> x = MakeActivations(flags.tokens, shape.d_in, 2);

  server::ServerOptions options;
  options.port = 0;
  options.data_dir = root / "var";
  options.dictionary_root = root;
  options.batcher.max_batch_tokens = flags.tokens;
  options.max_message_bytes = 1 << 30;
  SAEDICT_ASSIGN_OR_RETURN(std::unique_ptr<server::SaedictServer> srv,
                           server::SaedictServer::Start(options));
  client::ClientOptions client_options;
  client_options.max_message_bytes = 1 << 30;
  SAEDICT_ASSIGN_OR_RETURN(
      std::unique_ptr<client::Client> client,
      client::Client::Connect(absl::StrCat("127.0.0.1:", srv->port()), client_options));
  v1::LoadDictionaryRequest load;
  load.set_id("bench");
  load.set_path("sae");
  SAEDICT_RETURN_IF_ERROR(client->LoadDictionary(load).status());
  SAEDICT_ASSIGN_OR_RETURN(std::unique_ptr<engine::Encoder> encoder, engine::Encoder::Create(dict));

  const std::vector<int64_t> x_shape = {flags.tokens, shape.d_in};
  auto grpc_mode = [&](v1::ComputeMode mode) {
    return [&, mode]() -> absl::Status {
      v1::EncodeRequest req;
      req.set_dictionary_id("bench");
      req.mutable_options()->set_compute_mode(mode);
      SAEDICT_ASSIGN_OR_RETURN(*req.mutable_activations(),
                               wire::FloatsToTensor(x, x_shape, v1::DTYPE_F32));
      SAEDICT_ASSIGN_OR_RETURN(v1::EncodeResponse resp, client->Encode(req));
      if (resp.codes().num_rows() != flags.tokens) {
        return absl::InternalError(absl::StrCat("reply has ", resp.codes().num_rows(), " rows"));
      }
      return absl::OkStatus();
    };
  };
  std::vector<BenchMode> modes = {
      {"encode_f32", [&] { return encoder->Encode(x, flags.tokens).status(); }},
      {"grpc_encode_f32", grpc_mode(v1::COMPUTE_MODE_F32)},
  };
  if (engine::Encoder::Bf16Available()) {
    modes.push_back({"grpc_encode_bf16", grpc_mode(v1::COMPUTE_MODE_BF16)});
  }
  SAEDICT_ASSIGN_OR_RETURN(std::vector<ModeTiming> timings,
                           TimeModes(modes, flags.warmup, flags.reps));
  report.AddShape(shape);
  for (const ModeTiming& t : timings) report.AddTiming(t);
  report.AddMetric("grpc_over_inprocess", timings[1].BestTokensPerSecond(flags.tokens) /
                                              timings[0].BestTokensPerSecond(flags.tokens));
  srv->Shutdown(absl::Seconds(1));
  return absl::OkStatus();
}

absl::Status Main(int argc, char** argv) {
  SAEDICT_ASSIGN_OR_RETURN(BenchFlags flags, ParseFlags(argc, argv, kUsage));
  SAEDICT_ASSIGN_OR_RETURN(std::vector<BenchShape> shapes, SelectShapes(flags));
  const std::filesystem::path scratch =
      std::filesystem::temp_directory_path() / absl::StrCat("saedict_bench_grpc_", getpid());
  Report report("encode_bench_grpc", flags.tokens);
  absl::Status status;
  for (const BenchShape& shape : shapes) {
    status = RunShape(shape, flags, scratch, report);
    if (!status.ok()) break;
  }
  std::error_code ec;
  std::filesystem::remove_all(scratch, ec);
  SAEDICT_RETURN_IF_ERROR(status);
  return report.Write(flags);
}

}  // namespace
}  // namespace saedict::bench

int main(int argc, char** argv) {
  absl::Status s = saedict::bench::Main(argc, argv);
  if (!s.ok()) {
    std::cerr << "encode_bench_grpc: " << s << "\n";
    return 1;
  }
  return 0;
}
