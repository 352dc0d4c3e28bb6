// client_encode_bench: Encode throughput of the C++ client against a running
// saedictd, on activations read from a .npy — the C++ side of
// bench/client_bench.py, which runs the Python client on the same server,
// dictionary and file and prints the ratio.
//
//   client_encode_bench --target=127.0.0.1:PORT --dictionary=ID --input=acts.npy
//                       [--warmup=1] [--reps=5]
// Prints one JSON object: rows, best and median tokens/s (each call sends the
// whole file as one Encode request and waits for the CSR reply).
#include <algorithm>
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/saedict_client.h"
#include "formats/codecs/npy.h"
#include "util/status_macros.h"
#include "wire/tensor_wire.h"

namespace saedict::bench {
namespace {

absl::Status Main(int argc, char** argv) {
  std::string target, dictionary, input;
  int warmup = 1, reps = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string key = arg.substr(0, eq), value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    if (key == "--target") {
      target = value;
    } else if (key == "--dictionary") {
      dictionary = value;
    } else if (key == "--input") {
      input = value;
    } else if (key == "--warmup" && absl::SimpleAtoi(value, &warmup) && warmup >= 0) {
    } else if (key == "--reps" && absl::SimpleAtoi(value, &reps) && reps >= 1) {
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad argument '", arg,
          "'; usage: client_encode_bench --target=H:P --dictionary=ID --input=acts.npy "
          "[--warmup=1] [--reps=5]"));
    }
  }
  if (target.empty() || dictionary.empty() || input.empty()) {
    return absl::InvalidArgumentError("--target, --dictionary and --input are required");
  }
  SAEDICT_ASSIGN_OR_RETURN(formats::NpyArray array, formats::ReadNpyFile(input));
  if (array.shape.size() != 2) return absl::InvalidArgumentError("--input must be [rows, d_in]");
  SAEDICT_ASSIGN_OR_RETURN(std::vector<float> x, formats::NpyToFloat32(array, input));
  client::ClientOptions options;
  options.max_message_bytes = 1 << 30;
  SAEDICT_ASSIGN_OR_RETURN(std::unique_ptr<client::Client> client,
                           client::Client::Connect(target, options));
  std::vector<double> rates;
  for (int i = 0; i < warmup + reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    v1::EncodeRequest req;
    req.set_dictionary_id(dictionary);
    SAEDICT_ASSIGN_OR_RETURN(*req.mutable_activations(),
                             wire::FloatsToTensor(x, array.shape, v1::DTYPE_F32));
    SAEDICT_ASSIGN_OR_RETURN(v1::EncodeResponse resp, client->Encode(req));
    if (resp.codes().num_rows() != array.shape[0]) return absl::InternalError("short reply");
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i >= warmup) rates.push_back(static_cast<double>(array.shape[0]) / s);
  }
  std::sort(rates.begin(), rates.end());
  std::cout << "{\"rows\": " << array.shape[0] << ", \"best_tokens_per_s\": " << rates.back()
            << ", \"median_tokens_per_s\": " << rates[rates.size() / 2] << "}\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace saedict::bench

int main(int argc, char** argv) {
  absl::Status s = saedict::bench::Main(argc, argv);
  if (!s.ok()) {
    std::cerr << "client_encode_bench: " << s << "\n";
    return 1;
  }
  return 0;
}
