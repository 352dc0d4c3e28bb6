// A minimal in-test saedict.v1.Saedict service on a real grpc::Server bound
// to 127.0.0.1 port 0, for testing the client library and the CLI without the
// real saedictd. Its "SAE" is the identity with a ReLU: d_sae == d_in,
// f = relu(x) (optionally capped to the top_k largest), x_hat = f. Loading
// any path creates a dictionary with d_in = d_sae = 4 unless the path ends in
// "/dN" (then N); paths containing "missing" give NOT_FOUND and paths
// containing "forbidden" give PERMISSION_DENIED. The dictionary id "slow"
// makes every RPC on it wait until its deadline or cancellation.
//
// Corpus RPCs: Ingest stores each document (and the relu codes of its
// activations per dictionary; f16 values are rounded through half) and acks
// each batch; GetDocument / GetActivations read them back; GetFeature,
// TopActivations and DocumentFeatures compute their answers from the stored
// codes (quarter-octave histogram bins, quantile bins by rank);
// CreateCheckpoint answers "/srv/saedict/backups/<name>". Faults for tests:
// FailIngestAt and SetAckFault.
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
#include <tuple>
#include <utility>
#include <vector>

#include "wire/tensor_wire.h"
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

  // Every IngestRequest received, in order (across streams).
  std::vector<v1::IngestRequest> ingest_requests() const;
  // The last request of each unary corpus RPC.
  v1::GetFeatureRequest last_get_feature() const;
  v1::TopActivationsRequest last_top_activations() const;
  v1::DocumentFeaturesRequest last_document_features() const;
  int top_activations_calls() const { return top_activations_calls_.load(); }

  // Ingest ends the stream with `status` when it reads batch `batch` (0-based
  // in its stream), storing nothing of it. batch < 0: never (the default).
  void FailIngestAt(int64_t batch, grpc::Status status);
  // Makes Ingest misbehave from batch `batch` on.
  enum class AckFault {
    kNone,
    kWrongBatch,   // the ack names the batch after the right one
    kWrongCounts,  // the ack counts one document too many
    kSkipAck,      // no ack for the batch; the stream still ends OK
    kExtraAck,     // two acks for the batch
  };
  void SetAckFault(AckFault fault, int64_t batch = 0);

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
  grpc::Status Ingest(grpc::ServerContext* ctx,
                      grpc::ServerReaderWriter<v1::IngestAck, v1::IngestRequest>* stream) override;
  grpc::Status GetDocument(grpc::ServerContext* ctx, const v1::GetDocumentRequest* req,
                           v1::GetDocumentResponse* resp) override;
  grpc::Status GetActivations(grpc::ServerContext* ctx, const v1::GetActivationsRequest* req,
                              v1::GetActivationsResponse* resp) override;
  grpc::Status GetFeature(grpc::ServerContext* ctx, const v1::GetFeatureRequest* req,
                          v1::GetFeatureResponse* resp) override;
  grpc::Status TopActivations(grpc::ServerContext* ctx, const v1::TopActivationsRequest* req,
                              v1::TopActivationsResponse* resp) override;
  grpc::Status DocumentFeatures(grpc::ServerContext* ctx, const v1::DocumentFeaturesRequest* req,
                                v1::DocumentFeaturesResponse* resp) override;
  grpc::Status CreateCheckpoint(grpc::ServerContext* ctx, const v1::CreateCheckpointRequest* req,
                                v1::CreateCheckpointResponse* resp) override;

 private:
  // One stored token with the feature active, for examples.
  struct Hit {
    std::string corpus;
    uint64_t doc_id = 0;
    int64_t position = 0;
    float value = 0;
  };
  using CodesKey = std::tuple<std::string, std::string, uint64_t>;  // dict, corpus, doc

  // Validates and stores one batch; fills `ack` (not batch / totals).
  grpc::Status IngestBatch(const v1::IngestRequest& req, const std::string& dictionary,
                           const v1::DictionaryInfo& dict, v1::IngestAck* ack);
  // Every stored token of `dictionary` where `feature` is active, by value
  // descending (ties: corpus, doc, position ascending). REQUIRES: mu_ held.
  std::vector<Hit> HitsLocked(const std::string& dictionary, uint32_t feature) const;
  // The example of `hit` with `window` tokens each side. REQUIRES: mu_ held.
  v1::Example ExampleLocked(const std::string& dictionary, uint32_t feature, const Hit& hit,
                            int64_t window) const;
  // Tokens stored for `dictionary`. REQUIRES: mu_ held.
  int64_t TotalTokensLocked(const std::string& dictionary) const;

  // The dictionary `id` or NOT_FOUND; waits out the deadline for "slow".
  grpc::Status Lookup(grpc::ServerContext* ctx, const std::string& id, v1::DictionaryInfo* out);
  grpc::Status EncodeOne(const v1::EncodeRequest& req, const v1::DictionaryInfo& dict,
                         v1::EncodeResponse* resp);

  mutable std::mutex mu_;
  std::map<std::string, v1::DictionaryInfo> dictionaries_;  // guarded by mu_
  v1::EncodeOptions last_encode_options_;                   // guarded by mu_
  v1::LoadDictionaryRequest last_load_;                     // guarded by mu_
  // Corpus state, guarded by mu_.
  std::map<std::pair<std::string, uint64_t>, v1::Document> documents_;
  std::map<CodesKey, wire::CsrCodes> codes_;
  std::map<CodesKey, v1::ValuePrecision> precision_;
  std::vector<v1::IngestRequest> ingest_requests_;
  v1::GetFeatureRequest last_get_feature_;
  v1::TopActivationsRequest last_top_activations_;
  v1::DocumentFeaturesRequest last_document_features_;
  std::map<std::string, int64_t> checkpoints_;  // name -> bytes
  int64_t fail_ingest_at_ = -1;
  grpc::Status fail_ingest_status_;
  AckFault ack_fault_ = AckFault::kNone;
  int64_t ack_fault_batch_ = 0;
  std::atomic<int> top_activations_calls_{0};
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
