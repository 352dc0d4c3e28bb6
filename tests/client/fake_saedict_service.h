// A minimal in-test saedict.v1.Saedict service on a real grpc::Server bound
// to 127.0.0.1 port 0, for testing the client library and the CLI without the
// real saedictd. Its "SAE" is the identity with a ReLU: d_sae == d_in,
// f = relu(x) (optionally capped to the top_k largest), x_hat = f. Loading
// any path creates a dictionary with d_in = d_sae = 4 unless the path ends in
// "/dN" (then N); paths containing "missing" give NOT_FOUND and paths
// containing "forbidden" give PERMISSION_DENIED. The dictionary id "slow"
// makes every RPC on it wait until its deadline or cancellation.
//
// Thread safety: the service is thread-safe (one mutex over its state);
// FakeServer is not (use it from the test thread).
#ifndef SAEDICT_TESTS_CLIENT_FAKE_SAEDICT_SERVICE_H_
#define SAEDICT_TESTS_CLIENT_FAKE_SAEDICT_SERVICE_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "grpcpp/grpcpp.h"
#include "saedict/v1/saedict.grpc.pb.h"

namespace saedict::testing {

class FakeSaedictService final : public v1::Saedict::Service {
 public:
  // Adds a ready dictionary of width d (d_in == d_sae == d).
  void AddDictionary(const std::string& id, int64_t d);

  // Counters and the last options seen, for assertions.
  int encode_calls() const { return encode_calls_.load(); }
  int stream_messages() const { return stream_messages_.load(); }
  int decode_calls() const { return decode_calls_.load(); }
  v1::EncodeOptions last_encode_options() const;
  v1::LoadDictionaryRequest last_load() const;
  // Whether the last RPC naming a dictionary carried a deadline within an hour.
  bool last_call_had_deadline() const { return last_had_deadline_.load(); }

  grpc::Status LoadDictionary(grpc::ServerContext* ctx, const v1::LoadDictionaryRequest* req,
                              v1::LoadDictionaryResponse* resp) override;
  grpc::Status ListDictionaries(grpc::ServerContext* ctx, const v1::ListDictionariesRequest* req,
                                v1::ListDictionariesResponse* resp) override;
  grpc::Status GetDictionary(grpc::ServerContext* ctx, const v1::GetDictionaryRequest* req,
                             v1::GetDictionaryResponse* resp) override;
  grpc::Status DeleteDictionary(grpc::ServerContext* ctx, const v1::DeleteDictionaryRequest* req,
                                v1::DeleteDictionaryResponse* resp) override;
  grpc::Status Encode(grpc::ServerContext* ctx, const v1::EncodeRequest* req,
                      v1::EncodeResponse* resp) override;
  grpc::Status Decode(grpc::ServerContext* ctx, const v1::DecodeRequest* req,
                      v1::DecodeResponse* resp) override;
  grpc::Status EncodeStream(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::EncodeResponse, v1::EncodeRequest>* stream) override;
  grpc::Status Intervene(grpc::ServerContext* ctx, const v1::InterveneRequest* req,
                         v1::InterveneResponse* resp) override;

 private:
  // The dictionary `id` or NOT_FOUND; waits out the deadline for "slow".
  grpc::Status Lookup(grpc::ServerContext* ctx, const std::string& id, v1::DictionaryInfo* out);
  grpc::Status EncodeOne(const v1::EncodeRequest& req, const v1::DictionaryInfo& dict,
                         v1::EncodeResponse* resp);

  mutable std::mutex mu_;
  std::map<std::string, v1::DictionaryInfo> dictionaries_;  // guarded by mu_
  v1::EncodeOptions last_encode_options_;                   // guarded by mu_
  v1::LoadDictionaryRequest last_load_;                     // guarded by mu_
  std::atomic<int> encode_calls_{0};
  std::atomic<int> stream_messages_{0};
  std::atomic<int> decode_calls_{0};
  std::atomic<bool> last_had_deadline_{false};
};

// The service on a real server at 127.0.0.1:<ephemeral port>.
class FakeServer {
 public:
  FakeServer();
  ~FakeServer();
  FakeSaedictService& service() { return service_; }
  // "127.0.0.1:PORT".
  const std::string& target() const { return target_; }

 private:
  FakeSaedictService service_;
  std::unique_ptr<grpc::Server> server_;
  std::string target_;
};

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_CLIENT_FAKE_SAEDICT_SERVICE_H_
