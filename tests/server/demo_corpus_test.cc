// The demo corpus a fresh server ingests into the demo dictionary: its
// documents are there with their strings, a planted feature's top examples
// are the words that carry it, and a restart does not ingest it again.
#include "server/demo_corpus.h"
#include "service/demo_dictionary.h"
#include "tests/server/grpc_test_fixture.h"

namespace saedict::testing {
namespace {

class DemoCorpusTest : public GrpcServerTest {
 protected:
  void Customize(server::ServerOptions* options) override { options->demo = true; }

  v1::GetFeatureResponse Feature(uint32_t f) {
    v1::GetFeatureRequest r;
    r.set_dictionary_id(service::kDemoDictionaryId);
    r.set_feature(f);
    r.set_top_n(10);
    v1::GetFeatureResponse out;
    EXPECT_THAT(stub_->GetFeature(Ctx().get(), r, &out), GrpcOk());
    return out;
  }
};

TEST_F(DemoCorpusTest, FreshServerHasTheDemoCorpusWithCoherentFeatures) {
  v1::GetDocumentRequest dr;
  dr.set_corpus(server::kDemoCorpus);
  dr.set_doc_id(0);
  v1::GetDocumentResponse doc;
  ASSERT_THAT(stub_->GetDocument(Ctx().get(), dr, &doc), GrpcOk());
  EXPECT_EQ(doc.document().token_ids_size(), 64);
  EXPECT_EQ(doc.document().token_strings_size(), 64);

  // Feature 131 is planted by word 1 (131 * w + 17 * j mod 512).
  const v1::GetFeatureResponse f = Feature(131);
  EXPECT_EQ(f.stats().total_tokens(), 200 * 64);
  EXPECT_GT(f.stats().count(), 100);
  ASSERT_EQ(f.top_examples_size(), 10);
  int planted = 0;
  for (const v1::Example& e : f.top_examples()) {
    const int w = e.context(e.peak_index()).token_id();
    for (int j = 0; j < 3; ++j) planted += (w * 131 + j * 17) % 512 == 131;
  }
  EXPECT_GE(planted, 8) << "top examples should be words that plant the feature";

  RestartServer();
  EXPECT_EQ(Feature(131).stats().total_tokens(), 200 * 64) << "ingested once only";
}

}  // namespace
}  // namespace saedict::testing
