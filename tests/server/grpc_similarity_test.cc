// SearchSimilar, FeatureFamily, ListFamilies and the index state over the
// wire, against a real in-process SaedictServer: the answers, and every
// error code each RPC can give a client (the messages are checked in depth
// by tests/service/similarity_service_test.cc).
#include <cmath>
#include <vector>

#include "tests/server/grpc_test_fixture.h"
#include "wire/wire_codec.h"

namespace saedict::testing {
namespace {

using ::testing::HasSubstr;

class GrpcSimilarityTest : public GrpcServerTest {
 protected:
  // Waits until the dictionary's neighbours are READY; returns its info.
  v1::DictionaryInfo WaitReady(const std::string& id) {
    v1::GetDictionaryRequest r;
    r.set_id(id);
    v1::GetDictionaryResponse out;
    for (int i = 0; i < 1200; ++i) {
      EXPECT_THAT(stub_->GetDictionary(Ctx().get(), r, &out), GrpcOk());
      if (out.dictionary().index().neighbours_state() == v1::INDEX_STATE_READY) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return out.dictionary();
  }
};

TEST_F(GrpcSimilarityTest, SearchSimilarAnswersAndErrors) {
  const WrittenSae a = WriteSae("a", engine::Architecture::kTopK, v1::SOURCE_FORMAT_SAELENS, 3);
  ASSERT_THAT(Load("a", a.path), GrpcOk());
  const v1::DictionaryInfo info = WaitReady("a");
  EXPECT_EQ(info.index().state(), v1::INDEX_STATE_READY);
  EXPECT_EQ(info.index().factory(), "Flat");
  EXPECT_TRUE(info.index().exact());
  EXPECT_EQ(info.index().neighbours_done(), kDSae);

  v1::SearchSimilarRequest r;
  r.set_dictionary_id("a");
  r.set_feature(5);
  r.set_top_n(4);
  v1::SearchSimilarResponse out;
  ASSERT_THAT(stub_->SearchSimilar(Ctx().get(), r, &out), GrpcOk());
  ASSERT_EQ(out.results_size(), 1);
  ASSERT_EQ(out.results(0).neighbours_size(), 4);
  const std::vector<float>& w = a.dictionary.w_dec;
  for (const v1::Neighbour& n : out.results(0).neighbours()) {
    double dot = 0, na = 0, nb = 0;
    for (int64_t j = 0; j < kDIn; ++j) {
      dot += double{w[n.feature() * kDIn + j]} * w[5 * kDIn + j];
      na += double{w[n.feature() * kDIn + j]} * w[n.feature() * kDIn + j];
      nb += double{w[5 * kDIn + j]} * w[5 * kDIn + j];
    }
    EXPECT_NEAR(n.cosine(), dot / std::sqrt(na * nb), 1e-9);
  }

  r.set_dictionary_id("ghost");
  EXPECT_THAT(stub_->SearchSimilar(Ctx().get(), r, &out),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("ghost")));
  r.set_dictionary_id("a");
  r.set_feature(kDSae);
  EXPECT_THAT(stub_->SearchSimilar(Ctx().get(), r, &out),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("d_sae = 64")));
  *r.mutable_vector() = wire::EncodeTensor(std::vector<float>(kDIn + 1, 1.0f), {kDIn + 1});
  EXPECT_THAT(stub_->SearchSimilar(Ctx().get(), r, &out),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("vector")));
}

TEST_F(GrpcSimilarityTest, FamiliesAnswerAndErrors) {
  const WrittenSae a = WriteSae("a", engine::Architecture::kTopK, v1::SOURCE_FORMAT_SAELENS, 3);
  ASSERT_THAT(Load("a", a.path), GrpcOk());
  WaitReady("a");
  v1::FeatureFamilyRequest f;
  f.set_dictionary_id("a");
  f.set_feature(2);
  v1::FeatureFamilyResponse family;
  ASSERT_THAT(stub_->FeatureFamily(Ctx().get(), f, &family), GrpcOk());
  EXPECT_EQ(family.provenance().tokens(), 0) << "no corpus stored yet";
  EXPECT_EQ(family.family_size(), 1);
  f.set_feature(kDSae);
  EXPECT_THAT(stub_->FeatureFamily(Ctx().get(), f, &family),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("feature")));
  f.set_feature(1);
  f.mutable_options()->set_min_coverage(0);
  EXPECT_THAT(stub_->FeatureFamily(Ctx().get(), f, &family),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("min_coverage")));

  v1::ListFamiliesRequest l;
  l.set_dictionary_id("a");
  v1::ListFamiliesResponse list;
  ASSERT_THAT(stub_->ListFamilies(Ctx().get(), l, &list), GrpcOk());
  EXPECT_EQ(list.total_families(), 0);
  l.set_page_size(-1);
  EXPECT_THAT(stub_->ListFamilies(Ctx().get(), l, &list),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("page_size")));
  l.set_page_size(0);
  l.set_dictionary_id("ghost");
  EXPECT_THAT(stub_->ListFamilies(Ctx().get(), l, &list),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("ghost")));
}

TEST_F(GrpcSimilarityTest, EncoderSearchBeforeItsIndexIsFailedPrecondition) {
  const WrittenSae a = WriteSae("a", engine::Architecture::kTopK, v1::SOURCE_FORMAT_SAELENS, 3);
  ASSERT_THAT(Load("a", a.path), GrpcOk());
  WaitReady("a");
  v1::SearchSimilarRequest r;
  r.set_dictionary_id("a");
  r.set_feature(1);
  r.set_directions(v1::DIRECTION_KIND_ENCODER);
  v1::SearchSimilarResponse out;
  // The first encoder search queues the encoder index: FAILED_PRECONDITION
  // naming its state (unless the builder was faster than the reply).
  const grpc::Status first = stub_->SearchSimilar(Ctx().get(), r, &out);
  if (!first.ok()) {
    EXPECT_THAT(first,
                GrpcStatusIs(grpc::StatusCode::FAILED_PRECONDITION, HasSubstr("encoder index")));
  }
  grpc::Status later;
  for (int i = 0; i < 1200; ++i) {
    later = stub_->SearchSimilar(Ctx().get(), r, &out);
    if (later.ok()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_THAT(later, GrpcOk());
}

}  // namespace
}  // namespace saedict::testing
