#include "gateway/json_api.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gateway/proto_json.h"

namespace saedict::gateway {
namespace {

// Collects the NDJSON answer of a stream, refusing to grow past the cap.
class NdjsonAnswer {
 public:
  explicit NdjsonAnswer(int64_t max_bytes) : max_bytes_(max_bytes) {}
  // false (and over() set) once the answer would pass the cap.
  bool Add(const google::protobuf::Message& m) {
    std::string line = ToJson(m);
    if (max_bytes_ > 0 &&
        static_cast<int64_t>(answer_.body.size() + line.size() + 1) > max_bytes_) {
      over_ = true;
      return false;
    }
    absl::StrAppend(&answer_.body, line, "\n");
    return true;
  }
  absl::Status OverStatus() const {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the streamed answer passes ", max_bytes_,
        " bytes (the server's --max_message_bytes), the cap of an HTTP answer; use the gRPC "
        "stream for answers this big"));
  }
  bool over() const { return over_; }
  JsonAnswer Take() && {
    answer_.ndjson = true;
    return std::move(answer_);
  }

 private:
  const int64_t max_bytes_;
  JsonAnswer answer_;
  bool over_ = false;
};

// Calls fn with each request message of an NDJSON body, in order; a line
// that is not a Request is INVALID_ARGUMENT naming its number.
template <typename Request, typename Fn>
absl::Status ForEachRequest(absl::string_view body, Fn fn) {
  return ForEachNdjsonLine(body, [&](absl::string_view line, int64_t n) -> absl::Status {
    Request request;
    if (auto p = FromJson(line, &request, absl::StrCat("request body line ", n)); !p.ok()) return p;
    return fn(request);
  });
}

bool Cancelled(const JsonCall& call) {
  return (call.cancelled && call.cancelled()) || absl::Now() >= call.deadline;
}

absl::Status PastDeadline(absl::string_view what) {
  return absl::DeadlineExceededError(absl::StrCat(what, " ran past the call's deadline"));
}

}  // namespace

template <typename Request, typename Response, typename Fn>
void JsonApi::AddUnary(const std::string& name, Fn fn) {
  methods_[name] = Method{MethodShape::kUnary, Request::descriptor(),
                          [fn](const JsonCall& call) -> absl::StatusOr<JsonAnswer> {
                            Request request;
                            if (absl::Status s = FromJson(call.body, &request); !s.ok()) return s;
                            absl::StatusOr<Response> response = fn(request, call.deadline);
                            if (!response.ok()) return response.status();
                            if (absl::Now() > call.deadline) return PastDeadline("the call");
                            return JsonAnswer{ToJson(*response), false};
                          }};
}

JsonApi::JsonApi(service::ServiceCore* core, int64_t max_answer_bytes)
    : core_(core), max_answer_bytes_(max_answer_bytes) {
  using namespace v1;  // NOLINT: the request/response names read better bare here
  auto* c = core_;
  AddUnary<LoadDictionaryRequest, LoadDictionaryResponse>(
      "LoadDictionary", [c](const auto& r, absl::Time) { return c->LoadDictionary(r); });
  AddUnary<ListDictionariesRequest, ListDictionariesResponse>(
      "ListDictionaries", [c](const auto& r, absl::Time) { return c->ListDictionaries(r); });
  AddUnary<GetDictionaryRequest, GetDictionaryResponse>(
      "GetDictionary", [c](const auto& r, absl::Time) { return c->GetDictionary(r); });
  AddUnary<DeleteDictionaryRequest, DeleteDictionaryResponse>(
      "DeleteDictionary", [c](const auto& r, absl::Time) { return c->DeleteDictionary(r); });
  AddUnary<EncodeRequest, EncodeResponse>(
      "Encode", [c](const auto& r, absl::Time deadline) { return c->Encode(r, deadline); });
  AddUnary<DecodeRequest, DecodeResponse>("Decode",
                                          [c](const auto& r, absl::Time) { return c->Decode(r); });
  AddUnary<InterveneRequest, InterveneResponse>(
      "Intervene", [c](const auto& r, absl::Time deadline) { return c->Intervene(r, deadline); });
  AddUnary<GetDocumentRequest, GetDocumentResponse>(
      "GetDocument", [c](const auto& r, absl::Time) { return c->GetDocument(r); });
  AddUnary<GetActivationsRequest, GetActivationsResponse>(
      "GetActivations", [c](const auto& r, absl::Time) { return c->GetActivations(r); });
  AddUnary<GetFeatureRequest, GetFeatureResponse>(
      "GetFeature", [c](const auto& r, absl::Time) { return c->GetFeature(r); });
  AddUnary<TopActivationsRequest, TopActivationsResponse>(
      "TopActivations", [c](const auto& r, absl::Time) { return c->TopActivations(r); });
  AddUnary<DocumentFeaturesRequest, DocumentFeaturesResponse>(
      "DocumentFeatures", [c](const auto& r, absl::Time) { return c->DocumentFeatures(r); });
  AddUnary<SearchSimilarRequest, SearchSimilarResponse>(
      "SearchSimilar", [c](const auto& r, absl::Time) { return c->SearchSimilar(r); });
  AddUnary<FeatureFamilyRequest, FeatureFamilyResponse>(
      "FeatureFamily", [c](const auto& r, absl::Time) { return c->FeatureFamily(r); });
  AddUnary<ListFamiliesRequest, ListFamiliesResponse>(
      "ListFamilies", [c](const auto& r, absl::Time) { return c->ListFamilies(r); });
  AddUnary<SetExplanationRequest, SetExplanationResponse>(
      "SetExplanation", [c](const auto& r, absl::Time) { return c->SetExplanation(r); });
  AddUnary<DeleteExplanationRequest, DeleteExplanationResponse>(
      "DeleteExplanation", [c](const auto& r, absl::Time) { return c->DeleteExplanation(r); });
  AddUnary<ListExplanationsRequest, ListExplanationsResponse>(
      "ListExplanations", [c](const auto& r, absl::Time) { return c->ListExplanations(r); });
  AddUnary<SearchExplanationsRequest, SearchExplanationsResponse>(
      "SearchExplanations", [c](const auto& r, absl::Time) { return c->SearchExplanations(r); });
  AddUnary<CreateCheckpointRequest, CreateCheckpointResponse>(
      "CreateCheckpoint", [c](const auto& r, absl::Time) { return c->CreateCheckpoint(r); });
  AddStreams();
}

void JsonApi::AddStreams() {
  auto* core = core_;
  const int64_t cap = max_answer_bytes_;

  methods_["EncodeStream"] = Method{
      MethodShape::kBidiStream, v1::EncodeRequest::descriptor(),
      [core, cap](const JsonCall& call) -> absl::StatusOr<JsonAnswer> {
        std::unique_ptr<service::EncodeStreamSession> session =
            core->StartEncodeStream(call.deadline);
        NdjsonAnswer answer(cap);
        absl::Status s =
            ForEachRequest<v1::EncodeRequest>(call.body, [&](v1::EncodeRequest& request) {
              if (Cancelled(call)) return PastDeadline("the stream");
              absl::StatusOr<v1::EncodeResponse> response = session->Next(std::move(request));
              if (!response.ok()) return response.status();
              return answer.Add(*response) ? absl::OkStatus() : answer.OverStatus();
            });
        if (!s.ok()) return s;
        return std::move(answer).Take();
      }};

  methods_["Ingest"] = Method{
      MethodShape::kBidiStream, v1::IngestRequest::descriptor(),
      [core, cap](const JsonCall& call) -> absl::StatusOr<JsonAnswer> {
        absl::Mutex mu;
        NdjsonAnswer answer(cap);
        int64_t acked = 0;
        std::unique_ptr<service::IngestSession> session = core->StartIngest(
            [&](const v1::IngestAck& ack) {
              absl::MutexLock lock(&mu);
              ++acked;
              return answer.Add(ack);
            },
            call.deadline);
        absl::Status status =
            ForEachRequest<v1::IngestRequest>(call.body, [&](v1::IngestRequest& request) {
              if (Cancelled(call)) return absl::CancelledError("cancelled, or past the deadline");
              return session->Submit(std::move(request));
            });
        absl::Status finished = session->Finish();
        if (!finished.ok()) status = finished;
        absl::MutexLock lock(&mu);
        if (!status.ok()) {
          if (answer.over()) status = answer.OverStatus();
          return absl::Status(
              status.code(), absl::StrCat(status.message(), " (", acked,
                                          " earlier request line(s) were stored and stay stored)"));
        }
        return std::move(answer).Take();
      }};

  methods_["CompareDictionaries"] = Method{
      MethodShape::kServerStream, v1::CompareDictionariesRequest::descriptor(), nullptr,
      [core](const JsonCall& call, const LineSink& emit) -> absl::Status {
        v1::CompareDictionariesRequest request;
        if (absl::Status s = FromJson(call.body, &request); !s.ok()) return s;
        absl::Status s = core->CompareDictionaries(
            request, [&](const v1::CompareDictionariesResponse& m) { return emit(ToJson(m)); },
            [&] { return Cancelled(call); });
        if (!s.ok() && absl::Now() >= call.deadline) return PastDeadline("the comparison");
        return s;
      }};

  methods_["ExportLatents"] =
      Method{MethodShape::kServerStream, v1::ExportLatentsRequest::descriptor(), nullptr,
             [core](const JsonCall& call, const LineSink& emit) -> absl::Status {
               v1::ExportLatentsRequest request;
               if (absl::Status s = FromJson(call.body, &request); !s.ok()) return s;
               absl::Status s = core->ExportLatents(
                   request, [&](const v1::ExportLatentsResponse& m) { return emit(ToJson(m)); },
                   [&] { return Cancelled(call); });
               if (!s.ok() && absl::Now() >= call.deadline) return PastDeadline("the export");
               return s;
             }};

  methods_["Evaluate"] = Method{
      MethodShape::kClientStream, v1::EvaluateRequest::descriptor(),
      [core](const JsonCall& call) -> absl::StatusOr<JsonAnswer> {
        std::unique_ptr<service::EvaluateSession> session = core->StartEvaluate(call.deadline);
        absl::Status s = ForEachRequest<v1::EvaluateRequest>(
            call.body, [&](v1::EvaluateRequest& request) { return session->Add(request); });
        if (!s.ok()) return s;
        absl::StatusOr<v1::EvaluateResponse> out = session->Finish([&] { return Cancelled(call); });
        if (!out.ok()) return out.status();
        return JsonAnswer{ToJson(*out), false};
      }};

  methods_["ImportExplanations"] =
      Method{MethodShape::kClientStream, v1::ImportExplanationsRequest::descriptor(),
             [core](const JsonCall& call) -> absl::StatusOr<JsonAnswer> {
               std::unique_ptr<service::ExplanationImport> import = core->StartImportExplanations();
               absl::Status s = ForEachRequest<v1::ImportExplanationsRequest>(
                   call.body,
                   [&](v1::ImportExplanationsRequest& request) { return import->Add(request); });
               if (!s.ok()) return s;
               absl::StatusOr<v1::ImportExplanationsResponse> out = import->Finish();
               if (!out.ok()) return out.status();
               return JsonAnswer{ToJson(*out), false};
             }};

  methods_["UploadDictionary"] = Method{
      MethodShape::kClientStream, v1::UploadDictionaryRequest::descriptor(),
      [core](const JsonCall& call) -> absl::StatusOr<JsonAnswer> {
        // Destroying an unfinished upload removes what it wrote.
        std::unique_ptr<service::DictionaryUpload> upload = core->StartUpload();
        absl::Status s = ForEachRequest<v1::UploadDictionaryRequest>(
            call.body, [&](v1::UploadDictionaryRequest& request) { return upload->Add(request); });
        if (!s.ok()) return s;
        absl::StatusOr<v1::UploadDictionaryResponse> out = core->FinishUpload(*upload);
        if (!out.ok()) return out.status();
        return JsonAnswer{ToJson(*out), false};
      }};
}

const JsonApi::Method* JsonApi::Find(absl::string_view name) const {
  auto it = methods_.find(name);
  return it == methods_.end() ? nullptr : &it->second;
}

}  // namespace saedict::gateway
